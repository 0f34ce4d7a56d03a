//! The fake upstream's native batch APIs over real HTTP on 127.0.0.1: OpenAI's Files and
//! Batches, Anthropic's Message Batches, their life cycles, and every fault knob.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fastrouter_batch_engine::{FakeKnobs, FakeProvider, FakeUpstream, Secret, SimulatedConfig};
use serde_json::{json, Value};

const OPENAI_KEY: &str = "sk-openai-fake";
const ANTHROPIC_KEY: &str = "sk-ant-fake";

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
    json: Value,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// A client for the fake, with each provider's headers.
struct Wire {
    base: String,
    http: reqwest::Client,
}

async fn read(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("body").to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp { status, headers, bytes, json }
}

impl Wire {
    fn new(fake: &FakeUpstream) -> Self {
        fastrouter_batch_engine::providers::install_crypto();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).no_proxy().build().expect("client");
        Self { base: fake.url(), http }
    }

    fn openai(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(OPENAI_KEY)
    }

    fn anthropic(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", ANTHROPIC_KEY)
            .header("anthropic-version", "2023-06-01")
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        read(req.send().await.expect("request")).await
    }

    /// `POST /v1/files`, multipart built by hand.
    async fn upload_named(&self, filename: &str, bytes: &[u8]) -> Resp {
        let boundary = "fake-native-boundary";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n").as_bytes(),
        );
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = self
            .openai(reqwest::Method::POST, "/v1/files")
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        self.send(req).await
    }

    async fn upload(&self, lines: &[Value]) -> String {
        let r = self.upload_named("chunk.jsonl", jsonl(lines).as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json["id"].as_str().expect("file id").to_owned()
    }

    async fn create_openai(&self, file_id: &str, endpoint: &str, metadata: Value) -> Resp {
        let body =
            json!({"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h", "metadata": metadata});
        self.send(self.openai(reqwest::Method::POST, "/v1/batches").json(&body)).await
    }

    async fn openai_batch(&self, lines: &[Value]) -> String {
        let file = self.upload(lines).await;
        let r = self.create_openai(&file, "/v1/chat/completions", json!({"fr_chunk": "c1"})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json["id"].as_str().unwrap().to_owned()
    }

    async fn poll_openai(&self, id: &str) -> Value {
        let r = self.send(self.openai(reqwest::Method::GET, &format!("/v1/batches/{id}"))).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json
    }

    /// Polls until the batch is terminal (bounded), returning every status seen.
    async fn finish_openai(&self, id: &str) -> (Value, Vec<String>) {
        let mut seen = Vec::new();
        for _ in 0..50 {
            let b = self.poll_openai(id).await;
            seen.push(b["status"].as_str().unwrap().to_owned());
            if ["completed", "failed", "expired", "cancelled"].contains(&b["status"].as_str().unwrap()) {
                return (b, seen);
            }
        }
        panic!("batch {id} never ended: {seen:?}");
    }

    async fn content(&self, file_id: &Value) -> String {
        let path = format!("/v1/files/{}/content", file_id.as_str().expect("a file id"));
        let r = self.send(self.openai(reqwest::Method::GET, &path)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }

    async fn create_anthropic(&self, requests: Value) -> Resp {
        self.send(self.anthropic(reqwest::Method::POST, "/v1/messages/batches").json(&json!({"requests": requests})))
            .await
    }

    async fn poll_anthropic(&self, id: &str) -> Value {
        let r = self.send(self.anthropic(reqwest::Method::GET, &format!("/v1/messages/batches/{id}"))).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json
    }

    async fn finish_anthropic(&self, id: &str) -> Value {
        for _ in 0..50 {
            let b = self.poll_anthropic(id).await;
            if b["processing_status"] == "ended" {
                return b;
            }
        }
        panic!("message batch {id} never ended");
    }

    /// Results through the batch's absolute `results_url`, as the SDK fetches them.
    async fn results(&self, batch: &Value) -> String {
        let url = batch["results_url"].as_str().expect("results_url");
        assert!(url.starts_with(&self.base), "results_url {url} is not the fake's own");
        let r = read(
            self.http
                .get(url)
                .header("x-api-key", ANTHROPIC_KEY)
                .header("anthropic-version", "2023-06-01")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }
}

fn jsonl(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.split('\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn by_id(lines: &[Value]) -> BTreeMap<String, Value> {
    lines.iter().map(|l| (l["custom_id"].as_str().unwrap().to_owned(), l.clone())).collect()
}

fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 50})
}

fn chat_line(id: &str, model: &str, text: &str) -> Value {
    json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions", "body": chat_body(model, text)})
}

fn chat_lines(n: usize) -> Vec<Value> {
    (0..n).map(|i| chat_line(&format!("r{i}"), "gpt-4.1-nano", &format!("question {i}"))).collect()
}

fn message_request(id: &str, text: &str) -> Value {
    json!({"custom_id": id, "params": {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}})
}

async fn fake() -> FakeUpstream {
    FakeUpstream::start(SimulatedConfig { embedding_dims: 8, ..Default::default() }, 0).await.expect("fake starts")
}

fn quick() -> FakeKnobs {
    FakeKnobs { retry_after: Duration::from_millis(50), ..FakeKnobs::default() }
}

#[tokio::test]
async fn openai_batch_runs_through_its_states_with_realtime_answers() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let mut lines = chat_lines(6);
    lines.push(chat_line("bad", "gpt-4.1-nano", "please fail [fake:error]"));
    let file = w.upload(&lines).await;
    let created = w.create_openai(&file, "/v1/chat/completions", json!({"fr_job": "j1", "fr_chunk": "k1"})).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let b = &created.json;
    assert_eq!(b["status"], "validating");
    assert_eq!(b["object"], "batch");
    assert!(b["id"].as_str().unwrap().starts_with("batch_"));
    assert_eq!(b["expires_at"].as_i64().unwrap(), b["created_at"].as_i64().unwrap() + 86_400);
    assert_eq!(b["request_counts"], json!({"total": 0, "completed": 0, "failed": 0}));
    assert_eq!(b["metadata"], json!({"fr_job": "j1", "fr_chunk": "k1"}));
    let id = b["id"].as_str().unwrap();

    // One step a poll: in_progress at 0, half, all, then finalizing and completed.
    let first = w.poll_openai(id).await;
    assert_eq!(
        (first["status"].as_str(), &first["request_counts"]),
        (Some("in_progress"), &json!({"total": 7, "completed": 0, "failed": 0}))
    );
    assert!(first["in_progress_at"].is_i64());
    let half = w.poll_openai(id).await;
    assert_eq!(half["status"], "in_progress");
    let done =
        half["request_counts"]["completed"].as_u64().unwrap() + half["request_counts"]["failed"].as_u64().unwrap();
    assert_eq!(done, 4, "live counts while in progress: {half}");
    let (end, seen) = w.finish_openai(id).await;
    assert_eq!(seen, ["in_progress", "finalizing", "completed"]);
    assert_eq!(end["request_counts"], json!({"total": 7, "completed": 6, "failed": 1}));
    assert_eq!(end["model"], "gpt-4.1-nano");
    for at in ["in_progress_at", "finalizing_at", "completed_at"] {
        assert!(end[at].is_i64(), "{at}: {end}");
    }
    assert!(end["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let out_text = w.content(&end["output_file_id"]).await;
    let out = parse_lines(&out_text);
    let in_order: Vec<&str> = (0..6).map(|i| ["r0", "r1", "r2", "r3", "r4", "r5"][i]).collect();
    let got: Vec<&str> = out.iter().map(|l| l["custom_id"].as_str().unwrap()).collect();
    assert_ne!(got, in_order, "the output file is shuffled");
    assert_eq!(by_id(&out).keys().cloned().collect::<BTreeSet<_>>().len(), 6);
    // Each answer is the one a realtime call gets for the same body.
    for (cid, line) in by_id(&out) {
        assert!(line["id"].as_str().unwrap().starts_with("batch_req_"));
        assert_eq!(line["error"], Value::Null);
        assert_eq!(line["response"]["status_code"], 200);
        let i: usize = cid[1..].parse().unwrap();
        let realtime = w
            .send(
                w.openai(reqwest::Method::POST, "/v1/chat/completions")
                    .json(&chat_body("gpt-4.1-nano", &format!("question {i}"))),
            )
            .await;
        assert_eq!(line["response"]["body"]["choices"], realtime.json["choices"]);
        assert_eq!(line["response"]["body"]["usage"], realtime.json["usage"]);
    }
    let errors = parse_lines(&w.content(&end["error_file_id"]).await);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["custom_id"], "bad");
    assert_eq!(errors[0]["error"], Value::Null, "a non-2xx line has error null");
    assert_eq!(errors[0]["response"]["status_code"], 400);
    assert_eq!(errors[0]["response"]["body"]["error"]["type"], "invalid_request_error");

    let output =
        w.send(w.openai(reqwest::Method::GET, &format!("/v1/files/{}", end["output_file_id"].as_str().unwrap()))).await;
    assert_eq!(output.json["purpose"], "batch_output");
    let c = fake.counters();
    assert_eq!((c.openai_batch_creates, c.file_uploads, c.openai_polls, c.file_downloads), (1, 1, 5, 2));
    assert_eq!(c.chat_calls, 6);
    let batches = fake.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(
        (batches[0].provider, batches[0].state.as_str(), batches[0].request_count),
        (FakeProvider::OpenAi, "completed", 7)
    );
    assert_eq!(batches[0].metadata["fr_chunk"], "k1");
    assert_eq!(batches[0].input_file_id.as_deref(), Some(file.as_str()));
    fake.stop().await;
}

#[tokio::test]
async fn openai_embeddings_batch_answers_like_realtime() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let line = json!({"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", "body": {"model": "text-embedding-3-small", "input": ["a", "b"]}});
    let file = w.upload(&[line]).await;
    let r = w.create_openai(&file, "/v1/embeddings", Value::Null).await;
    assert_eq!(r.json["metadata"], Value::Null);
    let (end, _) = w.finish_openai(r.json["id"].as_str().unwrap()).await;
    let out = parse_lines(&w.content(&end["output_file_id"]).await);
    let realtime = w
        .send(
            w.openai(reqwest::Method::POST, "/v1/embeddings")
                .json(&json!({"model": "text-embedding-3-small", "input": ["a", "b"]})),
        )
        .await;
    assert_eq!(out[0]["response"]["body"], realtime.json);
    assert_eq!(end["error_file_id"], Value::Null, "no error file without an error line");
    fake.stop().await;
}

