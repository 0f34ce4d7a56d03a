//! The engine under hostile input: malformed ids in URLs, oversized multipart parts,
//! reused idempotency keys, slow clients. Every answer is the contract's JSON error and
//! nothing the caller sent is echoed back beyond a short prefix.

mod common;

use common::*;
use serde_json::json;

/// Ids that are not UTF-8 once percent-decoded (`%ff%fe`; the overlong `%C0%AE`, a
/// disguised "."), on every route that takes an id: a JSON 400 naming the id parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_ids_get_the_contracts_json_error_on_every_id_route() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    for bad in ["%ff%fe", "%C0%AE%C0%AE", "file-%80"] {
        let routes = [
            (reqwest::Method::GET, format!("/v1/files/{bad}"), "file_id"),
            (reqwest::Method::DELETE, format!("/v1/files/{bad}"), "file_id"),
            (reqwest::Method::GET, format!("/v1/files/{bad}/content"), "file_id"),
            (reqwest::Method::GET, format!("/v1/batches/{bad}"), "batch_id"),
            (reqwest::Method::POST, format!("/v1/batches/{bad}/cancel"), "batch_id"),
        ];
        for (method, path, param) in routes {
            let r = api.request(method.clone(), &path).await;
            assert_error(&r, 400, "invalid_id");
            assert_eq!(r.json["error"]["param"], param, "{method} {path}: {}", r.text());
            assert_eq!(r.headers["content-type"], "application/json", "{method} {path}");
        }
    }
    // Without a key the answer is the JSON 401, not a complaint about the URL.
    let r = api.with_key(None).get("/v1/files/%ff%fe").await;
    assert_error(&r, 401, "invalid_api_key");
    engine.stop().await;
}

/// Rejections of every kind carry the contract's body: unknown routes, wrong methods,
/// bad queries, bodies that are not multipart, JSON bodies over the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_the_contracts_json_error() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let cases: Vec<(reqwest::Method, &str, u16, &str)> = vec![
        (reqwest::Method::GET, "/v1/nothing", 404, "unknown_url"),
        (reqwest::Method::GET, "/%ff", 404, "unknown_url"),
        (reqwest::Method::PUT, "/v1/files", 405, "method_not_allowed"),
        (reqwest::Method::PATCH, "/v1/batches/fr_batch-x", 405, "method_not_allowed"),
        (reqwest::Method::GET, "/v1/batches?limit=abc", 400, "invalid_query"),
        (reqwest::Method::GET, "/v1/files?limit=0", 400, "invalid_limit"),
    ];
    for (method, path, status, code) in cases {
        let r = api.request(method, path).await;
        assert_error(&r, status, code);
    }
    let r = api.post_raw("/v1/files", "multipart/form-data", b"x".to_vec()).await;
    assert_error(&r, 400, "invalid_upload");
    let r = api.post_raw("/v1/files", "text/plain", b"x".to_vec()).await;
    assert_error(&r, 400, "invalid_upload");
    let r = api.post_json("/v1/batches", &json!({"metadata": {"k": "v".repeat(2 << 20)}})).await;
    assert_error(&r, 413, "request_too_large");
    engine.stop().await;
}

const BOUNDARY: &str = "----hostile-boundary-5e2a";

