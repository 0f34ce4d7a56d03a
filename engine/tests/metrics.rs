//! `/metrics` over HTTP: who may read it, what it counts after real batches (with faults
//! and retries, and a full disk injected), and that its labels name route templates, never
//! raw paths. Also the per-provider breakdown and the batch's `usage` the dashboard shows.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use fastrouter_batch_engine::{EngineConfig, ProviderMode, Secret};
use serde_json::{json, Value};

/// The samples of an exposition: `name{labels}` (as written) → value. Checks each line's shape.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value = if value == "+Inf" { f64::INFINITY } else { value.parse().unwrap() };
        assert!(out.insert(series.to_owned(), value).is_none(), "{series} twice");
    }
    out
}

/// The sum of the samples of `name` whose labels contain every `label="value"` in `with`.
fn sum(s: &BTreeMap<String, f64>, name: &str, with: &[&str]) -> f64 {
    s.iter()
        .filter(|(k, _)| {
            let (n, labels) = k.split_once('{').unwrap_or((k, ""));
            n == name && with.iter().all(|w| labels.contains(w))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(api: &Api) -> BTreeMap<String, f64> {
    let r = api.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    samples(&r.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_an_accepted_key_unless_public() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    assert_error(&api.with_key(None).get("/metrics").await, 401, "invalid_api_key");
    assert_error(&api.with_key(Some("sk-wrong")).get("/metrics").await, 401, "invalid_api_key");
    assert_eq!(api.with_key(Some(KEY)).get("/metrics").await.status, 200);
    engine.stop().await;

    let dir = tempdir();
    let engine = start(EngineConfig { metrics_public: true, ..config(dir.path()) }).await;
    let r = Api::new(&engine).with_key(None).get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("fastrouter_engine_batches{status=\"completed\"} 0"), "{}", r.text());
    // Public metrics open nothing else.
    assert_error(&Api::new(&engine).with_key(None).get("/v1/batches").await, 401, "invalid_api_key");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_lines_attempts_and_retries() {
    let dir = tempdir();
    let cfg =
        EngineConfig { provider: ProviderMode::Simulated(sim(1, 0.3)), retry: fast_retry(1), ..config(dir.path()) };
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let mut lines = chat_lines(120);
    lines.extend((0..80).map(|i| anthropic_line(&format!("a{i}"), "hello there", 50)));
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap();
    let (done, _) = api.wait_terminal(id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed");
    let (total, completed, failed) = counts(&done);
    assert_eq!((total, completed + failed), (200, 200));
    assert!(failed > 0, "with a 30% fault rate and one retry some lines fail: {done}");
    assert_eq!(api.get("/v1/no/such/route/123").await.status, 404);
    assert_eq!(api.request(reqwest::Method::PUT, &format!("/v1/batches/{id}")).await.status, 405);

    let s = scrape(&api).await;
    let text = api.get("/metrics").await.text();
    // Routes by template: no id and no raw path in any label.
    assert!(!text.contains(id) && !text.contains("/v1/no/such"), "{text}");
    let batch_get = r#"route="/v1/batches/{batch_id}",method="GET",status="200""#;
    assert!(sum(&s, "fastrouter_engine_http_requests_total", &[batch_get]) >= 1.0, "{text}");
    assert_eq!(sum(&s, "fastrouter_engine_http_requests_total", &[r#"route="unmatched""#, r#"status="404""#]), 1.0);
    assert_eq!(sum(&s, "fastrouter_engine_http_requests_total", &[r#"method="PUT""#, r#"status="405""#]), 1.0);
    assert_eq!(sum(&s, "fastrouter_engine_http_requests_total", &[r#"route="/v1/files",method="POST""#]), 1.0);
    assert!(sum(&s, "fastrouter_engine_http_request_duration_seconds_count", &[r#"route="/v1/files""#]) >= 1.0);
    assert_eq!(s[r#"fastrouter_engine_batches{status="completed"}"#], 1.0);
    assert_eq!(s[r#"fastrouter_engine_batches{status="in_progress"}"#], 0.0);

    // Lines by provider agree with the batch's own breakdown.
    let breakdown = api.get(&format!("/v1/batches/{id}/providers")).await.json;
    for p in breakdown["data"].as_array().unwrap() {
        let name = p["provider"].as_str().unwrap();
        let label = format!("provider=\"{name}\"");
        let c = &p["request_counts"];
        let processed = c["completed"].as_f64().unwrap() + c["failed"].as_f64().unwrap();
        assert_eq!(sum(&s, "fastrouter_engine_lines_processed_total", &[&label]), processed, "{name}");
        assert_eq!(sum(&s, "fastrouter_engine_lines_failed_total", &[&label]), c["failed"].as_f64().unwrap());
        // Every attempt is timed; the attempts are the lines plus their retries.
        let attempts = sum(&s, "fastrouter_engine_upstream_requests_total", &[&label]);
        let retries = sum(&s, "fastrouter_engine_upstream_retries_total", &[&label]);
        assert!(retries > 0.0, "{name}: {text}");
        assert_eq!(attempts, processed + retries, "{name}");
        assert_eq!(sum(&s, "fastrouter_engine_upstream_request_duration_seconds_count", &[&label]), attempts);
        let inf = format!("fastrouter_engine_upstream_request_duration_seconds_bucket{{{label},le=\"+Inf\"}}");
        assert_eq!(s[&inf], attempts);
        // The simulator's faults are 429s and 500s.
        let faults = sum(&s, "fastrouter_engine_upstream_requests_total", &[&label, r#"status="429""#])
            + sum(&s, "fastrouter_engine_upstream_requests_total", &[&label, r#"status="500""#]);
        assert_eq!(faults, retries + c["failed"].as_f64().unwrap(), "{name}: {text}");
    }
    assert_eq!(sum(&s, "fastrouter_engine_lines_processed_total", &[]), 200.0);
    assert_eq!(sum(&s, "fastrouter_engine_lines_failed_total", &[]), failed as f64);
    assert_eq!(sum(&s, "fastrouter_engine_queue_depth", &[]), 0.0);
    assert_eq!(sum(&s, "fastrouter_engine_upstream_in_flight", &[]), 0.0);
    assert_eq!(sum(&s, "fastrouter_engine_storage_errors_total", &[]), 0.0);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_queue_depth_while_running() {
    let dir = tempdir();
    let cfg = EngineConfig {
        provider: ProviderMode::Simulated(sim(50, 0.0)),
        concurrency_per_provider: 2,
        ..config(dir.path())
    };
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(200), "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap();
    api.wait_for(id, Duration::from_secs(20), |b| counts(b).1 >= 4).await;
    let s = scrape(&api).await;
    assert_eq!(s[r#"fastrouter_engine_batches{status="in_progress"}"#], 1.0);
    let queued = s[r#"fastrouter_engine_queue_depth{provider="openai"}"#];
    assert!((150.0..=196.0).contains(&queued), "{queued}");
    assert_eq!(s[r#"fastrouter_engine_upstream_in_flight{provider="openai"}"#], 2.0);
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_storage_errors_and_the_pause() {
    let dir = tempdir();
    let cfg = EngineConfig { provider: ProviderMode::Simulated(sim(2, 0.0)), ..config(dir.path()) };
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(2000), "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap();
    api.wait_for(id, Duration::from_secs(20), |b| counts(b).1 >= 20).await;
    engine.simulate_full_disk(true, true);
    assert_eq!(api.upload_with(&jsonl(&chat_lines(1)), Some("batch"), "x.jsonl").await.status, 507);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let s = loop {
        let s = scrape(&api).await;
        if s["fastrouter_engine_storage_paused"] == 1.0 {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "never paused: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(s[r#"fastrouter_engine_storage_errors_total{operation="record_results"}"#] >= 1.0);
    assert_eq!(s[r#"fastrouter_engine_storage_errors_total{operation="request"}"#], 1.0);
    engine.simulate_full_disk(false, false);
    let (done, _) = api.wait_terminal(id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed");
    let s = scrape(&api).await;
    assert_eq!(s["fastrouter_engine_storage_paused"], 0.0);
    engine.stop().await;
}

fn usage_of(lines: &[Value]) -> (u64, u64) {
    lines.iter().fold((0, 0), |(i, o), l| {
        let u = &l["response"]["body"]["usage"];
        (i + u["prompt_tokens"].as_u64().unwrap_or(0), o + u["completion_tokens"].as_u64().unwrap_or(0))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_break_down_by_provider_with_usage() {
    let dir = tempdir();
    let cfg =
        EngineConfig { provider: ProviderMode::Simulated(sim(0, 0.2)), retry: fast_retry(0), ..config(dir.path()) };
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let mut lines = chat_lines(30);
    lines.extend((0..20).map(|i| anthropic_line(&format!("a{i}"), "tell me a story", 8)));
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap();
    assert_eq!(batch["usage"]["total_tokens"], 0, "{batch}");
    let (done, _) = api.wait_terminal(id, Duration::from_secs(30)).await;
    let output = api.lines(&done["output_file_id"]).await;
    let errors = api.lines(&done["error_file_id"]).await;
    assert!(!errors.is_empty(), "a 20% fault rate without retries fails some lines");

    let r = api.get(&format!("/v1/batches/{id}/providers")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = r.json["data"].as_array().unwrap();
    let names: Vec<&str> = data.iter().map(|p| p["provider"].as_str().unwrap()).collect();
    assert_eq!(names, ["anthropic", "openai"]);
    for p in data {
        let prefix = if p["provider"] == "openai" { "r" } else { "a" };
        let mine = |ls: &[Value]| -> Vec<Value> {
            ls.iter().filter(|l| l["custom_id"].as_str().unwrap().starts_with(prefix)).cloned().collect()
        };
        let (ok, bad) = (mine(&output), mine(&errors));
        let want_total = if prefix == "r" { 30 } else { 20 };
        assert_eq!(p["request_counts"], json!({"total": want_total, "completed": ok.len(), "failed": bad.len()}));
        let (input, out) = usage_of(&ok);
        assert!(input > 0 && out > 0);
        assert_eq!(p["usage"]["input_tokens"], input);
        assert_eq!(p["usage"]["output_tokens"], out);
        assert_eq!(p["usage"]["total_tokens"], input + out);
    }
    // The batch's usage: OpenAI's `BatchUsage`, the sum over its providers.
    let (input, out) = usage_of(&output);
    assert_eq!(
        done["usage"],
        json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": out,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": input + out})
    );
    let listed = api.get("/v1/batches").await.json;
    assert_eq!(listed["data"][0]["usage"], done["usage"]);

    assert_error(&api.get("/v1/batches/fr_batch-nope/providers").await, 404, "not_found");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_gets_404_for_a_breakdown() {
    let dir = tempdir();
    let cfg = EngineConfig { api_keys: vec![Secret::new(KEY), Secret::new(KEY_B)], ..config(dir.path()) };
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&chat_lines(3), "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap();
    api.wait_terminal(id, Duration::from_secs(20)).await;
    assert_eq!(api.get(&format!("/v1/batches/{id}/providers")).await.status, 200);
    assert_error(&api.with_key(Some(KEY_B)).get(&format!("/v1/batches/{id}/providers")).await, 404, "not_found");
    engine.stop().await;
}

/// A batch that failed validation ran nothing: no providers, no usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_failed_validation_has_no_breakdown() {
    let dir = tempdir();
    let engine = start(config(dir.path())).await;
    let api = Api::new(&engine);
    let file = api.upload(b"{\"custom_id\": \"x\"}\nnot json\n").await;
    let batch = api.create_batch(file["id"].as_str().unwrap(), "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap();
    let (done, _) = api.wait_terminal(id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "failed");
    let r = api.get(&format!("/v1/batches/{id}/providers")).await;
    assert_eq!(r.json["data"], json!([]));
    assert_eq!(done["usage"]["total_tokens"], 0);
    engine.stop().await;
}