/// Creates a batch over `lines`, expecting the create to succeed and the first poll to fail it with `code`.
async fn fails_late(w: &Wire, lines: &str, code: &str) -> Value {
    let r = w.upload_named("x.jsonl", lines.as_bytes()).await;
    let file = r.json["id"].as_str().unwrap();
    let created = w.create_openai(file, "/v1/chat/completions", Value::Null).await;
    assert_eq!(created.status, 200, "content errors never fail the create: {}", created.text());
    assert_eq!(created.json["status"], "validating");
    let b = w.poll_openai(created.json["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "failed", "{b}");
    assert!(b["failed_at"].is_i64());
    assert_eq!(b["errors"]["object"], "list");
    let data = b["errors"]["data"].as_array().unwrap();
    assert!(data.iter().any(|e| e["code"] == code), "{code} in {data:?}");
    assert!(b["output_file_id"].is_null() && b["error_file_id"].is_null());
    b
}

#[tokio::test]
async fn openai_validation_fails_the_batch_late() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let two_models = jsonl(&[chat_line("a", "gpt-4.1-nano", "x"), chat_line("b", "gpt-4o-mini", "y")]);
    let b = fails_late(&w, &two_models, "model_mismatch").await;
    assert_eq!(b["errors"]["data"][0]["line"], 2);
    let bad_json = format!("{}{{not json\n", jsonl(&[chat_line("a", "gpt-4.1-nano", "x")]));
    let b = fails_late(&w, &bad_json, "invalid_json_line").await;
    assert_eq!(b["errors"]["data"][0]["line"], 2);
    let mut other_url = chat_line("b", "gpt-4.1-nano", "y");
    other_url["url"] = json!("/v1/embeddings");
    fails_late(&w, &jsonl(&[chat_line("a", "gpt-4.1-nano", "x"), other_url]), "url_mismatch").await;
    fails_late(
        &w,
        &jsonl(&[chat_line("a", "gpt-4.1-nano", "x"), chat_line("a", "gpt-4.1-nano", "y")]),
        "duplicate_custom_id",
    )
    .await;
    fails_late(&w, "\n", "empty_file").await;
    let no_id = json!({"method": "POST", "url": "/v1/chat/completions", "body": chat_body("m", "x")});
    fails_late(&w, &jsonl(&[no_id]), "missing_required_parameter").await;
    let many: String = (0..50_001).map(|i| format!("{}\n", chat_line(&format!("r{i}"), "m", "x"))).collect();
    fails_late(&w, &many, "too_many_tasks").await;

    // The enqueued-token limit: the second batch of the same model passes it.
    fake.configure(FakeKnobs { enqueued_token_limit: Some(60), ..quick() });
    let first = w.openai_batch(&chat_lines(4)).await;
    assert_eq!(w.poll_openai(&first).await["status"], "in_progress");
    let b = fails_late(&w, &jsonl(&chat_lines(4)), "token_limit_exceeded").await;
    assert!(b["errors"]["data"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Enqueued token limit reached for gpt-4.1-nano"));
    fake.stop().await;
}

#[tokio::test]
async fn openai_create_and_upload_refusals() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let r = w.upload_named("data.csv", b"a,b\n").await;
    assert_eq!(
        (r.status, r.json["error"]["message"].as_str()),
        (400, Some("Invalid file format for Batch API. Must be .jsonl"))
    );
    let r = w.upload_named("x.jsonl", b"\xff\xfe\n").await;
    assert_eq!(
        (r.status, r.json["error"]["message"].as_str()),
        (400, Some("Invalid file for Batch API. Must be utf-8 encoded"))
    );
    let file = w.upload(&chat_lines(1)).await;
    let r = w.create_openai("file-nope", "/v1/chat/completions", Value::Null).await;
    assert_eq!((r.status, r.json["error"]["param"].as_str()), (400, Some("input_file_id")));
    assert!(r.json["error"]["message"].as_str().unwrap().starts_with("Cannot find file file-nope"));
    let body = json!({"input_file_id": file, "endpoint": "/v1/chat/completions", "completion_window": "48h"});
    let r = w.send(w.openai(reqwest::Method::POST, "/v1/batches").json(&body)).await;
    assert_eq!((r.status, r.json["error"]["param"].as_str()), (400, Some("completion_window")));
    let too_much: serde_json::Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = w.create_openai(&file, "/v1/chat/completions", Value::Object(too_much)).await;
    assert_eq!((r.status, r.json["error"]["param"].as_str()), (400, Some("metadata")));
    let r = w.send(w.http.post(format!("{}/v1/batches", w.base)).json(&json!({}))).await;
    assert_eq!((r.status, r.json["error"]["type"].as_str()), (401, Some("invalid_request_error")));
    let r = w.send(w.openai(reqwest::Method::GET, "/v1/batches/batch_nope")).await;
    assert_eq!(r.status, 404);
    assert_eq!(fake.counters().openai_batch_creates, 0);

    let r = w.send(w.openai(reqwest::Method::DELETE, &format!("/v1/files/{file}"))).await;
    assert_eq!(r.json, json!({"id": file, "object": "file", "deleted": true}));
    let r = w.send(w.openai(reqwest::Method::GET, &format!("/v1/files/{file}"))).await;
    assert_eq!(r.status, 404);
    assert_eq!(fake.counters().file_deletes, 1);
    fake.stop().await;
}

#[tokio::test]
async fn openai_cancel_keeps_partial_results() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let id = w.openai_batch(&chat_lines(4)).await;
    w.poll_openai(&id).await;
    assert_eq!(w.poll_openai(&id).await["request_counts"]["completed"], 2);
    let r = w.send(w.openai(reqwest::Method::POST, &format!("/v1/batches/{id}/cancel"))).await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("cancelling")));
    assert!(r.json["cancelling_at"].is_i64());
    let (end, _) = w.finish_openai(&id).await;
    assert_eq!(end["status"], "cancelled");
    assert!(end["cancelled_at"].is_i64());
    assert_eq!(end["request_counts"], json!({"total": 4, "completed": 2, "failed": 0}));
    let out = by_id(&parse_lines(&w.content(&end["output_file_id"]).await));
    assert_eq!(out.keys().cloned().collect::<Vec<_>>(), ["r0", "r1"]);
    // Lines the cancel stopped are in neither file.
    assert!(end["error_file_id"].is_null());
    let r = w.send(w.openai(reqwest::Method::POST, &format!("/v1/batches/{id}/cancel"))).await;
    assert_eq!(
        (r.status, r.json["error"]["message"].as_str()),
        (409, Some("Cannot cancel a batch with status 'cancelled'."))
    );
    let r = w.send(w.openai(reqwest::Method::POST, "/v1/batches/batch_nope/cancel")).await;
    assert_eq!(r.status, 404);
    assert_eq!(fake.counters().openai_cancels, 3);
    fake.stop().await;
}

