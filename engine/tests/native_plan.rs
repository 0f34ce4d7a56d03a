//! Native mode's planner and merge, on real files and a real store: how a mixed batch is
//! split into upstream batches, and how their results come back exactly once.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use fastrouter_batch_engine::native::{merge, plan};
use fastrouter_batch_engine::store::{ChunkRow, ChunkState, Store};
use fastrouter_batch_engine::{NativeConfig, SamplingTable};
use serde_json::{json, Value};

const BATCH: &str = "fr_batch-0123456789abcdef01234567";

fn model_line(custom_id: &str, model: &str) -> Value {
    json!({"custom_id": custom_id, "provider": "openai", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": format!("openai/{model}"), "messages": [{"role": "user", "content": custom_id}]}})
}

/// 5 lines of gpt-a, 3 of gpt-b, 2 embeddings, 4 Anthropic (one id Anthropic refuses),
/// interleaved.
fn mixed() -> Vec<Value> {
    let mut lines = Vec::new();
    for i in 0..5 {
        lines.push(model_line(&format!("a{i}"), "gpt-a"));
        if i < 3 {
            lines.push(model_line(&format!("b{i}"), "gpt-b"));
        }
        if i < 4 {
            let id = if i == 2 { "needs a surrogate/ü".to_owned() } else { format!("c{i}") };
            lines.push(anthropic_line(&id, &format!("q{i}"), 50));
        }
        if i < 2 {
            lines.push(embed_line(&format!("e{i}"), json!("text")));
        }
    }
    lines
}

struct Planned {
    _dir: tempfile::TempDir,
    store: Store,
    chunks: Vec<ChunkRow>,
    /// custom_id → input line number.
    line_of: HashMap<String, u64>,
}

fn planned(lines: &[Value], chunk_size: usize) -> Planned {
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let input = dir.path().join("input.jsonl");
    std::fs::write(&input, jsonl(lines)).unwrap();
    let cfg = NativeConfig::default().with_chunk_size(chunk_size);
    let p = plan::make_plan(&store, BATCH, &input, &cfg, &SamplingTable::default(), 1 << 20).unwrap();
    assert!(p.settled.is_empty());
    store.save_plan(BATCH, &p.chunks, &p.lines).unwrap();
    let line_of =
        lines.iter().enumerate().map(|(i, l)| (l["custom_id"].as_str().unwrap().to_owned(), i as u64 + 1)).collect();
    Planned { _dir: dir, chunks: store.chunks(BATCH).unwrap(), store, line_of }
}

fn request_lines(store: &Store, c: &ChunkRow) -> Vec<Value> {
    let bytes = std::fs::read(plan::request_path(store, BATCH, c.chunk)).unwrap();
    if c.provider == "anthropic" {
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        body["requests"].as_array().unwrap().clone()
    } else {
        parse_jsonl(&bytes)
    }
}

#[test]
fn a_mixed_file_splits_by_endpoint_model_and_size() {
    let p = planned(&mixed(), 2);
    let mut groups: BTreeMap<(String, String, String), Vec<u64>> = BTreeMap::new();
    for c in &p.chunks {
        assert_eq!(c.state, ChunkState::Planned);
        assert!(c.n_requests <= 2, "{c:?}");
        groups.entry((c.provider.clone(), c.endpoint.clone(), c.model.clone())).or_default().push(c.n_requests);
    }
    let chat = "/v1/chat/completions".to_owned();
    let want: BTreeMap<_, _> = [
        (("anthropic".into(), chat.clone(), String::new()), vec![2, 2]),
        (("openai".into(), chat.clone(), "gpt-a".into()), vec![2, 2, 1]),
        (("openai".into(), chat.clone(), "gpt-b".into()), vec![2, 1]),
        (("openai".into(), "/v1/embeddings".into(), "text-embedding-3-small".into()), vec![2]),
    ]
    .into_iter()
    .collect();
    assert_eq!(groups, want);
    // Chunk keys are unique (they name the upstream batches).
    let keys: std::collections::HashSet<_> = p.chunks.iter().map(|c| c.key.clone()).collect();
    assert_eq!(keys.len(), p.chunks.len());

    let mut seen = Vec::new();
    for c in &p.chunks {
        let lines = request_lines(&p.store, c);
        assert_eq!(lines.len() as u64, c.n_requests);
        for l in lines {
            if c.provider == "anthropic" {
                let id = l["custom_id"].as_str().unwrap();
                assert!(plan::anthropic_id_ok(id), "{id}");
                assert_eq!(l["params"]["model"], "claude-4.5-sonnet");
                assert_eq!(l["params"]["system"], "Be terse.");
                assert_eq!(l["params"]["max_tokens"], 50);
                seen.push(id.to_owned());
            } else {
                // OpenAI's own line format: bare model, no provider field, the chunk's url.
                assert_eq!(l.as_object().unwrap().len(), 4, "{l}");
                assert_eq!(l["method"], "POST");
                assert_eq!(l["url"], c.endpoint.as_str());
                assert_eq!(l["body"]["model"], c.model.as_str());
                seen.push(l["custom_id"].as_str().unwrap().to_owned());
            }
        }
    }
    // Every line planned once; the refused id replaced by a chunk-tagged surrogate.
    assert_eq!(seen.len(), mixed().len());
    let surrogate: Vec<_> = seen.iter().filter(|id| !p.line_of.contains_key(*id)).collect();
    assert_eq!(surrogate.len(), 1, "{seen:?}");
    let holder = p
        .chunks
        .iter()
        .find(|c| request_lines(&p.store, c).iter().any(|l| l["custom_id"] == surrogate[0].as_str()))
        .unwrap();
    let line = p.line_of["needs a surrogate/ü"];
    assert_eq!(surrogate[0], &format!("fr01234567c{}_{line}", holder.chunk));
}

#[test]
fn byte_limit_cuts_chunks_too() {
    let lines: Vec<Value> = (0..10).map(|i| model_line(&format!("a{i}"), "gpt-a")).collect();
    let dir = tempdir();
    let store = Store::open(dir.path()).unwrap();
    let input = dir.path().join("input.jsonl");
    std::fs::write(&input, jsonl(&lines)).unwrap();
    let one = serde_json::to_vec(&lines[0]).unwrap().len() as u64;
    let cfg = NativeConfig { openai_max_bytes: one * 3, ..NativeConfig::default() };
    let p = plan::make_plan(&store, BATCH, &input, &cfg, &SamplingTable::default(), 1 << 20).unwrap();
    assert!(p.chunks.len() >= 4, "{}", p.chunks.len());
    assert!(p.chunks.iter().all(|c| c.bytes <= one * 3));
    assert_eq!(p.chunks.iter().map(|c| c.n_requests).sum::<u64>(), 10);
}

fn end(store: &Store, c: &ChunkRow) -> ChunkRow {
    let mut c = c.clone();
    c.state = ChunkState::Ended;
    store.save_chunk(&c).unwrap();
    c
}

fn results(store: &Store) -> (Vec<Value>, Vec<Value>) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    store
        .for_each_result(BATCH, true, |l| {
            out.push(serde_json::from_str(l).unwrap());
            Ok(())
        })
        .unwrap();
    store
        .for_each_result(BATCH, false, |l| {
            err.push(serde_json::from_str(l).unwrap());
            Ok(())
        })
        .unwrap();
    (out, err)
}

#[test]
fn merge_maps_back_every_line_once_and_replays_nothing() {
    let p = planned(&mixed(), 100);
    let dir = p.store.native_dir(BATCH);
    let mut expected_errors = 0;
    for c in &p.chunks {
        let reqs = request_lines(&p.store, c);
        let c = end(&p.store, c);
        if c.provider == "anthropic" {
            // Shuffled, CRLF line ends, a blank line, one of each result type, and a line
            // of somebody else's batch (dropped).
            let mut body = String::new();
            for (i, r) in reqs.iter().enumerate().rev() {
                let id = r["custom_id"].as_str().unwrap();
                let result = match i {
                    0 => json!({"type": "errored", "error": {"type": "error",
                        "error": {"type": "invalid_request_error", "message": "bad params"}}}),
                    1 => json!({"type": "canceled"}),
                    _ => json!({"type": "succeeded", "message": {"id": "msg_1", "type": "message",
                        "role": "assistant", "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": format!("hi {id}")}],
                        "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 3}}}),
                };
                body.push_str(&json!({"custom_id": id, "result": result}).to_string());
                body.push_str("\r\n\r\n");
            }
            body.push_str(&json!({"custom_id": "someone-else", "result": {"type": "canceled"}}).to_string());
            std::fs::write(dir.join(format!("chunk-{}.res", c.chunk)), body).unwrap();
            expected_errors += 2;
        } else {
            let mut out = String::new();
            let mut err = String::new();
            for (i, r) in reqs.iter().enumerate() {
                let id = r["custom_id"].as_str().unwrap();
                if i == 1 {
                    err.push_str(&json!({"id": "batch_req_x", "custom_id": id, "response": {"status_code": 400,
                        "request_id": "req_1", "body": {"error": {"message": "too long", "type": "invalid_request_error",
                        "param": null, "code": "context_length_exceeded"}}}, "error": null}).to_string());
                    err.push('\n');
                    expected_errors += 1;
                } else {
                    out.push_str(&json!({"id": "batch_req_y", "custom_id": id, "response": {"status_code": 200,
                        "request_id": "req_2", "body": {"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                        "model": c.model, "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("re {id}")},
                        "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}},
                        "error": null}).to_string());
                    out.push('\n');
                }
            }
            std::fs::write(dir.join(format!("chunk-{}.out", c.chunk)), out).unwrap();
            std::fs::write(dir.join(format!("chunk-{}.err", c.chunk)), err).unwrap();
        }
        assert!(merge::merge(&p.store, &c, &dir, false).unwrap());
        // A second merge of the same chunk (a replay) does nothing.
        assert!(!merge::merge(&p.store, &c, &dir, false).unwrap());
    }
    let (out, err) = results(&p.store);
    assert_eq!(out.len() + err.len(), mixed().len());
    assert_eq!(err.len(), expected_errors);
    let all: Vec<Value> = out.iter().chain(&err).cloned().collect();
    let by_id = by_custom_id(&all);
    for id in p.line_of.keys() {
        assert!(by_id.contains_key(id), "{id} missing");
    }
    // Anthropic answers are chat.completions under the original id (the surrogate's too).
    let s = &by_id["needs a surrogate/ü"];
    assert!(s["response"].is_object() || s["error"].is_object(), "{s}");
    let c3 = &by_id["c3"];
    assert_eq!(c3["response"]["body"]["object"], "chat.completion", "{c3}");
    assert_eq!(c3["response"]["body"]["choices"][0]["message"]["content"], "hi c3");
    assert_eq!(c3["response"]["body"]["usage"]["prompt_tokens"], 10);
    let errored: Vec<_> = err.iter().filter(|l| l["response"]["body"]["error"]["message"] == "bad params").collect();
    assert_eq!(errored.len(), 1, "{err:?}");
    assert_eq!(errored[0]["response"]["status_code"], 400);
    assert_eq!(errored[0]["response"]["body"]["error"]["type"], "invalid_request_error");
    assert!(err.iter().any(|l| l["error"]["code"] == "batch_cancelled"), "{err:?}");
    assert!(err.iter().any(|l| l["response"]["body"]["error"]["code"] == "context_length_exceeded"));
    assert_eq!(p.store.chunks(BATCH).unwrap().iter().filter(|c| c.state == ChunkState::Merged).count(), p.chunks.len());
}

#[test]
fn a_chunk_failed_upstream_puts_all_its_lines_in_the_error_file() {
    let p = planned(&mixed(), 100);
    let c = p.chunks.iter().find(|c| c.model == "gpt-a").unwrap();
    let mut c = end(&p.store, c);
    c.errors = Some(json!({"code": "token_limit_exceeded", "message": "Enqueued token limit reached"}));
    p.store.save_chunk(&c).unwrap();
    assert!(merge::merge(&p.store, &c, &p.store.native_dir(BATCH), false).unwrap());
    let (out, err) = results(&p.store);
    assert!(out.is_empty());
    let ids: Vec<_> = err.iter().map(|l| l["custom_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["a0", "a1", "a2", "a3", "a4"]);
    for l in &err {
        assert_eq!(l["error"]["code"], "token_limit_exceeded");
        assert_eq!(l["error"]["message"], "Enqueued token limit reached");
        assert!(l["response"].is_null());
    }
}
