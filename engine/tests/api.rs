//! The HTTP surface: auth, error bodies, request checks, idempotency, pagination,
//! file deletion and download, the OpenAPI document.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use fastrouter_batch_engine::{ProviderMode, Secret};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_required_and_keys_see_only_their_own() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.api_keys = vec![Secret::new(KEY), Secret::new(KEY_B)];
    let engine = start(cfg).await;
    let a = Api::new(&engine);
    assert_eq!(a.key.as_deref(), Some(KEY));
    let b = a.with_key(Some(KEY_B));

    // No key, a wrong key, a malformed header: 401 with the contract's error body.
    for api in [a.with_key(None), a.with_key(Some("sk-wrong"))] {
        for (method, path) in [
            (reqwest::Method::GET, "/v1/files"),
            (reqwest::Method::GET, "/v1/batches"),
            (reqwest::Method::POST, "/v1/batches"),
            (reqwest::Method::GET, "/v1/batches/fr_batch-x"),
            (reqwest::Method::POST, "/v1/batches/fr_batch-x/cancel"),
            (reqwest::Method::GET, "/v1/files/file-x/content"),
            (reqwest::Method::DELETE, "/v1/files/file-x"),
        ] {
            let r = api.request(method.clone(), path).await;
            assert_error(&r, 401, "invalid_api_key");
            assert_eq!(r.json["error"]["type"], "authentication_error");
        }
        let r = api.upload_with(b"{}\n", Some("batch"), "x.jsonl").await;
        assert_error(&r, 401, "invalid_api_key");
    }
    let basic =
        Api::send(a.client.get(format!("{}/v1/files", a.base)).header("authorization", "Basic c2stdGVzdA==")).await;
    assert_error(&basic, 401, "invalid_api_key");
    let empty = Api::send(a.client.get(format!("{}/v1/files", a.base)).header("authorization", "Bearer ")).await;
    assert_error(&empty, 401, "invalid_api_key");
    // The scheme is case-insensitive.
    let lower =
        Api::send(a.client.get(format!("{}/v1/files", a.base)).header("authorization", format!("bearer {KEY}"))).await;
    assert_eq!(lower.status, 200, "{}", lower.text());

    // A's file and batch.
    let (file, batch) = a.submit(&chat_lines(2), "/v1/chat/completions").await;
    let fid = file["id"].as_str().unwrap();
    let bid = batch["id"].as_str().unwrap();
    a.wait_terminal(bid, Duration::from_secs(10)).await;

    // B sees them exactly as it sees ids that do not exist.
    let pairs = [
        (format!("/v1/files/{fid}"), "/v1/files/file-000000000000000000000000".to_owned()),
        (format!("/v1/files/{fid}/content"), "/v1/files/file-000000000000000000000000/content".to_owned()),
        (format!("/v1/batches/{bid}"), "/v1/batches/fr_batch-000000000000000000000000".to_owned()),
    ];
    for (theirs, missing) in &pairs {
        let r1 = b.get(theirs).await;
        let r2 = b.get(missing).await;
        assert_error(&r1, 404, "not_found");
        assert_error(&r2, 404, "not_found");
        assert_eq!(r1.json["error"]["type"], r2.json["error"]["type"]);
        assert!(!r1.text().contains(KEY), "{}", r1.text());
    }
    assert_error(&b.delete(&format!("/v1/files/{fid}")).await, 404, "not_found");
    assert_error(&b.post_json(&format!("/v1/batches/{bid}/cancel"), &json!({})).await, 404, "not_found");
    let r = b.create_batch_resp(fid, "/v1/chat/completions").await;
    assert_error(&r, 404, "not_found");
    assert_eq!(r.json["error"]["param"], "input_file_id");

    // B's lists are empty; A's hold A's things.
    for path in ["/v1/files", "/v1/batches"] {
        let r = b.get(path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json["object"], "list");
        assert_eq!(r.json["data"], json!([]), "{path}: {}", r.text());
        assert_eq!(r.json["has_more"], false);
    }
    let la = a.get("/v1/batches").await.json;
    assert_eq!(la["data"].as_array().unwrap().len(), 1);
    assert_eq!(la["data"][0]["id"], json!(bid));
    let fa = a.get("/v1/files").await.json;
    assert!(fa["data"].as_array().unwrap().iter().any(|f| f["id"] == json!(fid)), "{fa}");

    // A still can delete its own (finished batch's) file after B's attempt.
    assert_eq!(a.get(&format!("/v1/files/{fid}")).await.status, 200);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.limits.max_bytes = 10 * 1024;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let file = api.upload(&jsonl(&chat_lines(2))).await;
    let fid = file["id"].as_str().unwrap();

    let create = |body: Value| {
        let api = api.clone();
        async move { api.post_json("/v1/batches", &body).await }
    };
    let r = create(json!({"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "1h"})).await;
    assert_error(&r, 400, "invalid_completion_window");
    assert_eq!(r.json["error"]["param"], "completion_window");
    let r = create(json!({"input_file_id": fid, "endpoint": "/v1/completions", "completion_window": "24h"})).await;
    assert_error(&r, 400, "invalid_endpoint");
    assert_eq!(r.json["error"]["param"], "endpoint");
    let r =
        create(json!({"input_file_id": "file-nope", "endpoint": "/v1/chat/completions", "completion_window": "24h"}))
            .await;
    assert_error(&r, 404, "not_found");
    assert_eq!(r.json["error"]["param"], "input_file_id");
    let r = create(json!({"endpoint": "/v1/chat/completions", "completion_window": "24h"})).await;
    assert_error(&r, 400, "missing_required_parameter");
    assert_eq!(r.json["error"]["param"], "input_file_id");
    let r = create(json!({"input_file_id": 7, "endpoint": "/v1/chat/completions", "completion_window": "24h"})).await;
    assert_error(&r, 400, "invalid_type");

    let meta = |n: usize| (0..n).map(|i| (format!("k{i}"), json!(format!("v{i}")))).collect::<serde_json::Map<_, _>>();
    let r = create(json!({"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "metadata": meta(17)}))
    .await;
    assert_error(&r, 400, "invalid_metadata");
    assert_eq!(r.json["error"]["param"], "metadata");
    let long_key = "k".repeat(65);
    let r = create(json!({"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "metadata": {long_key: "v"}}))
    .await;
    assert_error(&r, 400, "invalid_metadata");
    let r = create(json!({"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "metadata": {"k": "v".repeat(513)}}))
    .await;
    assert_error(&r, 400, "invalid_metadata");
    let r = create(json!({"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "metadata": {"k": 1}}))
    .await;
    assert_error(&r, 400, "invalid_metadata");
    // None of the refused requests made a batch.
    assert_eq!(api.get("/v1/batches").await.json["data"], json!([]));
    // 16 pairs at the limits are fine, and come back as sent.
    let mut ok_meta = meta(15);
    ok_meta.insert("k".repeat(64), json!("v".repeat(512)));
    let r = create(json!({"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "metadata": ok_meta}))
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["metadata"], Value::Object(ok_meta.clone()));
    assert_eq!(api.batch(r.json["id"].as_str().unwrap()).await["metadata"], Value::Object(ok_meta));
    // Let it finish (its output file is listed too) before counting files below.
    let (done, _) = api.wait_terminal(r.json["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(done["status"], "completed");

    // Bodies that are not a JSON object.
    for body in [&b"{not json"[..], b"[1, 2]", b""] {
        let r = api.post_raw("/v1/batches", "application/json", body.to_vec()).await;
        assert_error(&r, 400, "invalid_json");
    }

    // Unknown routes: a JSON 404, with or without a key.
    for who in [api.clone(), api.with_key(None)] {
        let r = who.get("/v1/nothing-here").await;
        assert_error(&r, 404, "unknown_url");
        let r = who.get("/v2/batches").await;
        assert_error(&r, 404, "unknown_url");
    }
    let r = api.get("/v1/batches/fr_batch-nope").await;
    assert_error(&r, 404, "not_found");
    let r = api.get("/v1/files/file-nope").await;
    assert_error(&r, 404, "not_found");

    let files_before = api.get("/v1/files").await.json["data"].as_array().unwrap().len();
    // Wrong purpose → 400, nothing kept.
    let r = api.upload_with(&jsonl(&chat_lines(2)), Some("assistants"), "x.jsonl").await;
    assert_error(&r, 400, "invalid_purpose");
    assert_eq!(r.json["error"]["param"], "purpose");
    // No file part.
    let r = api
        .post_raw(
            "/v1/files",
            &format!("multipart/form-data; boundary={}", "b0undary"),
            b"--b0undary\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b0undary--\r\n".to_vec(),
        )
        .await;
    assert_error(&r, 400, "missing_file");
    // Not multipart at all.
    let r = api.post_raw("/v1/files", "application/json", b"{}".to_vec()).await;
    assert_error(&r, 400, "invalid_upload");
    let listed = api.get("/v1/files").await.json;
    assert_eq!(listed["data"].as_array().unwrap().len(), files_before, "{listed}");
    // Only the one good upload is on disk; no partial upload left behind.
    let on_disk: Vec<String> = std::fs::read_dir(dir.path().join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut expected_on_disk =
        vec![format!("{fid}.jsonl"), format!("{}.jsonl", done["output_file_id"].as_str().unwrap())];
    let mut on_disk = on_disk;
    on_disk.sort();
    expected_on_disk.sort();
    assert_eq!(on_disk, expected_on_disk, "files on disk");

    // purpose omitted means "batch".
    let r = api.upload_with(&jsonl(&chat_lines(1)), None, "p.jsonl").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["purpose"], "batch");
    engine.stop().await;
}

/// A wrong method on a known path should answer with the contract's JSON error body too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_gets_a_json_error() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    for (method, path) in [(reqwest::Method::PUT, "/v1/batches"), (reqwest::Method::DELETE, "/v1/batches/fr_batch-x")] {
        let r = api.request(method.clone(), path).await;
        assert!(r.status == 404 || r.status == 405, "{method} {path}: {}", r.status);
        assert!(
            r.json["error"]["code"].is_string() && r.json["error"]["status"].as_u64() == Some(u64::from(r.status)),
            "ENGINE BUG: {method} {path} answers {} with a non-JSON body {:?}",
            r.status,
            r.text()
        );
    }
    engine.stop().await;
}

/// A JSON body over the 1 MiB limit is refused with 413 and the contract's error body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_json_body_gets_a_json_413() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let body = json!({"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "metadata": {"k": "v".repeat(2 << 20)}});
    let r = api.post_json("/v1/batches", &body).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.json["error"]["code"].is_string() && r.json["error"]["status"] == 413,
        "ENGINE BUG: 413 for an oversized JSON body is not the contract's error body: {:?}",
        r.text()
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_passes_the_json_body_limit() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    // ~1.6 MB: above the 1 MiB JSON body limit, which must not apply to uploads.
    let pad = "x".repeat(1000);
    let lines: Vec<Value> = (0..1500).map(|i| chat_line(&format!("r{i}"), &pad)).collect();
    let data = jsonl(&lines);
    assert!(data.len() > 1_500_000);
    let file = api.upload(&data).await;
    assert_eq!(file["bytes"].as_u64(), Some(data.len() as u64));
    assert_eq!(file["num_rows"].as_u64(), Some(1500));
    let c = api.content(file["id"].as_str().unwrap()).await;
    assert_eq!(c.bytes, data);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_returns_the_same_batch() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.api_keys = vec![Secret::new(KEY), Secret::new(KEY_B)];
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let file = api.upload(&jsonl(&chat_lines(3))).await;
    let body = json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"});
    let post = |key: &'static str| {
        let api = api.clone();
        let body = body.clone();
        async move {
            let b = api
                .client
                .post(format!("{}/v1/batches", api.base))
                .bearer_auth(KEY)
                .header("Idempotency-Key", key)
                .json(&body);
            Api::send(b).await
        }
    };
    let first = post("key-1").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let second = post("key-1").await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(first.json["id"], second.json["id"]);
    let list = api.get("/v1/batches").await.json;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let third = post("key-2").await;
    assert_eq!(third.status, 200);
    assert_ne!(third.json["id"], first.json["id"]);
    let list = api.get("/v1/batches").await.json;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    // The replayed key still answers the first batch after it finished.
    api.wait_terminal(first.json["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    let replay = post("key-1").await;
    assert_eq!(replay.json["id"], first.json["id"]);
    assert_eq!(replay.json["status"], "completed", "{}", replay.text());
    // Keys are per API key: B using A's Idempotency-Key gets a batch of its own.
    let b = api.with_key(Some(KEY_B));
    let b_file = b.upload(&jsonl(&chat_lines(1))).await;
    let req =
        b.client.post(format!("{}/v1/batches", b.base)).bearer_auth(KEY_B).header("Idempotency-Key", "key-1").json(
            &json!({"input_file_id": b_file["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}),
        );
    let theirs = Api::send(req).await;
    assert_eq!(theirs.status, 200, "{}", theirs.text());
    assert_ne!(theirs.json["id"], first.json["id"]);
    assert_eq!(theirs.json["input_file_id"], b_file["id"]);
    assert_eq!(b.get("/v1/batches").await.json["data"].as_array().unwrap().len(), 1);
    // No key: a new batch each time.
    api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    assert_eq!(api.get("/v1/batches").await.json["data"].as_array().unwrap().len(), 4);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let file = api.upload(&jsonl(&chat_lines(1))).await;
    let fid = file["id"].as_str().unwrap();
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(api.create_batch(fid, "/v1/chat/completions").await["id"].as_str().unwrap().to_owned());
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();

    let mut got = Vec::new();
    let mut after: Option<String> = None;
    for _page in 0..10 {
        let path = match &after {
            None => "/v1/batches?limit=2".to_owned(),
            Some(a) => format!("/v1/batches?limit=2&after={a}"),
        };
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json;
        assert_eq!(page["object"], "list");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        assert_eq!(page["first_id"], data[0]["id"]);
        assert_eq!(page["last_id"], data[data.len() - 1]["id"]);
        got.extend(data.iter().map(|b| b["id"].as_str().unwrap().to_owned()));
        if page["has_more"] == json!(false) {
            break;
        }
        assert_eq!(page["has_more"], json!(true));
        after = Some(page["last_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, newest_first);
    // Default limit lists all five; beyond the last: an empty page.
    let all = api.get("/v1/batches").await.json;
    assert_eq!(all["data"].as_array().unwrap().len(), 5);
    assert_eq!(all["has_more"], false);
    let past = api.get(&format!("/v1/batches?after={}", made[0])).await.json;
    assert_eq!(past["data"], json!([]));
    assert_eq!(past["has_more"], false);
    assert!(past["first_id"].is_null() && past["last_id"].is_null(), "{past}");
    let exact = api.get("/v1/batches?limit=5").await.json;
    assert_eq!(exact["data"].as_array().unwrap().len(), 5);
    assert_eq!(exact["has_more"], false, "{exact}");

    for bad in ["limit=0", "limit=101", "limit=-1", "limit=abc"] {
        for base in ["/v1/batches", "/v1/files"] {
            let r = api.get(&format!("{base}?{bad}")).await;
            assert_eq!(r.status, 400, "{base}?{bad}: {}", r.text());
            assert_error(&r, 400, r.json["error"]["code"].as_str().unwrap_or("?"));
        }
    }
    assert_error(&api.get("/v1/batches?limit=0").await, 400, "invalid_limit");
    assert_eq!(api.get("/v1/batches?limit=100").await.status, 200);
    assert_eq!(api.get("/v1/batches?limit=1").await.json["has_more"], true);

    // Files paginate the same way, and filter by purpose.
    for _ in 0..2 {
        api.upload(&jsonl(&chat_lines(1))).await;
    }
    let mut files = Vec::new();
    let mut after: Option<String> = None;
    for _page in 0..10 {
        let path = match &after {
            None => "/v1/files?limit=1&purpose=batch".to_owned(),
            Some(a) => format!("/v1/files?limit=1&purpose=batch&after={a}"),
        };
        let page = api.get(&path).await.json;
        files.extend(page["data"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()));
        if page["has_more"] != json!(true) {
            break;
        }
        after = Some(page["last_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(files.iter().collect::<HashSet<_>>().len(), 3);
    assert_eq!(files[2], fid);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_download() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Simulated(sim(100, 0.0));
    cfg.concurrency_per_provider = 2;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (file, batch) = api.submit(&chat_lines(8), "/v1/chat/completions").await;
    let fid = file["id"].as_str().unwrap();
    let bid = batch["id"].as_str().unwrap();
    api.wait_for(bid, Duration::from_secs(10), |b| b["status"] == "in_progress").await;
    let r = api.delete(&format!("/v1/files/{fid}")).await;
    assert_error(&r, 409, "file_in_use");
    assert_eq!(api.get(&format!("/v1/files/{fid}")).await.status, 200);

    let (b, _) = api.wait_terminal(bid, Duration::from_secs(10)).await;
    assert_eq!(b["status"], "completed", "{b}");
    let r = api.delete(&format!("/v1/files/{fid}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json, json!({"id": fid, "object": "file", "deleted": true}));
    assert_error(&api.get(&format!("/v1/files/{fid}")).await, 404, "not_found");
    assert_error(&api.get(&format!("/v1/files/{fid}/content")).await, 404, "not_found");
    assert_error(&api.delete(&format!("/v1/files/{fid}")).await, 404, "not_found");
    assert!(!dir.path().join("files").join(format!("{fid}.jsonl")).exists());
    let listed = api.get("/v1/files").await.json;
    assert!(!listed["data"].as_array().unwrap().iter().any(|f| f["id"] == json!(fid)), "{listed}");
    // A deleted file cannot start a batch.
    assert_error(&api.create_batch_resp(fid, "/v1/chat/completions").await, 404, "not_found");

    // The output streams exactly its bytes.
    let out_id = b["output_file_id"].as_str().unwrap();
    let meta = api.get(&format!("/v1/files/{out_id}")).await.json;
    let c = api.content(out_id).await;
    let len: u64 = c.headers["content-length"].to_str().unwrap().parse().unwrap();
    assert_eq!(len, c.bytes.len() as u64);
    assert_eq!(meta["bytes"].as_u64(), Some(len));
    assert!(c.headers["content-type"].to_str().unwrap().starts_with("application/jsonl"));
    assert_eq!(parse_jsonl(&c.bytes).len(), 8);
    let on_disk = std::fs::read(dir.path().join("files").join(format!("{out_id}.jsonl"))).unwrap();
    assert_eq!(on_disk, c.bytes);
    // The batch still names its output; deleting the output works too.
    let r = api.delete(&format!("/v1/files/{out_id}")).await;
    assert_eq!(r.json["deleted"], true);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine).with_key(None);
    let r = api.get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("application/json"));
    assert!(r.json["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", r.json["openapi"]);
    let paths = r.json["paths"].as_object().expect("paths");
    for p in [
        "/v1/files",
        "/v1/files/{file_id}",
        "/v1/files/{file_id}/content",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/cancel",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    engine.stop().await;
}

/// `?after=` with an empty value (as a client filling the contract's template
/// `GET /v1/batches?after=&limit=` sends it) should list from the start, like no cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_after_cursor_lists_from_the_start() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let file = api.upload(&jsonl(&chat_lines(1))).await;
    api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    let plain = api.get("/v1/batches?limit=5").await.json;
    assert_eq!(plain["data"].as_array().unwrap().len(), 1);
    let r = api.get("/v1/batches?after=&limit=5").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json["data"].as_array().map(Vec::len),
        Some(1),
        "ENGINE BUG: an empty `after` lists nothing: {}",
        r.text()
    );
    let r = api.get("/v1/files?after=").await;
    assert_eq!(r.json["data"].as_array().map(Vec::len), Some(1), "ENGINE BUG: {}", r.text());
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_filenames_round_trip() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let data = jsonl(&chat_lines(1));
    for name in ["données ✓.jsonl", "with \"quotes\".jsonl", "../../etc/passwd"] {
        let r = api.upload_with(&data, Some("batch"), &name.replace('"', "%22")).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let id = r.json["id"].as_str().unwrap();
        let c = api.get(&format!("/v1/files/{id}/content")).await;
        assert_eq!(c.status, 200, "{name}: {}", c.text());
        assert_eq!(c.bytes, data);
    }
    // Nothing escaped the data directory's files/.
    assert!(!dir.path().join("etc").exists());
    engine.stop().await;
}

/// Uploads over `limits.max_bytes` get 413 `file_too_large`, and nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_upload_gets_413() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.limits.max_bytes = 10 * 1024;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let big = jsonl(&chat_lines(400));
    assert!(big.len() > 40 * 1024, "{}", big.len());
    for _ in 0..5 {
        // A fresh connection each time (see `pooled_connection_after_an_early_rejection`).
        let fresh = Api {
            client: reqwest::Client::builder().pool_max_idle_per_host(0).no_proxy().build().unwrap(),
            ..api.clone()
        };
        let r = fresh.upload_with(&big, Some("batch"), "big.jsonl").await;
        assert_error(&r, 413, "file_too_large");
        assert_eq!(r.json["error"]["param"], "file");
    }
    // Exactly at the limit is fine.
    let mut exact = jsonl(&chat_lines(1));
    exact.resize(10 * 1024, b'\n');
    let ok = api.upload(&exact).await;
    assert_eq!(ok["bytes"].as_u64(), Some(10 * 1024));
    assert_eq!(ok["num_rows"].as_u64(), Some(1));
    // Nothing kept of the refused ones.
    let listed = api.get("/v1/files").await.json;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    let on_disk: Vec<_> = std::fs::read_dir(dir.path().join("files")).unwrap().collect();
    assert_eq!(on_disk.len(), 1, "left on disk: {on_disk:?}");
    engine.stop().await;
}

/// When the engine answers an upload before reading its body (413 too large, 401 no key),
/// it closes the connection. It must say so (`Connection: close`) or drain the body, or a
/// client with a connection pool sends its next request on the dead connection and gets
/// a transport error. Each round: a refused upload, then a GET on the same client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connection_after_an_early_rejection() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.limits.max_bytes = 10 * 1024;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let big = jsonl(&chat_lines(400));
    let body = multipart(&[("purpose", "batch")], Some(("big.jsonl", &big)));
    let content_type = format!("multipart/form-data; boundary={}", "----engine-test-boundary-7d1f0c");
    let mut failures = Vec::new();
    let mut close_headers = Vec::new();
    for round in 0..30 {
        let key = if round % 2 == 0 { KEY } else { "sk-wrong" };
        let sent = api
            .client
            .post(format!("{}/v1/files", api.base))
            .bearer_auth(key)
            .header("content-type", &content_type)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                close_headers.push(resp.headers().get("connection").map(|v| v.to_str().unwrap_or("").to_owned()));
                let expected = if round % 2 == 0 { 413 } else { 401 };
                assert_eq!(resp.status().as_u16(), expected);
                let _ = resp.bytes().await;
            }
            Err(e) => failures.push(format!("round {round} upload: {e:?}")),
        }
        let next = api.client.get(format!("{}/v1/files", api.base)).bearer_auth(KEY).send().await;
        match next {
            Ok(resp) => assert_eq!(resp.status().as_u16(), 200),
            Err(e) => failures.push(format!("round {round} next request: {e:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "ENGINE BUG: {} transport errors after early upload rejections (the 413/401 carry no \
         `Connection: close` ({:?}) yet the connection is closed); rounds (even: 413, odd: 401):\n{}",
        failures.len(),
        close_headers.first(),
        failures.join("\n")
    );
    engine.stop().await;
}
