//! Upstream mode: the engine calls real HTTP providers (here the fake upstream on
//! 127.0.0.1), translating Anthropic both ways, retrying faults, and recording
//! unreachable upstreams.

mod common;

use std::time::Duration;

use common::*;
use fastrouter_batch_engine::{
    FakeUpstream, NativeConfig, ProviderMode, Secret, Upstream, UpstreamConfig, UpstreamMode,
};
use serde_json::{json, Value};

fn upstream_mode(base: &str) -> ProviderMode {
    ProviderMode::Upstream(UpstreamConfig {
        openai: Upstream { base_url: base.to_owned(), api_key: Some(Secret::new("sk-openai-test")) },
        anthropic: Upstream { base_url: format!("{base}/"), api_key: Some(Secret::new("sk-ant-test")) },
        timeout: Duration::from_secs(10),
        mode: UpstreamMode::Realtime,
        native: NativeConfig::default(),
    })
}

/// Rough token count of the simulator: four characters a token, at least one.
fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_providers_through_the_fake_upstream() {
    let fake = FakeUpstream::start(sim(2, 0.0), 0).await.expect("fake upstream");
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = upstream_mode(&fake.url());
    let engine = start(cfg).await;
    let api = Api::new(&engine);

    let mut lines = Vec::new();
    for i in 0..20 {
        lines.push(chat_line(&format!("o{i}"), &format!("question {i}")));
        lines.push(anthropic_line(&format!("a{i}"), &format!("question {i}"), 100));
    }
    lines.push(anthropic_line("short", "tell me a long story please", 3));
    let mut stop = chat_line("stop", "hi");
    stop["body"]["stop"] = json!("END");
    lines.push(stop);
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (42, 42, 0));
    assert!(b["error_file_id"].is_null(), "{b}");
    let out = by_custom_id(&api.lines(&b["output_file_id"]).await);
    assert_eq!(out.len(), 42);
    for l in out.values() {
        assert_output_line(l, "chat.completion");
    }
    for i in 0..20 {
        // OpenAI: the model reaches the upstream without its `openai/` prefix.
        let o = &out[&format!("o{i}")]["response"]["body"];
        assert_eq!(
            o["choices"][0]["message"]["content"],
            json!(format!("Simulated answer from gpt-4.1-nano: question {i}"))
        );
        assert_eq!(o["choices"][0]["finish_reason"], "stop");
        // Anthropic: sent as a Messages request (no prefix, system moved out of the
        // messages), answered as a chat.completion.
        let a = &out[&format!("a{i}")]["response"]["body"];
        let text = format!("Simulated answer from claude-4.5-sonnet: question {i}");
        assert_eq!(a["choices"][0]["message"]["content"], json!(text));
        assert_eq!(a["choices"][0]["message"]["role"], "assistant");
        assert_eq!(a["choices"][0]["finish_reason"], "stop", "end_turn → stop");
        assert!(a["id"].as_str().is_some_and(|id| id.starts_with("msg_")), "{a}");
        // The fake counts the top-level `system` (where the system message went) and the messages.
        let prompt = tokens("Be terse.") + 3 + tokens(&format!("question {i}")) + 3;
        let completion = text.split_whitespace().count() as u64;
        assert_eq!(
            a["usage"],
            json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                   "prompt_tokens_details": {"cached_tokens": 0}}),
            "{a}"
        );
    }
    let short = &out["short"]["response"]["body"];
    assert_eq!(short["choices"][0]["message"]["content"], "Simulated answer from");
    assert_eq!(short["choices"][0]["finish_reason"], "length", "max_tokens → length");
    assert_eq!(short["usage"]["completion_tokens"], 3);

    // Embeddings through the OpenAI upstream.
    let emb: Vec<Value> = (0..5).map(|i| embed_line(&format!("e{i}"), json!(format!("t{i}")))).collect();
    let (_, batch) = api.submit(&emb, "/v1/embeddings").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(counts(&b), (5, 5, 0));
    let out = by_custom_id(&api.lines(&b["output_file_id"]).await);
    for l in out.values() {
        assert_output_line(l, "list");
        assert_eq!(l["response"]["body"]["model"], "text-embedding-3-small");
        assert_eq!(l["response"]["body"]["data"][0]["embedding"].as_array().unwrap().len(), 8);
    }
    engine.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_are_retried() {
    let fake = FakeUpstream::start(sim(0, 0.3), 0).await.expect("fake upstream");
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = upstream_mode(&fake.url());
    // The fake asks for retry-after-ms: 10; let it wait at most 5 ms. 0.3^21: never fails.
    cfg.retry = fast_retry(20);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let mut lines = Vec::new();
    for i in 0..60 {
        lines.push(chat_line(&format!("o{i}"), "q"));
        lines.push(anthropic_line(&format!("a{i}"), "q", 50));
    }
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (120, 120, 0));
    assert!(b["error_file_id"].is_null(), "{b}");
    let out = api.lines(&b["output_file_id"]).await;
    assert_eq!(out.len(), 120);
    engine.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_without_retries_keep_the_error_body() {
    let fake = FakeUpstream::start(sim(0, 1.0), 0).await.expect("fake upstream");
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = upstream_mode(&fake.url());
    cfg.retry = fast_retry(0);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&[chat_line("o", "q"), anthropic_line("a", "q", 10)], "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (2, 0, 2));
    assert!(b["output_file_id"].is_null());
    let errors = by_custom_id(&api.lines(&b["error_file_id"]).await);
    assert_eq!(errors["o"]["response"]["status_code"], 429);
    assert_eq!(errors["o"]["response"]["body"]["error"]["type"], "rate_limit_error");
    // Anthropic's 529 error is mapped to an OpenAI-shaped error body.
    assert_eq!(errors["a"]["response"]["status_code"], 529);
    assert_eq!(
        errors["a"]["response"]["body"],
        json!({"error": {"message": "Overloaded", "type": "overloaded_error", "param": null, "code": "overloaded_error"}})
    );
    engine.stop().await;
    fake.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = upstream_mode(&format!("http://127.0.0.1:{port}"));
    cfg.retry = fast_retry(1);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let mut lines = chat_lines(5);
    lines.push(anthropic_line("a", "q", 10));
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (6, 0, 6));
    assert!(b["output_file_id"].is_null(), "{b}");
    let errors = api.lines(&b["error_file_id"]).await;
    let mut expected = ids(5);
    expected.insert("a".into());
    assert_cover_exactly(&[], &errors, &expected);
    for l in &errors {
        assert!(l["response"].is_null(), "{l}");
        assert_eq!(l["error"]["code"], "upstream_unreachable", "{l}");
        let msg = l["error"]["message"].as_str().unwrap_or_default();
        assert!(!msg.is_empty(), "{l}");
        assert!(!msg.contains("sk-openai-test") && !msg.contains("sk-ant-test"), "key leaked: {l}");
    }
    engine.stop().await;
}