/// A multipart body from raw parts: each `(headers, value)` becomes one part.
fn raw_multipart(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (headers, value) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn part(name: &str, value: &[u8]) -> (String, Vec<u8>) {
    (format!("Content-Disposition: form-data; name=\"{name}\""), value.to_vec())
}

fn file_part(filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    (
        format!(
            "Content-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/jsonl"
        ),
        data.to_vec(),
    )
}

async fn post_multipart(api: &Api, body: Vec<u8>) -> Resp {
    // A fresh connection each time: refused uploads close theirs.
    let fresh =
        Api { client: reqwest::Client::builder().pool_max_idle_per_host(0).no_proxy().build().unwrap(), ..api.clone() };
    fresh.post_raw("/v1/files", &format!("multipart/form-data; boundary={BOUNDARY}"), body).await
}

/// An answer that quotes at most a short prefix of what was sent.
fn assert_short(r: &Resp, sent: &str) {
    assert!(r.bytes.len() < 1024, "{} bytes answered: {}", r.bytes.len(), &r.text()[..300.min(r.text().len())]);
    let message = r.json["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains(&sent[..200]), "the message quotes 200 characters of the input: {message}");
}

/// Every part but `file` is bounded: a 5 MB `purpose`, an unknown part over the bound, too
/// many parts, a second `file`, an endless part header or preamble, an overlong filename:
/// each a JSON 400, quoting at most a short prefix, and nothing kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_parts_other_than_file_are_bounded() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let data = jsonl(&chat_lines(2));
    let huge = "p".repeat(5 << 20);

    let r = post_multipart(&api, raw_multipart(&[part("purpose", huge.as_bytes()), file_part("a.jsonl", &data)])).await;
    assert_error(&r, 400, "invalid_purpose");
    assert_eq!(r.json["error"]["param"], "purpose");
    assert_short(&r, &huge);
    // The same after the file.
    let r = post_multipart(&api, raw_multipart(&[file_part("a.jsonl", &data), part("purpose", huge.as_bytes())])).await;
    assert_error(&r, 400, "invalid_purpose");
    assert_short(&r, &huge);

    // A short wrong purpose is quoted whole; a long one only by its start.
    let r = post_multipart(&api, raw_multipart(&[part("purpose", b"fine-tune"), file_part("a.jsonl", &data)])).await;
    assert_error(&r, 400, "invalid_purpose");
    assert!(r.json["error"]["message"].as_str().unwrap().contains("'fine-tune'"), "{}", r.text());
    let long = "q".repeat(3000);
    let r = post_multipart(&api, raw_multipart(&[part("purpose", long.as_bytes()), file_part("a.jsonl", &data)])).await;
    assert_error(&r, 400, "invalid_purpose");
    assert_short(&r, &long);

    // Unknown parts are still ignored when small, refused when large.
    let r = post_multipart(
        &api,
        raw_multipart(&[part("note", b"hello"), part("purpose", b"batch"), file_part("a.jsonl", &data)]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let kept = r.json["id"].as_str().unwrap().to_owned();
    let r = post_multipart(&api, raw_multipart(&[part("note", huge.as_bytes()), file_part("a.jsonl", &data)])).await;
    assert_error(&r, 400, "part_too_large");
    assert_short(&r, &huge);
    let long_name = "n".repeat(100_000);
    let r =
        post_multipart(&api, raw_multipart(&[part(&long_name, huge.as_bytes()), file_part("a.jsonl", &data)])).await;
    assert_error(&r, 400, "part_too_large");
    assert_short(&r, &long_name);

    let many: Vec<_> = (0..40).map(|i| part(&format!("x{i}"), b"1")).chain([file_part("a.jsonl", &data)]).collect();
    let r = post_multipart(&api, raw_multipart(&many)).await;
    assert_error(&r, 400, "too_many_parts");
    let r = post_multipart(&api, raw_multipart(&[file_part("a.jsonl", &data), file_part("b.jsonl", &data)])).await;
    assert_error(&r, 400, "invalid_upload");
    assert_eq!(r.json["error"]["param"], "file");
    let r = post_multipart(&api, raw_multipart(&[file_part(&long_name, &data)])).await;
    assert_error(&r, 400, "invalid_filename");
    assert_short(&r, &long_name);

    // A part header that never ends, and a body that never reaches its boundary.
    let mut endless_header =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"; x=\"").into_bytes();
    endless_header.extend(std::iter::repeat_n(b'h', 8 << 20));
    // Both are cut off at a bound (not read whole, then found incomplete).
    for body in [endless_header, vec![b'z'; 8 << 20]] {
        let r = post_multipart(&api, body).await;
        assert_error(&r, 400, "invalid_upload");
        assert!(r.bytes.len() < 1024, "{}", r.text());
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("without a boundary or the end of a part's headers"), "{message}");
    }

    // Only the one good upload was kept.
    let listed = api.get("/v1/files").await.json;
    let ids: Vec<_> = listed["data"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, vec![kept.clone()]);
    let on_disk: Vec<_> =
        std::fs::read_dir(dir.path().join("files")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(on_disk, vec![std::ffi::OsString::from(format!("{kept}.jsonl"))]);
    engine.stop().await;
}

/// Error messages quote what the caller sent by a short prefix only, whatever field it came in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_messages_quote_only_a_short_prefix() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let long = "x".repeat(60_000);
    let r = api.get(&format!("/v1/files/{long}")).await;
    assert_error(&r, 404, "not_found");
    assert_short(&r, &long);
    let r = api.get(&format!("/v1/{long}")).await;
    assert_error(&r, 404, "unknown_url");
    assert_short(&r, &long);
    let r = api.request(reqwest::Method::PUT, &format!("/v1/batches/{long}")).await;
    assert_error(&r, 405, "method_not_allowed");
    assert_short(&r, &long);
    let big = "y".repeat(500_000);
    let create = |body: serde_json::Value| {
        let api = api.clone();
        async move { api.post_json("/v1/batches", &body).await }
    };
    let r = create(json!({"input_file_id": big, "endpoint": "/v1/chat/completions", "completion_window": "24h"})).await;
    assert_error(&r, 404, "not_found");
    assert_short(&r, &big);
    let r = create(json!({"input_file_id": "f", "endpoint": big, "completion_window": "24h"})).await;
    assert_error(&r, 400, "invalid_endpoint");
    assert_short(&r, &big);
    let r = create(json!({"input_file_id": "f", "endpoint": "/v1/chat/completions", "completion_window": big})).await;
    assert_error(&r, 400, "invalid_completion_window");
    assert_short(&r, &big);
    let r =
        create(json!({"input_file_id": [big], "endpoint": "/v1/chat/completions", "completion_window": "24h"})).await;
    assert_error(&r, 400, "invalid_type");
    assert_short(&r, &big);
    let r = create(json!({"input_file_id": "f", "endpoint": "/v1/chat/completions", "completion_window": "24h",
        "metadata": {big.clone(): "v"}}))
    .await;
    assert_error(&r, 400, "invalid_metadata");
    assert_short(&r, &big);
    let r = api.post_raw("/v1/batches", "application/json", json!(big).to_string().into_bytes()).await;
    assert_error(&r, 400, "invalid_json");
    assert_short(&r, &big);
    let r = api.get(&format!("/v1/batches?limit=x{}", &long[..30_000])).await;
    assert_error(&r, 400, "invalid_query");
    assert_short(&r, &long);
    engine.stop().await;
}

/// `POST /v1/batches` with an `Idempotency-Key` header and a raw JSON body.
async fn create_with_key(api: &Api, key: &[u8], body: &str) -> Resp {
    let req = api
        .client
        .post(format!("{}/v1/batches", api.base))
        .bearer_auth(api.key.as_deref().unwrap())
        .header("Idempotency-Key", reqwest::header::HeaderValue::from_bytes(key).unwrap())
        .header("content-type", "application/json")
        .body(body.to_owned());
    Api::send(req).await
}

/// A reused Idempotency-Key: the same request gets the same batch (even once the input
/// file is gone); a different request gets 422 `idempotency_key_reused` and makes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_reused_with_another_request_is_a_422() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let fid = api.upload(&jsonl(&chat_lines(2))).await["id"].as_str().unwrap().to_owned();
    let other = api.upload(&jsonl(&chat_lines(3))).await["id"].as_str().unwrap().to_owned();
    let body = format!(
        r#"{{"input_file_id": "{fid}", "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": {{"a": "1", "b": "2"}}}}"#
    );
    let first = create_with_key(&api, b"k-1", &body).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let id = first.json["id"].as_str().unwrap().to_owned();
    // The same request written differently (key order, spacing, an explicit null): the same batch.
    let same = format!(
        r#"{{"metadata":{{"b":"2","a":"1"}},"completion_window":"24h","endpoint":"/v1/chat/completions","input_file_id":"{fid}","output_expires_after":null}}"#
    );
    let again = create_with_key(&api, b"k-1", &same).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json["id"], id.as_str());

    let differents = [
        format!(
            r#"{{"input_file_id": "{other}", "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": {{"a": "1", "b": "2"}}}}"#
        ),
        format!(
            r#"{{"input_file_id": "{fid}", "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": {{"a": "1", "b": "3"}}}}"#
        ),
        format!(r#"{{"input_file_id": "{fid}", "endpoint": "/v1/chat/completions", "completion_window": "24h"}}"#),
        format!(
            r#"{{"input_file_id": "{fid}", "endpoint": "/v1/embeddings", "completion_window": "24h", "metadata": {{"a": "1", "b": "2"}}}}"#
        ),
    ];
    for different in &differents {
        let r = create_with_key(&api, b"k-1", different).await;
        assert_error(&r, 422, "idempotency_key_reused");
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("'k-1'") && message.contains(&id), "{message}");
    }
    assert_eq!(api.get("/v1/batches").await.json["data"].as_array().unwrap().len(), 1);

    // Once the batch is done and its input file deleted, the same request still answers it.
    api.wait_terminal(&id, std::time::Duration::from_secs(10)).await;
    assert_eq!(api.delete(&format!("/v1/files/{fid}")).await.status, 200);
    let replay = create_with_key(&api, b"k-1", &body).await;
    assert_eq!(replay.status, 200, "{}", replay.text());
    assert_eq!(replay.json["id"], id.as_str());
    assert_eq!(replay.json["status"], "completed");
    let r = create_with_key(&api, b"k-1", &differents[0]).await;
    assert_error(&r, 422, "idempotency_key_reused");

    // Keys that cannot be one: over 255 characters, or not text.
    let r = create_with_key(&api, "k".repeat(256).as_bytes(), &differents[0]).await;
    assert_error(&r, 400, "invalid_idempotency_key");
    assert_short(&r, &"k".repeat(256));
    let r = create_with_key(&api, b"k-\xff", &differents[0]).await;
    assert_error(&r, 400, "invalid_idempotency_key");
    assert_eq!(api.get("/v1/batches").await.json["data"].as_array().unwrap().len(), 1);
    engine.stop().await;
}