#[tokio::test]
async fn openai_list_pages_newest_first() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(w.openai_batch(&chat_lines(1)).await);
    }
    made.reverse();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..5 {
        let path = match &after {
            Some(a) => format!("/v1/batches?limit=2&after={a}"),
            None => "/v1/batches?limit=2".to_owned(),
        };
        let page = w.send(w.openai(reqwest::Method::GET, &path)).await.json;
        assert_eq!(page["object"], "list");
        let ids: Vec<String> =
            page["data"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(page["first_id"], json!(ids.first()));
        assert_eq!(page["last_id"], json!(ids.last()));
        seen.extend(ids.clone());
        if page["has_more"] != true {
            break;
        }
        after = ids.last().cloned();
    }
    assert_eq!(seen, made);
    assert_eq!(fake.counters().openai_lists, 3);
    // Listing shows a batch, so it moves like a poll.
    assert!(fake.batches().iter().all(|b| b.state == "in_progress"));
    fake.stop().await;
}

#[tokio::test]
async fn expire_all_keeps_what_was_answered() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let id = w.openai_batch(&chat_lines(4)).await;
    w.poll_openai(&id).await;
    w.poll_openai(&id).await;
    let created = w.create_anthropic(json!([message_request("a", "x"), message_request("b", "y")])).await;
    let mid = created.json["id"].as_str().unwrap().to_owned();
    fake.update_knobs(|k| k.steps_per_poll = 0);
    fake.expire_all();
    let b = w.poll_openai(&id).await;
    assert_eq!(b["status"], "expired");
    assert!(b["expired_at"].is_i64());
    assert_eq!(b["request_counts"], json!({"total": 4, "completed": 2, "failed": 2}));
    assert_eq!(parse_lines(&w.content(&b["output_file_id"]).await).len(), 2);
    let errors = parse_lines(&w.content(&b["error_file_id"]).await);
    assert_eq!(errors.len(), 2);
    for e in &errors {
        assert_eq!(e["response"], Value::Null);
        assert_eq!(e["error"]["code"], "batch_expired");
    }
    let m = w.poll_anthropic(&mid).await;
    assert_eq!(m["processing_status"], "ended");
    assert_eq!(
        m["request_counts"],
        json!({"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 2})
    );
    let results = parse_lines(&w.results(&m).await);
    assert!(results.iter().all(|r| r["result"] == json!({"type": "expired"})));
    fake.stop().await;
}

#[tokio::test]
async fn anthropic_batch_counts_only_at_the_end() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let mut bad_params = message_request("bad-params", "x");
    bad_params["params"]["max_tokens"] = json!(0);
    let requests = json!([
        message_request("ok_1", "hello"),
        message_request("ok_2", "again"),
        bad_params,
        message_request("busy", "[fake:error:529] please"),
    ]);
    let r = w.create_anthropic(requests).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = &r.json;
    assert_eq!(b["type"], "message_batch");
    assert_eq!(b["processing_status"], "in_progress");
    assert!(b["id"].as_str().unwrap().starts_with("msgbatch_"));
    assert_eq!(
        b["request_counts"],
        json!({"processing": 4, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0})
    );
    assert!(b["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["results_url"], Value::Null);
    let id = b["id"].as_str().unwrap();
    let mid = w.poll_anthropic(id).await;
    assert_eq!(mid["processing_status"], "in_progress");
    assert_eq!(mid["request_counts"]["processing"], 4, "no progress shows before the end: {mid}");
    let r = w.send(w.anthropic(reqwest::Method::GET, &format!("/v1/messages/batches/{id}/results"))).await;
    assert_eq!(r.status, 400, "no results before the end");
    let end = w.finish_anthropic(id).await;
    assert_eq!(
        end["request_counts"],
        json!({"processing": 0, "succeeded": 2, "errored": 2, "canceled": 0, "expired": 0})
    );
    assert!(end["ended_at"].is_string());
    let results = by_id(&parse_lines(&w.results(&end).await));
    let ok = &results["ok_1"]["result"];
    assert_eq!(ok["type"], "succeeded");
    let realtime =
        w.send(w.anthropic(reqwest::Method::POST, "/v1/messages").json(&message_request("x", "hello")["params"])).await;
    assert_eq!(ok["message"]["content"], realtime.json["content"]);
    let bad = &results["bad-params"]["result"];
    assert_eq!(bad["type"], "errored");
    assert_eq!(bad["error"]["type"], "error");
    assert_eq!(bad["error"]["error"]["type"], "invalid_request_error");
    assert_eq!(results["busy"]["result"]["error"]["error"]["type"], "overloaded_error");
    let c = fake.counters();
    assert_eq!((c.anthropic_batch_creates, c.anthropic_polls, c.anthropic_results, c.messages_calls), (1, 2, 2, 1));
    let r = w.send(w.anthropic(reqwest::Method::DELETE, &format!("/v1/messages/batches/{id}"))).await;
    assert_eq!(r.json, json!({"id": id, "type": "message_batch_deleted"}));
    fake.stop().await;
}

#[tokio::test]
async fn anthropic_envelope_is_checked_at_create() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let cases = [
        (json!([message_request("has.dot", "x")]), "requests.0.custom_id: String should match pattern"),
        (
            json!([message_request(&"x".repeat(65), "x")]),
            "requests.0.custom_id: String should have at most 64 characters",
        ),
        (
            json!([message_request("a", "x"), message_request("a", "y")]),
            "requests.1.custom_id: Duplicate custom_id 'a'",
        ),
        (json!([]), "requests: List should have at least 1 item"),
        (json!([{"custom_id": "a"}]), "requests.0.params: Field required"),
    ];
    for (requests, message) in cases {
        let r = w.create_anthropic(requests).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json["type"], "error");
        assert_eq!(r.json["error"]["type"], "invalid_request_error");
        assert!(r.json["error"]["message"].as_str().unwrap().starts_with(message), "{}", r.text());
    }
    let ok = json!({"requests": [message_request("a", "x")]});
    let url = format!("{}/v1/messages/batches", w.base);
    let r = w.send(w.http.post(&url).header("anthropic-version", "2023-06-01").json(&ok)).await;
    assert_eq!((r.status, r.json["error"]["type"].as_str()), (401, Some("authentication_error")));
    let r = w.send(w.http.post(&url).header("x-api-key", ANTHROPIC_KEY).json(&ok)).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("anthropic-version"));
    assert!(r.headers.contains_key("request-id"));
    // The anthropic SDK 2.x sends its key as a bearer token.
    let r = w.send(w.http.get(&url).header("anthropic-version", "2023-06-01").bearer_auth(ANTHROPIC_KEY)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fake.counters().anthropic_batch_creates, 0);
    fake.configure(FakeKnobs { max_request_bytes: 100, ..quick() });
    let r = w.create_anthropic(json!([message_request("a", &"long ".repeat(40))])).await;
    assert_eq!((r.status, r.json["error"]["type"].as_str()), (413, Some("request_too_large")));
    fake.stop().await;
}

