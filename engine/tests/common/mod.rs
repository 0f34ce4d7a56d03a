//! Shared helpers for the engine's integration tests: start an engine on a temporary
//! data directory, talk to it over HTTP on 127.0.0.1, upload (multipart built by hand),
//! create batches, poll them with a deadline, and download result files.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use fastrouter_batch_engine::{Engine, EngineConfig, ProviderMode, RetryPolicy, Secret, SimulatedConfig};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub const KEY: &str = "sk-test";
pub const KEY_B: &str = "sk-test-b";

/// Terminal batch statuses.
pub const TERMINAL: &[&str] = &["completed", "failed", "expired", "cancelled"];

pub fn sim(latency_ms: u64, fault_rate: f64) -> SimulatedConfig {
    SimulatedConfig { latency: Duration::from_millis(latency_ms), fault_rate, embedding_dims: 8 }
}

/// Retries that cost almost no time.
pub fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(5),
    }
}

/// A config on `dir` with key `sk-test`, the simulator (no latency, no faults) and fast retries.
pub fn config(dir: &Path) -> EngineConfig {
    EngineConfig {
        data_dir: Some(dir.to_path_buf()),
        api_keys: vec![Secret::new(KEY)],
        provider: ProviderMode::Simulated(sim(0, 0.0)),
        retry: fast_retry(3),
        concurrency_per_provider: 16,
        ..Default::default()
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("engine-test-").tempdir().expect("temp dir")
}

pub async fn start(cfg: EngineConfig) -> Engine {
    Engine::start(cfg).await.expect("engine starts")
}

pub fn client() -> reqwest::Client {
    fastrouter_batch_engine::providers::install_crypto();
    reqwest::Client::builder().timeout(Duration::from_secs(20)).no_proxy().build().expect("client")
}

/// A response: status, headers, raw bytes and the body parsed as JSON (Null if it is not).
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Checks the contract's error body: `{"error": {"message", "type", "code", "status"}}`.
pub fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "status; body: {}", r.text());
    let e = r.json.get("error").unwrap_or_else(|| panic!("no 'error' object in {}", r.text()));
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "error.message: {}", r.text());
    assert!(e["type"].as_str().is_some_and(|t| !t.is_empty()), "error.type: {}", r.text());
    assert_eq!(e["code"], json!(code), "error.code; body: {}", r.text());
    assert_eq!(e["status"].as_u64(), Some(u64::from(status)), "error.status; body: {}", r.text());
}

/// A client bound to one engine URL and one key.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub key: Option<String>,
}

const BOUNDARY: &str = "----engine-test-boundary-7d1f0c";

