//! Batch processing with the built-in simulator: the happy path, validation failures,
//! failing and retried lines, cancel and expiry.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use fastrouter_batch_engine::ProviderMode;
use serde_json::{json, Value};

const STATUS_ORDER: &[&str] = &["validating", "in_progress", "finalizing", "completed"];

/// `seen` is a subsequence of `order` (statuses never go backwards or skip to another path).
fn assert_status_path(seen: &[String], order: &[&str]) {
    let mut pos = 0;
    for s in seen {
        let i =
            order[pos..].iter().position(|o| o == s).unwrap_or_else(|| panic!("status {s} out of order in {seen:?}"));
        pos += i;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_mixed_providers() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Simulated(sim(5, 0.0));
    cfg.concurrency_per_provider = 8;
    let engine = start(cfg).await;
    let api = Api::new(&engine);

    // 100 openai + 100 anthropic lines; r{i} and r{i+50} of each provider ask the same thing.
    let mut lines = Vec::new();
    for i in 0..100 {
        lines.push(chat_line(&format!("o{i}"), &format!("question {}", i % 50)));
        lines.push(anthropic_line(&format!("a{i}"), &format!("question {}", i % 50), 100));
    }
    // Blank lines are not requests: num_rows counts only the 200 request lines.
    let mut data = jsonl(&lines[..10]);
    data.extend_from_slice(b"\n   \n");
    data.extend_from_slice(&jsonl(&lines[10..]));
    data.extend_from_slice(b"\n");

    let file = api.upload(&data).await;
    let fid = file["id"].as_str().unwrap().to_owned();
    assert!(fid.starts_with("file-"), "{file}");
    assert_eq!(file["file_id"], file["id"]);
    assert_eq!(file["object"], "file");
    assert_eq!(file["bytes"].as_u64(), Some(data.len() as u64));
    assert_eq!(file["num_rows"].as_u64(), Some(200));
    assert_eq!(file["purpose"], "batch");
    assert_eq!(file["filename"], "input.jsonl");
    assert!(file["created_at"].as_i64().is_some_and(|t| t > 1_600_000_000), "{file}");
    // Retrieving gives the same object, and the content is the bytes uploaded.
    let got = api.get(&format!("/v1/files/{fid}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json, file);
    assert_eq!(api.content(&fid).await.bytes, data);

    let created = api.create_batch(&fid, "/v1/chat/completions").await;
    let bid = created["id"].as_str().unwrap().to_owned();
    assert!(bid.starts_with("fr_batch-"), "{created}");
    assert_eq!(created["batch_id"], created["id"]);
    assert_eq!(created["object"], "batch");
    assert_eq!(created["status"], "validating");
    assert_eq!(created["endpoint"], "/v1/chat/completions");
    assert_eq!(created["input_file_id"], json!(fid));
    assert_eq!(created["completion_window"], "24h");
    let created_at = ts(&created, "created_at");
    // created_at and expires_at come from two clock reads: allow them a second apart.
    let expires_at = ts(&created, "expires_at");
    assert!((created_at + 24 * 3600 - 1..=created_at + 24 * 3600).contains(&expires_at), "{created}");

    let (b, seen) = api.wait_terminal(&bid, Duration::from_secs(20)).await;
    let mut path = vec!["validating".to_owned()];
    path.extend(seen.into_iter().filter(|s| s != "validating"));
    assert_status_path(&path, STATUS_ORDER);
    assert_eq!(b["status"], "completed", "{b}");
    let (c, i, f, done) =
        (ts(&b, "created_at"), ts(&b, "in_progress_at"), ts(&b, "finalizing_at"), ts(&b, "completed_at"));
    assert!(c <= i && i <= f && f <= done, "timestamps out of order: {b}");
    assert_eq!(c, created_at);
    for never in ["failed_at", "expired_at", "cancelling_at", "cancelled_at"] {
        assert!(b[never].is_null(), "{never} set: {b}");
    }
    assert_eq!(counts(&b), (200, 200, 0));
    assert!(b["error_file_id"].is_null(), "{b}");
    assert!(b["errors"].is_null(), "{b}");

    let out_id = b["output_file_id"].as_str().expect("output file").to_owned();
    let out = api.content(&out_id).await;
    let out_lines = parse_jsonl(&out.bytes);
    assert_eq!(out_lines.len(), 200);
    let by_id = by_custom_id(&out_lines);
    let expected: HashSet<String> = (0..100).flat_map(|i| [format!("o{i}"), format!("a{i}")]).collect();
    assert_eq!(by_id.keys().cloned().collect::<HashSet<_>>(), expected);
    let mut line_ids = HashSet::new();
    for l in &out_lines {
        assert_output_line(l, "chat.completion");
        assert!(line_ids.insert(l["id"].as_str().unwrap().to_owned()), "request id repeats: {l}");
        let body = &l["response"]["body"];
        assert_eq!(body["choices"][0]["message"]["role"], "assistant");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
    }
    // The simulated reply is deterministic, and says which model answered what.
    for i in 0..50 {
        for (p, model) in [("o", "openai/gpt-4.1-nano"), ("a", "anthropic/claude-4.5-sonnet")] {
            let x = &by_id[&format!("{p}{i}")]["response"]["body"]["choices"][0]["message"]["content"];
            let y = &by_id[&format!("{p}{}", i + 50)]["response"]["body"]["choices"][0]["message"]["content"];
            assert_eq!(x, y);
            assert_eq!(x, &json!(format!("Simulated answer from {model}: question {i}")));
        }
    }

    // The output file's object.
    let of = api.get(&format!("/v1/files/{out_id}")).await.json;
    assert_eq!(of["id"], json!(out_id));
    assert_eq!(of["file_id"], json!(out_id));
    assert_eq!(of["object"], "file");
    assert_eq!(of["bytes"].as_u64(), Some(out.bytes.len() as u64));
    assert_eq!(of["num_rows"].as_u64(), Some(200));
    assert_eq!(of["purpose"], "batch_output");

    // The same file again: the same answers.
    let again = api.create_batch(&fid, "/v1/chat/completions").await;
    let (b2, _) = api.wait_terminal(again["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(b2["status"], "completed");
    let out2 = by_custom_id(&api.lines(&b2["output_file_id"]).await);
    for (id, l) in &by_id {
        assert_eq!(
            l["response"]["body"]["choices"][0]["message"]["content"],
            out2[id]["response"]["body"]["choices"][0]["message"]["content"]
        );
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_batch() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let mut lines: Vec<Value> =
        (0..20).map(|i| embed_line(&format!("e{i}"), json!(format!("text {}", i % 10)))).collect();
    lines.push(embed_line("multi", json!(["text 1", "text 2", "text 3"])));
    let mut dims = embed_line("dims", json!("text 1"));
    dims["body"]["dimensions"] = json!(4);
    lines.push(dims);
    let (_, batch) = api.submit(&lines, "/v1/embeddings").await;
    assert_eq!(batch["endpoint"], "/v1/embeddings");
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (22, 22, 0));
    assert!(b["error_file_id"].is_null());
    let out = by_custom_id(&api.lines(&b["output_file_id"]).await);
    assert_eq!(out.len(), 22);
    let vector = |id: &str, i: usize| out[id]["response"]["body"]["data"][i]["embedding"].clone();
    for l in out.values() {
        assert_output_line(l, "list");
        let data = l["response"]["body"]["data"].as_array().unwrap();
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d["object"], "embedding");
            assert_eq!(d["index"].as_u64(), Some(i as u64));
        }
    }
    for i in 0..20 {
        let v = vector(&format!("e{i}"), 0);
        assert_eq!(v.as_array().unwrap().len(), 8, "configured embedding_dims");
        let norm: f64 = v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap().powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "not a unit vector: {norm}");
        // Deterministic: the same input gets the same vector.
        assert_eq!(v, vector(&format!("e{}", (i + 10) % 20), 0));
    }
    assert_ne!(vector("e0", 0), vector("e1", 0));
    assert_eq!(out["multi"]["response"]["body"]["data"].as_array().unwrap().len(), 3);
    assert_eq!(vector("multi", 0), vector("e1", 0));
    assert_eq!(vector("multi", 1), vector("e2", 0));
    assert_eq!(vector("dims", 0).as_array().unwrap().len(), 4);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_failure_lists_problems_by_line() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let mut bad_role = chat_line("r3", "hello");
    bad_role["body"]["messages"][0]["role"] = json!("wizard");
    let mut data = Vec::new();
    data.extend_from_slice(&jsonl(&[chat_line("r1", "a"), chat_line("r2", "b")])); // lines 1, 2
    data.extend_from_slice(b"\n"); // line 3: blank
    data.extend_from_slice(&jsonl(&[chat_line("r1", "c"), bad_role])); // lines 4 (dup), 5 (role)
    data.extend_from_slice(b"{\"custom_id\": \"r6\", not json\n"); // line 6
    data.extend_from_slice(&jsonl(&[chat_line("r7", "d")])); // line 7
    let file = api.upload(&data).await;
    assert_eq!(file["num_rows"].as_u64(), Some(6));
    let batch = api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(b["status"], "failed", "{b}");
    assert!(ts(&b, "failed_at") >= ts(&b, "created_at"));
    assert!(b["in_progress_at"].is_null() && b["completed_at"].is_null(), "{b}");
    assert!(b["output_file_id"].is_null() && b["error_file_id"].is_null(), "{b}");
    assert_eq!(b["errors"]["object"], "list");
    let data = b["errors"]["data"].as_array().expect("errors.data");
    let got: Vec<(u64, String)> =
        data.iter().map(|e| (e["line"].as_u64().unwrap_or(0), e["code"].as_str().unwrap().to_owned())).collect();
    assert_eq!(
        got,
        vec![(4, "duplicate_custom_id".into()), (5, "invalid_role".into()), (6, "invalid_json".into())],
        "errors: {b}"
    );
    for e in data {
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
        assert!(e.get("param").is_some(), "param key missing: {e}");
    }
    assert_eq!(data[0]["param"], "custom_id");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_mismatch_fails_validation() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let lines: Vec<Value> = (0..3).map(|i| embed_line(&format!("e{i}"), json!("x"))).collect();
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(b["status"], "failed", "{b}");
    ts(&b, "failed_at");
    let data = b["errors"]["data"].as_array().expect("errors.data");
    assert_eq!(data.len(), 1, "{b}");
    assert_eq!(data[0]["code"], "mismatched_endpoint");
    assert_eq!(data[0]["param"], "endpoint");
    assert!(b["output_file_id"].is_null() && b["error_file_id"].is_null(), "{b}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_failing_completes_with_only_an_error_file() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Simulated(sim(0, 1.0));
    cfg.retry = fast_retry(0);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(50), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (50, 0, 50));
    assert!(b["output_file_id"].is_null(), "{b}");
    let errors = api.lines(&b["error_file_id"]).await;
    assert_eq!(errors.len(), 50);
    assert_cover_exactly(&[], &errors, &ids(50));
    for l in &errors {
        let code = l["response"]["status_code"].as_u64().unwrap_or(0);
        assert!(code == 429 || code == 500, "{l}");
        assert!(l["response"]["body"]["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{l}");
        assert!(l["id"].as_str().is_some_and(|i| i.starts_with("batch_req_")), "{l}");
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Simulated(sim(0, 0.5));
    // 0.5^26 per line: a line failing every attempt does not happen in practice.
    cfg.retry = fast_retry(25);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(100), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (100, 100, 0));
    assert!(b["error_file_id"].is_null(), "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    assert_cover_exactly(&out, &[], &ids(100));
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_way_keeps_partial_results() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Simulated(sim(50, 0.0));
    cfg.concurrency_per_provider = 4;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let file = api.upload(&jsonl_gappy(&chat_lines(300))).await;
    assert_eq!(file["num_rows"].as_u64(), Some(300));
    let batch = api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    let bid = batch["id"].as_str().unwrap().to_owned();
    let (running, _) = api.wait_for(&bid, Duration::from_secs(10), |b| counts(b).1 >= 8).await;
    assert_eq!(running["status"], "in_progress", "{running}");

    let r = api.post_json(&format!("/v1/batches/{bid}/cancel"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["status"], "cancelling", "{}", r.text());
    ts(&r.json, "cancelling_at");

    let (b, seen) = api.wait_terminal(&bid, Duration::from_secs(10)).await;
    assert_eq!(b["status"], "cancelled", "{b}");
    assert!(!seen.iter().any(|s| s == "completed" || s == "in_progress"), "{seen:?}");
    assert!(ts(&b, "cancelling_at") <= ts(&b, "cancelled_at"));
    assert!(b["completed_at"].is_null(), "{b}");
    let (total, completed, failed) = counts(&b);
    assert_eq!(total, 300);
    assert_eq!(completed + failed, total, "{b}");
    assert!((8..300).contains(&completed), "{b}");

    let out = api.lines(&b["output_file_id"]).await;
    let errors = api.lines(&b["error_file_id"]).await;
    assert_eq!(out.len() as u64, completed);
    assert_eq!(errors.len() as u64, failed);
    assert_cover_exactly(&out, &errors, &ids(300));
    for l in &out {
        assert_output_line(l, "chat.completion");
    }
    for l in &errors {
        assert!(l["response"].is_null(), "{l}");
        assert_eq!(l["error"]["code"], "batch_cancelled", "{l}");
        assert!(l["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{l}");
    }

    // Cancelling again answers the cancelled batch.
    let again = api.post_json(&format!("/v1/batches/{bid}/cancel"), &json!({})).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json["status"], "cancelled");
    // Unknown id.
    let missing = api.post_json("/v1/batches/fr_batch-nope/cancel", &json!({})).await;
    assert_error(&missing, 404, "not_found");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_finished_batch_is_a_conflict() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(3), "/v1/chat/completions").await;
    let bid = batch["id"].as_str().unwrap();
    let (b, _) = api.wait_terminal(bid, Duration::from_secs(10)).await;
    assert_eq!(b["status"], "completed");
    let r = api.post_json(&format!("/v1/batches/{bid}/cancel"), &json!({})).await;
    assert_error(&r, 409, "batch_not_cancellable");
    assert_eq!(api.batch(bid).await["status"], "completed");

    // A failed batch cannot be cancelled either.
    let (_, bad) = api.submit(&[embed_line("e", json!("x"))], "/v1/chat/completions").await;
    let bad_id = bad["id"].as_str().unwrap();
    let (b, _) = api.wait_terminal(bad_id, Duration::from_secs(10)).await;
    assert_eq!(b["status"], "failed");
    let r = api.post_json(&format!("/v1/batches/{bad_id}/cancel"), &json!({})).await;
    assert_error(&r, 409, "batch_not_cancellable");
    engine.stop().await;
}

/// A cancel that lands while the batch is still validating. Whatever the engine makes of
/// it, the batch must end `cancelled` with consistent counts (completed + failed == total)
/// and, if it writes an error file, one line per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_validating_keeps_counts_consistent() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Simulated(sim(50, 0.0));
    cfg.concurrency_per_provider = 1;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    // A file big enough that validating it takes a while.
    let n = 20_000;
    let file = api.upload(&jsonl(&chat_lines(n))).await;
    let fid = file["id"].as_str().unwrap().to_owned();
    let mut caught_validating = false;
    for _attempt in 0..3 {
        let batch = api.create_batch(&fid, "/v1/chat/completions").await;
        let bid = batch["id"].as_str().unwrap().to_owned();
        let r = api.post_json(&format!("/v1/batches/{bid}/cancel"), &json!({})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json["status"], "cancelling");
        let (b, _) = api.wait_terminal(&bid, Duration::from_secs(15)).await;
        assert_eq!(b["status"], "cancelled", "{b}");
        let (total, completed, failed) = counts(&b);
        let validated = b["in_progress_at"].is_i64();
        caught_validating |= !validated;
        assert_eq!(
            completed + failed,
            total,
            "ENGINE BUG: counts inconsistent after a cancel (cancelled while validating: {}): {b}",
            !validated
        );
        let errors = api.lines(&b["error_file_id"]).await;
        assert_eq!(errors.len() as u64, failed, "{b}");
        if caught_validating {
            break;
        }
    }
    eprintln!("cancel landed while validating: {caught_validating}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_keeps_partial_output() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Simulated(sim(50, 0.0));
    cfg.concurrency_per_provider = 2;
    cfg.completion_window = Duration::from_secs(1);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let file = api.upload(&jsonl_gappy(&chat_lines(200))).await;
    assert_eq!(file["num_rows"].as_u64(), Some(200));
    let batch = api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    // The wire still says 24h; expires_at follows the engine's window.
    assert_eq!(batch["completion_window"], "24h");
    let created_at = ts(&batch, "created_at");
    let expires_at = ts(&batch, "expires_at");
    assert!(expires_at >= created_at && expires_at <= created_at + 2, "{batch}");
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(b["status"], "expired", "{b}");
    assert!(ts(&b, "expired_at") >= ts(&b, "in_progress_at"));
    assert!(b["completed_at"].is_null() && b["cancelled_at"].is_null(), "{b}");
    let (total, completed, failed) = counts(&b);
    assert_eq!(total, 200);
    assert_eq!(completed + failed, 200, "{b}");
    assert!(completed > 0 && completed < 200, "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    let errors = api.lines(&b["error_file_id"]).await;
    assert_eq!(out.len() as u64, completed);
    assert_eq!(errors.len() as u64, failed);
    assert_cover_exactly(&out, &errors, &ids(200));
    for l in &out {
        assert_output_line(l, "chat.completion");
    }
    for l in &errors {
        assert!(l["response"].is_null(), "{l}");
        assert_eq!(l["error"]["code"], "batch_expired", "{l}");
    }
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_fails_validation() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.limits.max_requests = 5;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(7), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(b["status"], "failed", "{b}");
    let data = b["errors"]["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{b}");
    assert_eq!(data[0]["code"], "too_many_requests");
    assert_eq!(data[0]["line"], 6);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_bom_and_missing_final_newline() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    // A UTF-8 BOM, CRLF line ends, a blank CRLF line, no newline after the last line,
    // and custom_ids that need JSON escaping.
    let odd = "quote \" slash / ünïcødé ✓";
    let lines = [chat_line("r0", "zero"), chat_line(odd, "one"), chat_line("r2", "two")];
    let mut data = b"\xEF\xBB\xBF".to_vec();
    data.extend_from_slice(lines[0].to_string().as_bytes());
    data.extend_from_slice(b"\r\n\r\n");
    data.extend_from_slice(lines[1].to_string().as_bytes());
    data.extend_from_slice(b"\r\n");
    data.extend_from_slice(lines[2].to_string().as_bytes());
    let file = api.upload(&data).await;
    assert_eq!(file["num_rows"].as_u64(), Some(3));
    assert_eq!(file["bytes"].as_u64(), Some(data.len() as u64));
    let batch = api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (3, 3, 0));
    let out = by_custom_id(&api.lines(&b["output_file_id"]).await);
    let expected: HashSet<String> = ["r0", odd, "r2"].iter().map(|s| s.to_string()).collect();
    assert_eq!(out.keys().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(
        out[odd]["response"]["body"]["choices"][0]["message"]["content"],
        "Simulated answer from openai/gpt-4.1-nano: one"
    );
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bom_on_a_blank_first_line_is_not_a_request() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    // The validator counts two requests; the run must send exactly those two.
    let mut data = b"\xEF\xBB\xBF  \r\n".to_vec();
    data.extend_from_slice(&jsonl(&[chat_line("r0", "zero"), chat_line("r1", "one")]));
    let file = api.upload(&data).await;
    assert_eq!(file["num_rows"].as_u64(), Some(2));
    let batch = api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (2, 2, 0));
    assert!(b["error_file_id"].is_null(), "no phantom request in an error file: {b}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_hopeless_files_fail_validation() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let wait_failed = |api: Api, data: Vec<u8>| async move {
        let file = api.upload(&data).await;
        let batch = api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
        let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
        assert_eq!(b["status"], "failed", "{b}");
        assert!(b["output_file_id"].is_null() && b["error_file_id"].is_null(), "{b}");
        (file, b)
    };
    // Nothing in it, or only blank lines.
    for data in [Vec::new(), b"\n  \n\r\n".to_vec()] {
        let (file, b) = wait_failed(api.clone(), data.clone()).await;
        assert_eq!(file["num_rows"].as_u64(), Some(0));
        assert_eq!(file["bytes"].as_u64(), Some(data.len() as u64));
        let codes: Vec<&str> =
            b["errors"]["data"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
        assert_eq!(codes, vec!["empty_file"], "{b}");
    }
    // 1005 broken lines: 1000 listed, then one entry saying how many more.
    let data = "{oops\n".repeat(1005).into_bytes();
    let (_, b) = wait_failed(api.clone(), data).await;
    let errors = b["errors"]["data"].as_array().unwrap();
    assert_eq!(errors.len(), 1001, "{}", errors.len());
    assert!(errors[..1000].iter().enumerate().all(|(i, e)| e["code"] == "invalid_json" && e["line"] == json!(i + 1)));
    assert_eq!(errors[1000]["code"], "too_many_errors");
    assert!(errors[1000]["message"].as_str().unwrap().contains('5'), "{}", errors[1000]);
    // Invalid UTF-8.
    let mut data = jsonl(&[chat_line("r0", "a")]);
    data.extend_from_slice(b"{\"custom_id\": \"r1\xff\"}\n");
    let (_, b) = wait_failed(api.clone(), data).await;
    let e = &b["errors"]["data"][0];
    assert_eq!((e["line"].as_u64(), e["code"].as_str()), (Some(2), Some("invalid_utf8")), "{b}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_files_cannot_be_batch_input() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(2), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    let out_id = b["output_file_id"].as_str().unwrap();
    let r = api.create_batch_resp(out_id, "/v1/chat/completions").await;
    assert_error(&r, 400, "invalid_input_file");
    assert_eq!(r.json["error"]["param"], "input_file_id");
    // Listing by purpose tells inputs from outputs.
    let outs = api.get("/v1/files?purpose=batch_output").await.json;
    let ids: Vec<&Value> = outs["data"].as_array().unwrap().iter().map(|f| &f["id"]).collect();
    assert_eq!(ids, vec![&json!(out_id)]);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_per_provider_is_a_ceiling() {
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Simulated(sim(50, 0.0));
    cfg.concurrency_per_provider = 2;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let started = std::time::Instant::now();
    // 10 openai lines, 2 at a time, 50 ms each: at least 250 ms.
    let (_, batch) = api.submit(&chat_lines(10), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert_eq!(counts(&b), (10, 10, 0));
    assert!(took >= Duration::from_millis(240), "10 lines × 50 ms at concurrency 2 took only {took:?}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_generate_a_key_and_a_temporary_directory() {
    let engine = start(fastrouter_batch_engine::EngineConfig::default()).await;
    let key = engine.api_key().expose().to_owned();
    assert!(key.starts_with("sk-local-"), "{key}");
    assert!(engine.url().starts_with("http://127.0.0.1:"), "{}", engine.url());
    let data_dir = engine.data_dir().to_path_buf();
    assert!(data_dir.is_dir());
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(2), "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(counts(&b), (2, 2, 0));
    assert_error(&api.with_key(Some("sk-test")).get("/v1/files").await, 401, "invalid_api_key");
    drop(api);
    engine.stop().await;
    assert!(!data_dir.exists(), "the temporary data directory outlives the engine");
}