/// Connections the engine holds open to `peers` (client ports), counted from outside its
/// code: sockets in this process's fd table whose local port is the engine's and whose
/// remote port is one of `peers`. The peers matter: the other tests of this binary run in
/// the same process, and a connection another test's stopped engine still holds can sit on
/// the port this engine was given (SO_REUSEADDR lets a listener bind beside it).
fn engine_connections(port: u16, peers: &std::collections::HashSet<u16>) -> usize {
    // 0A: the listening socket itself.
    socket_rows()
        .into_iter()
        .filter(|(local, remote, state)| {
            *local == Some(port) && remote.is_some_and(|p| peers.contains(&p)) && state != "0A"
        })
        .count()
}

/// Local ports of this process's established connections to the engine's `port` (the
/// client side, which is this test's own).
fn client_connections(port: u16) -> Vec<u16> {
    socket_rows()
        .into_iter()
        .filter(|(_, remote, state)| *remote == Some(port) && state == "01")
        .filter_map(|(local, _, _)| local)
        .collect()
}

/// (local port, remote port, state) of the TCP sockets in this process's fd table.
fn socket_rows() -> Vec<(Option<u16>, Option<u16>, String)> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let port_of = |col: &str| col.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
    let mut rows = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if inodes.contains(cols[9]) {
                rows.push((port_of(cols[1]), port_of(cols[2]), cols[3].to_owned()));
            }
        }
    }
    rows
}