#[tokio::test]
async fn anthropic_cancel_and_list() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = w.create_anthropic(json!([message_request("a", &format!("q{i}")), message_request("b", "x")])).await;
        ids.push(r.json["id"].as_str().unwrap().to_owned());
    }
    let id = &ids[0];
    w.poll_anthropic(id).await;
    let r = w.send(w.anthropic(reqwest::Method::POST, &format!("/v1/messages/batches/{id}/cancel"))).await;
    assert_eq!(r.json["processing_status"], "canceling");
    assert!(r.json["cancel_initiated_at"].is_string());
    let r = w.send(w.anthropic(reqwest::Method::DELETE, &format!("/v1/messages/batches/{id}"))).await;
    assert_eq!(r.status, 400, "no delete before the end");
    let end = w.finish_anthropic(id).await;
    assert_eq!(
        end["request_counts"],
        json!({"processing": 0, "succeeded": 1, "errored": 0, "canceled": 1, "expired": 0})
    );
    let results = by_id(&parse_lines(&w.results(&end).await));
    assert_eq!(results["b"]["result"], json!({"type": "canceled"}));

    let page = w.send(w.anthropic(reqwest::Method::GET, "/v1/messages/batches?limit=2")).await.json;
    let newest: Vec<&str> = page["data"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(newest, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!((page["has_more"].as_bool(), page["last_id"].as_str()), (Some(true), Some(ids[1].as_str())));
    let path = format!("/v1/messages/batches?limit=2&after_id={}", ids[1]);
    let page = w.send(w.anthropic(reqwest::Method::GET, &path)).await.json;
    assert_eq!((page["data"][0]["id"].as_str(), page["has_more"].as_bool()), (Some(ids[0].as_str()), Some(false)));
    let path = format!("/v1/messages/batches?limit=1&before_id={}", ids[0]);
    let page = w.send(w.anthropic(reqwest::Method::GET, &path)).await.json;
    assert_eq!((page["data"][0]["id"].as_str(), page["has_more"].as_bool()), (Some(ids[1].as_str()), Some(true)));
    let c = fake.counters();
    assert_eq!((c.anthropic_lists, c.anthropic_cancels), (3, 1));
    fake.stop().await;
}

#[tokio::test]
async fn a_dropped_create_reply_still_makes_the_batch() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let file = w.upload(&chat_lines(1)).await;
    fake.configure(FakeKnobs { drop_create_replies: 1, ..quick() });
    let body = json!({"input_file_id": file, "endpoint": "/v1/chat/completions", "completion_window": "24h"});
    let err = w.openai(reqwest::Method::POST, "/v1/batches").json(&body).send().await;
    assert!(err.is_err(), "the connection closes without an answer: {err:?}");
    assert_eq!(fake.batches().len(), 1, "the batch was made all the same");
    assert_eq!((fake.counters().openai_batch_creates, fake.counters().dropped_replies), (1, 1));
    assert_eq!(fake.knobs().drop_create_replies, 0);
    assert_eq!(w.create_openai(&file, "/v1/chat/completions", Value::Null).await.status, 200, "only the next K");

    // The Nth create: counted over both providers.
    fake.configure(FakeKnobs { drop_create_at: Some(4), ..quick() });
    let requests = json!({"requests": [message_request("a", "x")]});
    let third = w.anthropic(reqwest::Method::POST, "/v1/messages/batches").json(&requests).send().await;
    assert!(third.is_ok());
    let fourth = w.anthropic(reqwest::Method::POST, "/v1/messages/batches").json(&requests).send().await;
    assert!(fourth.is_err());
    assert_eq!(fake.counters().anthropic_batch_creates, 2);

    // faults_for: a knob aimed at OpenAI leaves Anthropic alone.
    fake.configure(FakeKnobs { drop_create_replies: 1, faults_for: Some(FakeProvider::OpenAi), ..quick() });
    assert_eq!(w.create_anthropic(json!([message_request("a", "x")])).await.status, 200);
    assert!(w.openai(reqwest::Method::POST, "/v1/batches").json(&body).send().await.is_err());
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_creates_wait_until_released() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    fake.configure(FakeKnobs { hold_creates: true, ..quick() });
    let req = w
        .anthropic(reqwest::Method::POST, "/v1/messages/batches")
        .json(&json!({"requests": [message_request("a", "x")]}));
    let pending = tokio::spawn(async move { read(req.send().await.expect("answered once released")).await });
    let mut held = false;
    for _ in 0..200 {
        if fake.counters().held_creates == 1 {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(held, "the create is held");
    assert_eq!(fake.batches().len(), 1, "a held create has made its batch");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    fake.update_knobs(|k| k.hold_creates = false);
    let r = tokio::time::timeout(Duration::from_secs(5), pending).await.expect("released").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json["id"].as_str(), Some(fake.batches()[0].id.as_str()));
    assert_eq!(fake.counters().held_creates, 0);
    fake.stop().await;
}

#[tokio::test]
async fn rate_limits_on_create_and_poll() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let file = w.upload(&chat_lines(1)).await;
    fake.configure(FakeKnobs {
        rate_limit_creates: 1,
        rate_limit_polls: 2,
        retry_after: Duration::from_millis(1500),
        ..FakeKnobs::default()
    });
    let r = w.create_openai(&file, "/v1/chat/completions", Value::Null).await;
    assert_eq!((r.status, r.json["error"]["type"].as_str()), (429, Some("rate_limit_error")));
    assert_eq!(r.headers["retry-after"], "2");
    assert_eq!(r.headers["retry-after-ms"], "1500");
    assert!(fake.batches().is_empty(), "a refused create makes no batch");
    let r = w.create_openai(&file, "/v1/chat/completions", Value::Null).await;
    assert_eq!(r.status, 200);
    let id = r.json["id"].as_str().unwrap();
    let path = format!("/v1/batches/{id}");
    assert_eq!(w.send(w.openai(reqwest::Method::GET, &path)).await.status, 429);
    let r = w.send(w.anthropic(reqwest::Method::GET, "/v1/messages/batches")).await;
    assert_eq!((r.status, r.json["error"]["type"].as_str()), (429, Some("rate_limit_error")));
    // The 429'd poll did not move the batch: this poll takes it one step, to in_progress at 0.
    let b = w.poll_openai(id).await;
    assert_eq!((b["status"].as_str(), &b["request_counts"]["completed"]), (Some("in_progress"), &json!(0)));
    let c = fake.counters();
    assert_eq!((c.rate_limited, c.openai_polls, c.anthropic_lists, c.openai_batch_creates), (3, 2, 1, 1));
    fake.stop().await;
}

