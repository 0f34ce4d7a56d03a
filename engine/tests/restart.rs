//! Durable state: a batch stopped mid-way resumes on the next engine started on the same
//! data directory, and files survive the restart.

mod common;

use std::time::Duration;

use common::*;
use fastrouter_batch_engine::ProviderMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_resumes_after_restart() {
    let dir = tempdir();
    let cfg = || {
        let mut c = config(dir.path());
        c.provider = ProviderMode::Simulated(sim(20, 0.0));
        c.concurrency_per_provider = 4;
        c
    };

    let engine = start(cfg()).await;
    assert_eq!(engine.resumed(), 0);
    assert_eq!(engine.data_dir(), dir.path());
    let api = Api::new(&engine);
    // Blank lines and CRLF ends here and there: line numbers (how results are keyed)
    // must agree between the run before the stop and the one after.
    let mut data = Vec::new();
    for (i, l) in chat_lines(400).iter().enumerate() {
        data.extend_from_slice(l.to_string().as_bytes());
        data.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
        if i % 50 == 0 {
            data.extend_from_slice(b"\n  \n");
        }
    }
    let file = api.upload(&data).await;
    assert_eq!(file["num_rows"].as_u64(), Some(400));
    let fid = file["id"].as_str().unwrap().to_owned();
    let batch = api.create_batch(&fid, "/v1/chat/completions").await;
    let bid = batch["id"].as_str().unwrap().to_owned();
    // A batch finished before the restart, to check it is still there after.
    let (_, done) = api.submit(&chat_lines(2), "/v1/chat/completions").await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    let (before_done, _) = api.wait_terminal(&done_id, Duration::from_secs(10)).await;
    let done_output = api.content(before_done["output_file_id"].as_str().unwrap()).await.bytes;

    let (partial, _) = api.wait_for(&bid, Duration::from_secs(10), |b| counts(b).1 >= 40).await;
    assert_eq!(partial["status"], "in_progress");
    drop(api);
    engine.stop().await;
    // Counts are durable: what was recorded before the stop is still recorded.
    let engine = start(cfg()).await;
    let api = Api::new(&engine);
    assert_eq!(engine.resumed(), 1, "the one unfinished batch is picked up");
    let after = api.batch(&bid).await;
    let (total, completed, failed) = counts(&after);
    assert_eq!(total, 400);
    assert_eq!(failed, 0);
    assert!(completed >= counts(&partial).1, "progress lost: before {partial} after {after}");
    assert!(completed < 400, "the batch had not finished before the stop: {after}");
    assert_eq!(after["in_progress_at"], partial["in_progress_at"]);

    let (b, _) = api.wait_terminal(&bid, Duration::from_secs(20)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (400, 400, 0));
    assert!(b["error_file_id"].is_null(), "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    assert_eq!(out.len(), 400);
    assert_cover_exactly(&out, &[], &ids(400));
    for l in &out {
        assert_output_line(l, "chat.completion");
    }

    // The finished batch and its output are unchanged; the input file is still there.
    let done_after = api.batch(&done_id).await;
    assert_eq!(done_after, before_done);
    assert_eq!(api.content(done_after["output_file_id"].as_str().unwrap()).await.bytes, done_output);
    assert_eq!(api.get(&format!("/v1/files/{fid}")).await.json, file);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_survive_restart() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let data = jsonl(&chat_lines(5));
    let file = api.upload(&data).await;
    let fid = file["id"].as_str().unwrap().to_owned();
    drop(api);
    engine.stop().await;

    let engine = start(config(dir.path())).await;
    assert_eq!(engine.resumed(), 0);
    let api = Api::new(&engine);
    let got = api.get(&format!("/v1/files/{fid}")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json, file);
    assert_eq!(api.content(&fid).await.bytes, data);
    let listed = api.get("/v1/files").await.json;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    // And it still works as batch input.
    let batch = api.create_batch(&fid, "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(counts(&b), (5, 5, 0));
    engine.stop().await;

    // A key the restarted engine does not accept sees nothing.
    let mut other = config(dir.path());
    other.api_keys = vec![fastrouter_batch_engine::Secret::new("sk-someone-else")];
    let engine = start(other).await;
    let api = Api::new(&engine);
    assert_error(&api.get(&format!("/v1/files/{fid}")).await, 404, "not_found");
    engine.stop().await;
}

/// A batch cancelled (status `cancelling`) right before a stop ends `cancelled` after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_then_restart() {
    let dir = tempdir();
    let cfg = || {
        let mut c = config(dir.path());
        c.provider = ProviderMode::Simulated(sim(50, 0.0));
        c.concurrency_per_provider = 2;
        c
    };
    let engine = start(cfg()).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(100), "/v1/chat/completions").await;
    let bid = batch["id"].as_str().unwrap().to_owned();
    api.wait_for(&bid, Duration::from_secs(10), |b| counts(b).1 >= 4).await;
    let r = api.post_json(&format!("/v1/batches/{bid}/cancel"), &serde_json::json!({})).await;
    assert_eq!(r.status, 200);
    drop(api);
    engine.stop().await;

    let engine = start(cfg()).await;
    let api = Api::new(&engine);
    let (b, _) = api.wait_terminal(&bid, Duration::from_secs(10)).await;
    assert_eq!(b["status"], "cancelled", "{b}");
    let (total, completed, failed) = counts(&b);
    assert_eq!(total, 100);
    assert_eq!(completed + failed, 100, "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    let errors = api.lines(&b["error_file_id"]).await;
    assert_eq!(out.len() as u64, completed);
    assert_cover_exactly(&out, &errors, &ids(100));
    assert!(errors.iter().all(|l| l["error"]["code"] == "batch_cancelled"));
    engine.stop().await;
}

/// The completion window runs out while the engine is stopped: the next start expires
/// the batch, keeping what was done before the stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_while_stopped() {
    let dir = tempdir();
    let cfg = || {
        let mut c = config(dir.path());
        c.provider = ProviderMode::Simulated(sim(50, 0.0));
        c.concurrency_per_provider = 2;
        c.completion_window = Duration::from_millis(1500);
        c
    };
    let engine = start(cfg()).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(100), "/v1/chat/completions").await;
    let bid = batch["id"].as_str().unwrap().to_owned();
    let (partial, _) = api.wait_for(&bid, Duration::from_secs(10), |b| counts(b).1 >= 4).await;
    assert_eq!(partial["status"], "in_progress");
    drop(api);
    engine.stop().await;
    tokio::time::sleep(Duration::from_millis(1600)).await;

    let engine = start(cfg()).await;
    let api = Api::new(&engine);
    let (b, _) = api.wait_terminal(&bid, Duration::from_secs(10)).await;
    assert_eq!(b["status"], "expired", "{b}");
    let (total, completed, failed) = counts(&b);
    assert_eq!(total, 100);
    assert!(completed >= counts(&partial).1 && completed < 100, "{b}");
    assert_eq!(completed + failed, 100, "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    let errors = api.lines(&b["error_file_id"]).await;
    assert_cover_exactly(&out, &errors, &ids(100));
    assert!(errors.iter().all(|l| l["error"]["code"] == "batch_expired" && l["response"].is_null()));
    engine.stop().await;
}