/// Clients that trickle their request head: each is closed once the header-read timeout
/// passes, the engine never holds more than `max_connections`, and a normal client gets
/// its answer meanwhile (it waits for a free slot) and afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.max_connections = 8;
    cfg.header_read_timeout = std::time::Duration::from_millis(500);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let addr = engine.addr();
    const SLOW: usize = 40;
    let peers = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let mut slow = tokio::task::JoinSet::new();
    for i in 0..SLOW {
        let peers = peers.clone();
        slow.spawn(async move {
            let started = std::time::Instant::now();
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            peers.lock().unwrap().insert(tcp.local_addr().unwrap().port());
            tcp.write_all(b"GET /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
            let mut buf = [0u8; 256];
            loop {
                tokio::select! {
                    n = tcp.read(&mut buf) => {
                        // Closed by the engine (0 bytes, a reset, or a 408 it sent first).
                        if matches!(n, Ok(0) | Err(_)) || std::str::from_utf8(&buf).unwrap_or("").starts_with("HTTP/1.1 4") {
                            return started.elapsed();
                        }
                    }
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                        if tcp.write_all(format!("X-Trickle-{i}: a\r\n").as_bytes()).await.is_err() {
                            return started.elapsed();
                        }
                    }
                }
                assert!(started.elapsed() < std::time::Duration::from_secs(30), "slow client {i} still connected after 30 s");
            }
        });
    }
    // While they trickle: never more than the cap held at once.
    let mut most = 0;
    let sampling = std::time::Instant::now();
    while sampling.elapsed() < std::time::Duration::from_millis(1500) {
        let seen = peers.lock().unwrap().clone();
        most = most.max(engine_connections(addr.port(), &seen));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(most <= 8, "the engine held {most} connections at once (cap 8)");
    assert!(most >= 4, "only {most} connections seen: the sampling does not see the engine's sockets");
    // A normal client is served meanwhile (once a slot frees).
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), api.get("/v1/files"))
        .await
        .expect("served within 20 s");
    assert_eq!(r.status, 200);
    // Every slow client was closed by the engine.
    while let Some(held) = slow.join_next().await {
        let held = held.unwrap();
        assert!(held >= std::time::Duration::from_millis(400), "closed after {held:?}, before the timeout");
    }
    // Normal keep-alive use is unaffected: requests in a row on one pooled connection.
    for _ in 0..20 {
        assert_eq!(api.get("/v1/batches").await.status, 200);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let slow_ports = peers.lock().unwrap().clone();
    let pooled = client_connections(addr.port()).into_iter().filter(|p| !slow_ports.contains(p)).count();
    assert!((1..=2).contains(&pooled), "{pooled} client connections for 20 requests in a row: keep-alive not used");
    engine.stop().await;
}