#[tokio::test]
async fn fresh_uploads_can_be_invisible_for_a_while() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    fake.configure(FakeKnobs { hidden_file_reads: 2, ..quick() });
    let file = w.upload(&chat_lines(1)).await;
    assert_eq!(w.send(w.openai(reqwest::Method::GET, &format!("/v1/files/{file}"))).await.status, 404);
    let r = w.create_openai(&file, "/v1/chat/completions", Value::Null).await;
    assert_eq!(r.status, 400);
    assert!(r.json["error"]["message"].as_str().unwrap().starts_with(&format!("Cannot find file {file}")));
    assert_eq!(w.create_openai(&file, "/v1/chat/completions", Value::Null).await.status, 200);
    fake.stop().await;
}

#[tokio::test]
async fn crlf_results() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    fake.configure(FakeKnobs { crlf: true, ..quick() });
    let id = w.openai_batch(&chat_lines(3)).await;
    let (end, _) = w.finish_openai(&id).await;
    let text = w.content(&end["output_file_id"]).await;
    assert_eq!(text.matches("\r\n").count(), 3, "{text:?}");
    let m = w.create_anthropic(json!([message_request("a", "x"), message_request("b", "y")])).await;
    let end = w.finish_anthropic(m.json["id"].as_str().unwrap()).await;
    let text = w.results(&end).await;
    assert_eq!(text.matches("\r\n").count(), 2, "{text:?}");
    fake.stop().await;
}