/// What a recording upstream saw: path, headers, JSON body.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, Value)>>>;

/// An upstream that records every request and answers by the last message's text:
/// `fail400` → 400 every time; `flaky` → 503 the first time, then 200; else 200.
async fn recording_upstream() -> (String, Seen, tokio::task::JoinHandle<()>) {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;

    async fn handle(State(seen): State<Seen>, uri: Uri, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let path = uri.path().to_owned();
        let last =
            body["messages"].as_array().and_then(|m| m.last()).map(|m| m["content"].clone()).unwrap_or(Value::Null);
        let last = last.as_str().unwrap_or_default().to_owned();
        let earlier = {
            let mut s = seen.lock().unwrap();
            let n = s.iter().filter(|(p, _, b)| *p == path && b["messages"] == body["messages"]).count();
            s.push((path.clone(), headers, body.clone()));
            n
        };
        let anthropic = path == "/v1/messages";
        if last == "fail400" || (last == "flaky" && earlier == 0) {
            let status = if last == "fail400" { StatusCode::BAD_REQUEST } else { StatusCode::SERVICE_UNAVAILABLE };
            let err = if anthropic {
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": format!("bad {last}")}})
            } else {
                json!({"error": {"message": format!("bad {last}"), "type": "invalid_request_error", "code": null}})
            };
            return (status, axum::Json(err)).into_response();
        }
        if anthropic {
            let reply = json!({"id": "msg_rec", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": "Hello "}, {"type": "tool_use", "id": "t", "name": "x", "input": {}},
                            {"type": "text", "text": "there"}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 11, "output_tokens": 2}});
            ([("request-id", "req-ant-1")], axum::Json(reply)).into_response()
        } else {
            let reply = json!({"id": "chatcmpl-rec", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}});
            ([("x-request-id", "req-oai-1")], axum::Json(reply)).into_response()
        }
    }

    let seen: Seen = Default::default();
    let app = axum::Router::new().fallback(handle).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_wire_requests() {
    let (url, seen, server) = recording_upstream().await;
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = upstream_mode(&url);
    cfg.retry = fast_retry(3);
    let engine = start(cfg).await;
    let api = Api::new(&engine);

    let mut oai = chat_line("oai", "hello");
    oai["body"]["temperature"] = json!(0.5);
    oai["body"]["stop"] = json!(["X"]);
    // A Claude 3 model: it takes temperature and top_p together (Claude 4.x would not).
    let mut ant = json!({"custom_id": "ant", "provider": "anthropic", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "anthropic/claude-3-5-sonnet", "max_tokens": 77, "temperature": 0.2, "stop": "END",
                 "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hello"},
                              {"role": "assistant", "content": "hi"}, {"role": "user", "content": "again"}]}});
    ant["body"]["top_p"] = json!(0.9);
    let lines = vec![
        oai,
        ant,
        chat_line("oai_flaky", "flaky"),
        anthropic_line("ant_flaky", "flaky", 10),
        chat_line("oai_400", "fail400"),
        anthropic_line("ant_400", "fail400", 10),
    ];
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (6, 4, 2));
    let out = by_custom_id(&api.lines(&b["output_file_id"]).await);
    let errors = by_custom_id(&api.lines(&b["error_file_id"]).await);
    assert_eq!(out.keys().map(String::as_str).collect::<Vec<_>>(), vec!["ant", "ant_flaky", "oai", "oai_flaky"]);

    let seen = seen.lock().unwrap().clone();
    let find = |path: &str, last: &str| -> Vec<(axum::http::HeaderMap, Value)> {
        seen.iter()
            .filter(|(p, _, b)| {
                p == path
                    && b["messages"].as_array().and_then(|m| m.last()).map(|m| &m["content"]) == Some(&json!(last))
            })
            .map(|(_, h, b)| (h.clone(), b.clone()))
            .collect()
    };

    // OpenAI: bearer key, bare model, body otherwise as sent.
    let o = find("/v1/chat/completions", "hello");
    assert_eq!(o.len(), 1);
    let (h, body) = &o[0];
    assert_eq!(h["authorization"], "Bearer sk-openai-test");
    assert!(h.get("x-api-key").is_none());
    assert_eq!(
        body,
        &json!({"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hello"}], "temperature": 0.5, "stop": ["X"]})
    );
    assert_eq!(out["oai"]["response"]["request_id"], "req-oai-1");
    assert_eq!(out["oai"]["response"]["body"]["id"], "chatcmpl-rec");

    // Anthropic: x-api-key and version headers, Messages API body.
    let a = find("/v1/messages", "again");
    assert_eq!(a.len(), 1);
    let (h, body) = &a[0];
    assert_eq!(h["x-api-key"], "sk-ant-test");
    assert_eq!(h["anthropic-version"], "2023-06-01");
    assert!(h.get("authorization").is_none(), "the OpenAI-style header must not go to Anthropic");
    assert_eq!(body["model"], "claude-3-5-sonnet");
    assert_eq!(body["max_tokens"], 77);
    assert_eq!(body["system"], "Be terse.");
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert!(body.get("stop").is_none(), "{body}");
    assert_eq!(body["temperature"], json!(0.2));
    assert_eq!(body["top_p"], json!(0.9));
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "again"}])
    );
    // The reply, as a chat.completion: text blocks joined, end_turn → stop, usage mapped.
    let reply = &out["ant"]["response"]["body"];
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["choices"][0]["message"]["content"], "Hello there");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply["usage"], json!({"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}));
    assert_eq!(out["ant"]["response"]["request_id"], "req-ant-1");

    // 503 is retried (two attempts); 400 is not (one attempt), and lands in the error file.
    assert_eq!(find("/v1/chat/completions", "flaky").len(), 2);
    assert_eq!(find("/v1/messages", "flaky").len(), 2);
    assert_eq!(find("/v1/chat/completions", "fail400").len(), 1);
    assert_eq!(find("/v1/messages", "fail400").len(), 1);
    assert_eq!(errors["oai_400"]["response"]["status_code"], 400);
    assert_eq!(errors["oai_400"]["response"]["body"]["error"]["message"], "bad fail400");
    assert!(errors["oai_400"]["error"].is_null(), "{}", errors["oai_400"]);
    assert_eq!(errors["ant_400"]["response"]["status_code"], 400);
    assert_eq!(
        errors["ant_400"]["response"]["body"],
        json!({"error": {"message": "bad fail400", "type": "invalid_request_error", "param": null, "code": "invalid_request_error"}})
    );
    engine.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_non_json_and_timeouts() {
    // A base URL with a path the fake does not serve: 404 with an empty (non-JSON) body.
    let fake = FakeUpstream::start(sim(0, 0.0), 0).await.expect("fake upstream");
    // A listener that never answers: the per-attempt timeout ends each attempt.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = ProviderMode::Upstream(UpstreamConfig {
        openai: Upstream { base_url: format!("{}/nowhere", fake.url()), api_key: None },
        anthropic: Upstream { base_url: silent_url, api_key: None },
        timeout: Duration::from_millis(300),
        mode: UpstreamMode::Realtime,
        native: NativeConfig::default(),
    });
    cfg.retry = fast_retry(1);
    let engine = start(cfg).await;
    let api = Api::new(&engine);
    let (_, batch) = api.submit(&[chat_line("o", "q"), anthropic_line("a", "q", 5)], "/v1/chat/completions").await;
    let (b, _) = api.wait_terminal(batch["id"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (2, 0, 2));
    let errors = by_custom_id(&api.lines(&b["error_file_id"]).await);
    assert_eq!(errors["o"]["response"]["status_code"], 404, "{}", errors["o"]);
    let msg = errors["o"]["response"]["body"]["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("non-JSON"), "{}", errors["o"]);
    assert!(errors["a"]["response"].is_null(), "{}", errors["a"]);
    assert_eq!(errors["a"]["error"]["code"], "upstream_unreachable");
    assert!(errors["a"]["error"]["message"].as_str().unwrap().contains("timed out"), "{}", errors["a"]);
    engine.stop().await;
    fake.stop().await;
    drop(silent);
}

/// An upstream where Anthropic answers only once `release` says so and OpenAI at once;
/// counts the Anthropic requests that arrived.
async fn gated_upstream(
    release: tokio::sync::watch::Receiver<bool>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::extract::State;
    use axum::http::Uri;
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    type Gate = (tokio::sync::watch::Receiver<bool>, std::sync::Arc<AtomicUsize>);

    async fn handle(
        State((mut release, arrived)): State<Gate>,
        uri: Uri,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if uri.path() == "/v1/messages" {
            arrived.fetch_add(1, Ordering::SeqCst);
            let _ = release.wait_for(|go| *go).await;
            return axum::Json(json!({"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": "late"}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 1}}))
            .into_response();
        }
        axum::Json(json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "now"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}))
        .into_response()
    }

    let arrived = std::sync::Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().fallback(handle).with_state((release, arrived.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, arrived)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_provider_holds_back_only_its_own_lines() {
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let (url, arrived) = gated_upstream(release_rx).await;
    let dir = tempdir();
    let mut cfg = config(dir.path());
    cfg.provider = upstream_mode(&url);
    cfg.concurrency_per_provider = 2;
    let engine = start(cfg).await;
    let api = Api::new(&engine);

    // Anthropic lines first: more of them than its lane holds, so some wait in its queue.
    let mut lines: Vec<Value> = (0..6).map(|i| anthropic_line(&format!("a{i}"), "hi", 10)).collect();
    lines.extend((0..40).map(|i| chat_line(&format!("o{i}"), "hi")));
    let (_, batch) = api.submit(&lines, "/v1/chat/completions").await;
    let id = batch["id"].as_str().unwrap();

    // Every OpenAI line completes while Anthropic holds its two in flight.
    let (b, _) = api.wait_for(id, Duration::from_secs(10), |b| b["request_counts"]["completed"] == json!(40)).await;
    assert_eq!(b["status"], "in_progress", "{b}");
    assert_eq!(arrived.load(std::sync::atomic::Ordering::SeqCst), 2, "the Anthropic lane holds two");

    release_tx.send(true).unwrap();
    let (b, _) = api.wait_terminal(id, Duration::from_secs(10)).await;
    assert_eq!(b["status"], "completed", "{b}");
    assert_eq!(counts(&b), (46, 46, 0));
    let out = by_custom_id(&api.lines(&b["output_file_id"]).await);
    assert_eq!(out.len(), 46);
    assert_eq!(out["a5"]["response"]["body"]["choices"][0]["message"]["content"], "late");
    assert_eq!(out["o39"]["response"]["body"]["choices"][0]["message"]["content"], "now");
    engine.stop().await;
}
