//! A full disk, injected with the store's fault hook (`Engine::simulate_full_disk`): batches
//! pause and say so (`storage_unavailable` in `errors.data`), uploads and creates answer
//! 507, and once space returns every batch continues by itself to a complete result. (The
//! same on a real, small filesystem: tests/test_engine_storage.py.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn storage_notice(b: &Value) -> Option<String> {
    let entry = b["errors"]["data"].as_array()?.iter().find(|e| e["code"] == "storage_unavailable")?;
    Some(entry["message"].as_str().unwrap_or_default().to_owned())
}

fn files_on_disk(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An engine on `dir` whose simulated requests take `latency_ms`, `concurrency` at a time.
async fn simulated_engine(
    dir: &std::path::Path,
    latency_ms: u64,
    concurrency: usize,
) -> (fastrouter_batch_engine::Engine, Api) {
    let mut cfg = config(dir);
    cfg.provider = fastrouter_batch_engine::ProviderMode::Simulated(sim(latency_ms, 0.0));
    cfg.concurrency_per_provider = concurrency;
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    (engine, api)
}

async fn assert_507(r: Resp) {
    assert_error(&r, 507, "insufficient_storage");
    assert!(!r.text().contains("os error"), "raw OS message in {}", r.text());
}

/// The disk fills mid-batch (every write fails): no result is lost, no new request goes
/// out, the batch says why, and it finishes by itself once space returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_a_running_batch_which_continues_when_space_returns() {
    let dir = tempdir();
    let (engine, api) = simulated_engine(dir.path(), 5, 4).await;
    const N: usize = 3000;
    let (file, batch) = api.submit(&chat_lines(N), "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap().to_owned();
    api.wait_for(&id, Duration::from_secs(20), |b| counts(b).1 >= 100).await;

    engine.simulate_full_disk(true, true);
    let (b, _) = api.wait_for(&id, Duration::from_secs(10), |b| storage_notice(b).is_some()).await;
    let notice = storage_notice(&b).unwrap();
    assert!(notice.contains("cannot write") && notice.contains("continues by itself"), "{notice}");
    assert_eq!(b["status"], "in_progress");
    // Paused: nothing more is recorded (or sent) while the disk is full.
    let paused = counts(&api.batch(&id).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = api.batch(&id).await;
    assert_eq!(counts(&still), paused, "progress while the disk is full");
    assert!(storage_notice(&still).is_some());
    assert!(counts(&still).1 < N as u64);
    // Uploads and creates are refused with the contract's 507.
    assert_507(api.upload_with(&jsonl(&chat_lines(2)), Some("batch"), "x.jsonl").await).await;
    assert_507(api.create_batch_resp(file["id"].as_str().unwrap(), "/v1/chat/completions").await).await;
    // Terminal batches never carry the notice.
    let listed = api.get("/v1/batches").await.json;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(storage_notice(&listed["data"][0]).is_some(), "{listed}");

    engine.simulate_full_disk(false, false);
    let started = Instant::now();
    let (done, _) = api.wait_terminal(&id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["errors"].is_null(), "{done}");
    assert_eq!(counts(&done), (N as u64, N as u64, 0));
    let output = api.lines(&done["output_file_id"]).await;
    assert_cover_exactly(&output, &[], &ids(N));
    assert!(done["error_file_id"].is_null());
    eprintln!("resumed and finished {:?} after space returned", started.elapsed());
    // Nothing half-written left behind: the input and the output file.
    assert_eq!(files_on_disk(dir.path()).len(), 2, "{:?}", files_on_disk(dir.path()));
    engine.stop().await;
}

/// Result files cannot be written (the database still can): the batch runs every line,
/// then cannot finish; it says so, leaves no partial file, and completes once space returns.
/// The same for a cancelled batch's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_at_finalizing_holds_the_batch_until_space_returns() {
    let dir = tempdir();
    let (engine, api) = simulated_engine(dir.path(), 10, 2).await;
    let file = api.upload(&jsonl(&chat_lines(50))).await;
    let fid = file["id"].as_str().unwrap();
    let slow = api.upload(&jsonl(&chat_lines(1000))).await;
    engine.simulate_full_disk(false, true);
    assert_507(api.upload_with(&jsonl(&chat_lines(2)), Some("batch"), "x.jsonl").await).await;

    let batch = api.create_batch(fid, "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap();
    let (b, _) = api.wait_for(id, Duration::from_secs(20), |b| storage_notice(b).is_some() && counts(b).1 == 50).await;
    assert!(["in_progress", "finalizing"].contains(&b["status"].as_str().unwrap()), "{b}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let b = api.batch(id).await;
    assert!(!TERMINAL.contains(&b["status"].as_str().unwrap()), "{b}");
    assert!(storage_notice(&b).is_some(), "{b}");
    // Retried several times by now; none left a partial file (only the two inputs are there).
    assert_eq!(files_on_disk(dir.path()).len(), 2, "{:?}", files_on_disk(dir.path()));

    // A batch cancelled meanwhile (1000 lines take 5 s) cannot write its files either.
    let other = api.create_batch(slow["id"].as_str().unwrap(), "/v1/chat/completions").await;
    let other_id = other["id"].as_str().unwrap();
    api.wait_for(other_id, Duration::from_secs(10), |b| counts(b).1 > 0).await;
    let cancel = api.post_json(&format!("/v1/batches/{other_id}/cancel"), &Value::Null).await;
    assert_eq!(cancel.status, 200, "{}", cancel.text());
    let (b, _) = api.wait_for(other_id, Duration::from_secs(10), |b| storage_notice(b).is_some()).await;
    assert_eq!(b["status"], "cancelling", "{b}");

    engine.simulate_full_disk(false, false);
    let (done, _) = api.wait_terminal(id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["errors"].is_null(), "{done}");
    assert_cover_exactly(&api.lines(&done["output_file_id"]).await, &[], &ids(50));
    let (cancelled, _) = api.wait_terminal(other_id, Duration::from_secs(30)).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(cancelled["errors"].is_null(), "{cancelled}");
    let (total, completed, failed) = counts(&cancelled);
    assert_eq!((total, completed + failed), (1000, 1000), "{cancelled}");
    let output = api.lines(&cancelled["output_file_id"]).await;
    let errors = api.lines(&cancelled["error_file_id"]).await;
    assert_cover_exactly(&output, &errors, &ids(1000));
    engine.stop().await;
}