#[tokio::test]
async fn stalled_batches_stop_at_half_until_released() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    fake.configure(FakeKnobs { stall: true, ..quick() });
    let id = w.openai_batch(&chat_lines(4)).await;
    let m = w.create_anthropic(json!([message_request("a", "x"), message_request("b", "y")])).await;
    let mid = m.json["id"].as_str().unwrap();
    for _ in 0..10 {
        w.poll_openai(&id).await;
        w.poll_anthropic(mid).await;
    }
    let b = w.poll_openai(&id).await;
    assert_eq!((b["status"].as_str(), &b["request_counts"]["completed"]), (Some("in_progress"), &json!(2)));
    assert_eq!(w.poll_anthropic(mid).await["processing_status"], "in_progress");
    fake.update_knobs(|k| k.stall = false);
    assert_eq!(w.finish_openai(&id).await.0["status"], "completed");
    assert_eq!(w.finish_anthropic(mid).await["request_counts"]["succeeded"], 2);
    fake.stop().await;
}

#[tokio::test]
async fn batches_move_with_time_or_per_poll_speed() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    fake.configure(FakeKnobs { steps_per_poll: 0, step_interval: Some(Duration::from_millis(20)), ..quick() });
    let id = w.openai_batch(&chat_lines(2)).await;
    let mut done = false;
    for _ in 0..200 {
        if fake.batches()[0].state == "completed" {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(done, "time alone finishes the batch");
    assert_eq!(fake.counters().openai_polls, 0);
    // Many steps a poll: one poll ends it.
    fake.configure(FakeKnobs { steps_per_poll: 10, ..quick() });
    let id2 = w.openai_batch(&chat_lines(2)).await;
    assert_eq!(w.poll_openai(&id2).await["status"], "completed");
    // No steps at all: it stays where it is.
    fake.configure(FakeKnobs { steps_per_poll: 0, ..quick() });
    let id3 = w.openai_batch(&chat_lines(2)).await;
    for _ in 0..3 {
        assert_eq!(w.poll_openai(&id3).await["status"], "validating");
    }
    assert_ne!(id, id2);
    fake.stop().await;
}

#[tokio::test]
async fn the_api_key_knob_requires_one_key() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    fake.configure(FakeKnobs { api_key: Some(Secret::new("sk-other")), ..quick() });
    let r = w.send(w.openai(reqwest::Method::GET, "/v1/batches")).await;
    assert_eq!((r.status, r.json["error"]["code"].as_str()), (401, Some("invalid_api_key")));
    let r = w.send(w.openai(reqwest::Method::POST, "/v1/chat/completions").json(&chat_body("m", "x"))).await;
    assert_eq!(r.status, 401, "realtime calls too, when a key is named");
    let r = w.send(w.http.get(format!("{}/v1/batches", w.base)).bearer_auth("sk-other")).await;
    assert_eq!(r.status, 200);
    fake.configure(quick());
    let r = w.send(w.http.post(format!("{}/v1/chat/completions", w.base)).json(&chat_body("m", "x"))).await;
    assert_eq!(r.status, 200, "realtime calls need no key unless one is named");
    fake.stop().await;
}