/// Sends `head` and the first `sent` bytes of a `len`-byte body on a raw connection, then
/// nothing; returns what the engine answers (until it closes) and how long that took.
async fn stall_after(
    addr: std::net::SocketAddr,
    head: String,
    body: &[u8],
    sent: usize,
) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body[..sent]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), tcp.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a stalled body still held its connection after 20 s");
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

/// A body that stops arriving (a JSON create, a multipart upload) is cut off once nothing
/// came for `body_read_timeout`: a 408 in the contract's JSON, the connection closed. An
/// upload that keeps sending, however slowly, is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_off_and_a_slow_one_is_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.body_read_timeout = std::time::Duration::from_millis(500);
    let engine = start(cfg).await;
    let addr = engine.addr();
    let auth = format!("Authorization: Bearer {KEY}\r\n");

    let json = br#"{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h"}"#;
    let head = format!(
        "POST /v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        json.len()
    );
    let (answer, took) = stall_after(addr, head, json, 10).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(took >= std::time::Duration::from_millis(400), "cut after {took:?}, before the timeout");

    let line = br#"{"custom_id":"a","provider":"openai","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4.1-nano","messages":[{"role":"user","content":"hi"}]}}"#;
    let mut upload = Vec::new();
    upload.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n");
    upload.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.jsonl\"\r\n\r\n");
    upload.extend_from_slice(line);
    upload.extend_from_slice(b"\n\r\n--XyZ--\r\n");
    let head = |len: usize| {
        format!(
            "POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    let (answer, _) = stall_after(addr, head(upload.len()), &upload, upload.len() - 40).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");

    // The same upload a few bytes every 200 ms (2 s in all, four times the timeout): stored.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head(upload.len()).as_bytes()).await.unwrap();
    let pieces: Vec<&[u8]> = upload.chunks(upload.len().div_ceil(10)).collect();
    for piece in pieces {
        tcp.write_all(piece).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), tcp.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""purpose":"batch""#), "{answer}");
    engine.stop().await;
}