/// A multipart/form-data body with the given text fields and one file part.
pub fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    if let Some((filename, data)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/jsonl\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

impl Api {
    pub fn new(engine: &Engine) -> Self {
        Self { client: client(), base: engine.url(), key: Some(engine.api_key().expose().to_owned()) }
    }

    pub fn with_key(&self, key: Option<&str>) -> Self {
        Self { client: self.client.clone(), base: self.base.clone(), key: key.map(str::to_owned) }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.client.request(method, format!("{}{}", self.base, path));
        match &self.key {
            Some(k) => b.bearer_auth(k),
            None => b,
        }
    }

    pub async fn send(b: reqwest::RequestBuilder) -> Resp {
        let r = b.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body read").to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, headers, bytes, json }
    }

    pub async fn get(&self, path: &str) -> Resp {
        Self::send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        Self::send(self.req(reqwest::Method::DELETE, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        Self::send(self.req(reqwest::Method::POST, path).json(body)).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        Self::send(self.req(reqwest::Method::POST, path).header("content-type", content_type).body(body)).await
    }

    pub async fn request(&self, method: reqwest::Method, path: &str) -> Resp {
        Self::send(self.req(method, path)).await
    }

    /// `POST /v1/files` with `purpose` (unless None) and the file.
    pub async fn upload_with(&self, data: &[u8], purpose: Option<&str>, filename: &str) -> Resp {
        let fields: Vec<(&str, &str)> = purpose.map(|p| ("purpose", p)).into_iter().collect();
        let body = multipart(&fields, Some((filename, data)));
        self.post_raw("/v1/files", &format!("multipart/form-data; boundary={BOUNDARY}"), body).await
    }

    /// Uploads with purpose `batch`; panics unless 200. Returns the file object.
    pub async fn upload(&self, data: &[u8]) -> Value {
        let r = self.upload_with(data, Some("batch"), "input.jsonl").await;
        assert_eq!(r.status, 200, "upload: {}", r.text());
        r.json
    }

    pub async fn create_batch_resp(&self, file_id: &str, endpoint: &str) -> Resp {
        self.post_json(
            "/v1/batches",
            &json!({"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"}),
        )
        .await
    }

    /// Creates a batch; panics unless 200. Returns the batch object.
    pub async fn create_batch(&self, file_id: &str, endpoint: &str) -> Value {
        let r = self.create_batch_resp(file_id, endpoint).await;
        assert_eq!(r.status, 200, "create batch: {}", r.text());
        r.json
    }

    /// Uploads `lines` as JSONL and creates a batch on `endpoint`.
    pub async fn submit(&self, lines: &[Value], endpoint: &str) -> (Value, Value) {
        let file = self.upload(&jsonl(lines)).await;
        let batch = self.create_batch(file["id"].as_str().unwrap(), endpoint).await;
        (file, batch)
    }

    pub async fn batch(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/batches/{id}")).await;
        assert_eq!(r.status, 200, "get batch: {}", r.text());
        r.json
    }

    /// Polls until `pred` holds on the batch, or panics after `timeout`. Returns the
    /// batch and the distinct statuses seen, in order.
    pub async fn wait_for(&self, id: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> (Value, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let b = self.batch(id).await;
            let s = b["status"].as_str().unwrap_or_default().to_owned();
            if seen.last() != Some(&s) {
                seen.push(s);
            }
            if pred(&b) {
                return (b, seen);
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting on batch {id}; statuses {seen:?}; last {b}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls until the batch reaches a terminal status.
    pub async fn wait_terminal(&self, id: &str, timeout: Duration) -> (Value, Vec<String>) {
        self.wait_for(id, timeout, |b| TERMINAL.contains(&b["status"].as_str().unwrap_or_default())).await
    }

    /// `GET /v1/files/{id}/content`; panics unless 200.
    pub async fn content(&self, file_id: &str) -> Resp {
        let r = self.get(&format!("/v1/files/{file_id}/content")).await;
        assert_eq!(r.status, 200, "content of {file_id}: {}", r.text());
        r
    }

    /// The parsed lines of a file's content (none when `file_id` is null).
    pub async fn lines(&self, file_id: &Value) -> Vec<Value> {
        match file_id.as_str() {
            None => Vec::new(),
            Some(id) => parse_jsonl(&self.content(id).await.bytes),
        }
    }
}

pub fn parse_jsonl(data: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(data).expect("utf-8 content");
    assert!(text.is_empty() || text.ends_with('\n'), "content does not end with a newline");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

pub fn jsonl(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

pub fn chat_line(custom_id: &str, text: &str) -> Value {
    json!({"custom_id": custom_id, "provider": "openai", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": text}]}})
}

pub fn anthropic_line(custom_id: &str, text: &str, max_tokens: u64) -> Value {
    json!({"custom_id": custom_id, "provider": "anthropic", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "anthropic/claude-4.5-sonnet", "max_tokens": max_tokens,
                 "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": text}]}})
}

pub fn embed_line(custom_id: &str, input: Value) -> Value {
    json!({"custom_id": custom_id, "provider": "openai", "method": "POST", "url": "/v1/embeddings",
        "body": {"model": "openai/text-embedding-3-small", "input": input}})
}

/// `n` openai chat lines `r0..r{n-1}`.
pub fn chat_lines(n: usize) -> Vec<Value> {
    (0..n).map(|i| chat_line(&format!("r{i}"), &format!("question {i}"))).collect()
}

pub fn ids(n: usize) -> HashSet<String> {
    (0..n).map(|i| format!("r{i}")).collect()
}

/// Each line's custom_id, checking none repeats.
pub fn by_custom_id(lines: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for l in lines {
        let id = l["custom_id"].as_str().unwrap_or_else(|| panic!("line without custom_id: {l}")).to_owned();
        assert!(out.insert(id.clone(), l.clone()).is_none(), "custom_id {id} appears twice");
    }
    out
}

/// Output and error lines together cover `expected` exactly once each.
pub fn assert_cover_exactly(output: &[Value], errors: &[Value], expected: &HashSet<String>) {
    let mut all = output.to_vec();
    all.extend_from_slice(errors);
    let got = by_custom_id(&all);
    let got: HashSet<String> = got.into_keys().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, unexpected {extra:?}");
}

/// The contract's output line for a 2xx answer.
pub fn assert_output_line(l: &Value, object: &str) {
    assert!(l["id"].as_str().is_some_and(|i| i.starts_with("batch_req_")), "id: {l}");
    assert!(l["custom_id"].is_string(), "{l}");
    assert_eq!(l["response"]["status_code"], json!(200), "{l}");
    assert_eq!(l["response"]["body"]["object"], json!(object), "{l}");
    assert!(l.get("error").is_some_and(Value::is_null), "error must be present and null: {l}");
}

pub fn counts(b: &Value) -> (u64, u64, u64) {
    let c = &b["request_counts"];
    (c["total"].as_u64().unwrap(), c["completed"].as_u64().unwrap(), c["failed"].as_u64().unwrap())
}

pub fn ts(b: &Value, field: &str) -> i64 {
    b[field].as_i64().unwrap_or_else(|| panic!("{field} not set: {b}"))
}

/// Like `jsonl`, with blank lines and CRLF ends scattered through (line numbers then
/// differ from request numbers).
pub fn jsonl_gappy(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i % 13 == 5 {
            out.extend_from_slice(b"\n \t\n");
        }
        out.extend_from_slice(l.to_string().as_bytes());
        out.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
    }
    out
}