#[tokio::test]
async fn openai_files_list_newest_first() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let a = w.upload(&chat_lines(1)).await;
    let b = w.upload(&chat_lines(2)).await;
    fake.configure(FakeKnobs { hidden_file_reads: 1, ..quick() });
    let hidden = w.upload(&chat_lines(1)).await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
    };
    let all = w.send(w.openai(reqwest::Method::GET, "/v1/files")).await.json;
    assert_eq!(ids(&all), [b.clone(), a.clone()], "a file not yet visible is not listed");
    assert_eq!((all["object"].as_str(), all["has_more"].as_bool()), (Some("list"), Some(false)));
    let first = w.send(w.openai(reqwest::Method::GET, "/v1/files?limit=1")).await.json;
    assert_eq!((ids(&first), first["has_more"].as_bool()), (vec![b.clone()], Some(true)));
    let next = w.send(w.openai(reqwest::Method::GET, &format!("/v1/files?limit=1&after={b}"))).await.json;
    assert_eq!((ids(&next), next["last_id"].as_str()), (vec![a.clone()], Some(a.as_str())));
    let asc = w.send(w.openai(reqwest::Method::GET, "/v1/files?order=asc")).await.json;
    assert_eq!(ids(&asc), [a.clone(), b.clone()]);
    assert_eq!(w.send(w.openai(reqwest::Method::GET, "/v1/files?order=up")).await.status, 400);

    let r = w.create_openai(&b, "/v1/chat/completions", Value::Null).await;
    let (end, _) = w.finish_openai(r.json["id"].as_str().unwrap()).await;
    let outputs = w.send(w.openai(reqwest::Method::GET, "/v1/files?purpose=batch_output")).await.json;
    assert_eq!(ids(&outputs), [end["output_file_id"].as_str().unwrap()]);
    assert_eq!(w.send(w.openai(reqwest::Method::GET, &format!("/v1/files/{hidden}"))).await.status, 404);
    let all = w.send(w.openai(reqwest::Method::GET, "/v1/files?purpose=batch")).await.json;
    assert_eq!(ids(&all), [hidden, b, a], "listed once visible");
    assert_eq!(fake.counters().file_lists, 7);
    fake.stop().await;
}