/// `stop()` does not wait out its grace period for idle keep-alive connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_is_prompt_with_idle_connections() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    assert_eq!(api.get("/v1/files").await.status, 200);
    // The client (and its pooled connection) stays alive across the stop.
    let started = std::time::Instant::now();
    engine.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "stop took {took:?} with an idle keep-alive connection open");
    // The port is closed afterwards.
    let after = api.client.get(format!("{}/v1/files", api.base)).bearer_auth(KEY).send().await;
    assert!(after.is_err(), "the engine still answers after stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_engine_per_data_directory() {
    let dir = tempdir();
    let first = start(config(dir.path())).await;
    let api = Api::new(&first);
    let file = api.upload(&jsonl(&chat_lines(3))).await;
    // A second engine on the same directory is refused (it would reclaim the first one's
    // uploads in progress and run its batches twice), and the first goes on unharmed.
    let second = fastrouter_batch_engine::Engine::start(config(dir.path())).await;
    let err = second.err().expect("a second engine on the same directory must be refused").to_string();
    assert!(err.contains("another engine is using this data directory"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert_eq!(api.get(&format!("/v1/files/{}", file["id"].as_str().unwrap())).await.status, 200);
    first.stop().await;
    // Once stopped, the directory is free again.
    let again = start(config(dir.path())).await;
    assert_eq!(Api::new(&again).get(&format!("/v1/files/{}", file["id"].as_str().unwrap())).await.status, 200);
    again.stop().await;
}
