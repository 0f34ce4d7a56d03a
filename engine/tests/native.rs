//! Native mode end to end in Rust: the engine against the fake upstream's batch APIs, over
//! real HTTP on 127.0.0.1, and an engine stopped and started again mid-run.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use fastrouter_batch_engine::{
    FakeKnobs, FakeUpstream, NativeConfig, ProviderMode, Secret, Upstream, UpstreamConfig, UpstreamMode,
};
use serde_json::Value;

fn native_mode(base: &str, chunk: usize) -> ProviderMode {
    ProviderMode::Upstream(UpstreamConfig {
        openai: Upstream { base_url: base.to_owned(), api_key: Some(Secret::new("sk-openai-test")) },
        anthropic: Upstream { base_url: base.to_owned(), api_key: Some(Secret::new("sk-ant-test")) },
        timeout: Duration::from_secs(10),
        mode: UpstreamMode::Native,
        native: NativeConfig { poll_interval: Duration::from_millis(20), ..NativeConfig::default() }
            .with_chunk_size(chunk),
    })
}

fn mixed(n: usize) -> (Vec<Value>, HashSet<String>) {
    let mut lines = Vec::new();
    for i in 0..n {
        lines.push(chat_line(&format!("o{i}"), &format!("openai question {i}")));
        lines.push(anthropic_line(&format!("a{i}"), &format!("anthropic question {i}"), 100));
    }
    let ids = lines.iter().map(|l| l["custom_id"].as_str().unwrap().to_owned()).collect();
    (lines, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_run_upstream_once_each_and_merge_back() {
    let fake = FakeUpstream::start(sim(0, 0.0), 0).await.expect("fake upstream");
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = native_mode(&fake.url(), 3);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (lines, ids) = mixed(7);
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(b["status"], "completed", "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    let err = api.lines(&b["error_file_id"]).await;
    assert_cover_exactly(&out, &err, &ids);
    assert!(err.is_empty(), "{err:?}");
    for l in &out {
        assert_output_line(l, "chat.completion");
    }
    let c = fake.counters();
    assert_eq!((c.openai_batch_creates, c.anthropic_batch_creates), (3, 3), "{c:?}");
    assert_eq!(c.chat_calls + c.messages_calls, 0);
    assert_eq!(c.file_uploads, c.file_deletes);
    assert_eq!(counts(&b), (14, 14, 0));
    assert!(b["usage"]["input_tokens"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(b["upstream_batches"].as_array().unwrap().len(), 6);
    // Each provider's tokens are summed from its merged answers.
    let providers = api.get(&format!("/v1/batches/{}/providers", batch["id"].as_str().unwrap())).await;
    for p in providers.json["data"].as_array().unwrap() {
        assert!(p["usage"]["input_tokens"].as_u64().unwrap() > 0, "{p}");
        assert!(p["usage"]["output_tokens"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["request_counts"]["completed"], 7, "{p}");
    }
    engine.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_stopped_while_polling_resumes_without_resubmitting() {
    let fake = FakeUpstream::start(sim(0, 0.0), 0).await.expect("fake upstream");
    fake.configure(FakeKnobs { stall: true, ..FakeKnobs::default() });
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = native_mode(&fake.url(), 100);
    let engine = start(cfg.clone()).await;
    let api = Api::new(&engine);
    let (lines, ids) = mixed(4);
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap().to_owned();
    api.wait_for(&id, Duration::from_secs(30), |b| {
        b["upstream_batches"].as_array().is_some_and(|u| u.len() == 2 && u.iter().all(|u| u["state"] == "submitted"))
    })
    .await;
    engine.stop().await;
    fake.update_knobs(|k| k.stall = false);
    let engine = start(cfg).await;
    assert_eq!(engine.resumed(), 1);
    let api = Api::new(&engine);
    let (b, _) = api.wait_terminal(&id, Duration::from_secs(30)).await;
    assert_eq!(b["status"], "completed", "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    assert_cover_exactly(&out, &[], &ids);
    let c = fake.counters();
    assert_eq!((c.openai_batch_creates, c.anthropic_batch_creates), (1, 1), "{c:?}");
    engine.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_reply_is_lost_is_found_not_repeated() {
    let fake = FakeUpstream::start(sim(0, 0.0), 0).await.expect("fake upstream");
    // Every first create of a chunk loses its reply (the batch is made all the same).
    fake.configure(FakeKnobs { drop_create_replies: 4, ..FakeKnobs::default() });
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = native_mode(&fake.url(), 4);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (lines, ids) = mixed(8);
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(b["status"], "completed", "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    assert_cover_exactly(&out, &[], &ids);
    let c = fake.counters();
    assert_eq!(c.dropped_replies, 4, "{c:?}");
    assert_eq!((c.openai_batch_creates, c.anthropic_batch_creates), (2, 2), "{c:?}");
    engine.stop().await;
    fake.stop().await;
}