#[tokio::test]
async fn batches_older_than_expire_after_expire_when_looked_at() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let id = w.openai_batch(&chat_lines(4)).await;
    w.poll_openai(&id).await;
    w.poll_openai(&id).await;
    let m = w.create_anthropic(json!([message_request("a", "x")])).await;
    fake.update_knobs(|k| k.expire_after = Some(Duration::from_millis(1)));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = w.poll_openai(&id).await;
    assert_eq!(
        (b["status"].as_str(), &b["request_counts"]),
        (Some("expired"), &json!({"total": 4, "completed": 2, "failed": 2}))
    );
    let expired = parse_lines(&w.content(&b["error_file_id"]).await);
    assert!(expired.iter().all(|e| e["error"]["code"] == "batch_expired"));
    let mb = w.poll_anthropic(m.json["id"].as_str().unwrap()).await;
    assert_eq!((mb["processing_status"].as_str(), &mb["request_counts"]["expired"]), (Some("ended"), &json!(1)));
    fake.stop().await;
}

#[tokio::test]
async fn output_expires_after_sets_the_result_files_lifetime() {
    let fake = fake().await;
    let w = Wire::new(&fake);
    let file = w.upload(&chat_lines(1)).await;
    let create = |after: Value| json!({"input_file_id": file, "endpoint": "/v1/chat/completions", "completion_window": "24h", "output_expires_after": after});
    let r = w
        .send(
            w.openai(reqwest::Method::POST, "/v1/batches")
                .json(&create(json!({"anchor": "created_at", "seconds": 3600}))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (end, _) = w.finish_openai(r.json["id"].as_str().unwrap()).await;
    let path = format!("/v1/files/{}", end["output_file_id"].as_str().unwrap());
    let out = w.send(w.openai(reqwest::Method::GET, &path)).await.json;
    assert_eq!(out["expires_at"].as_i64().unwrap(), out["created_at"].as_i64().unwrap() + 3600);
    for bad in [json!({"anchor": "completed_at", "seconds": 3600}), json!({"anchor": "created_at", "seconds": 60})] {
        let r = w.send(w.openai(reqwest::Method::POST, "/v1/batches").json(&create(bad))).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.json["error"]["param"].as_str().unwrap().starts_with("output_expires_after"));
    }
    fake.stop().await;
}
