//! Merging a chunk's downloaded results into the batch's own results: streamed line by
//! line (bounded memory), under the original custom_ids, in one transaction with the
//! chunk's `merged` mark (a crash mid-merge rolls it all back; the merge runs again).
//!
//! OpenAI output and error lines keep their shape (a non-2xx answer sits in
//! `response.body.error`, a line that never ran in `error`); Anthropic results become
//! `chat.completion`s (`succeeded`), OpenAI-shaped errors (`errored`) or not-run lines
//! (`canceled`, `expired`). An upstream batch that failed as a whole puts every one of its
//! lines in the error file with the provider's code and message. Lines no upstream file
//! mentions get no result here: finalizing lists them (`request_not_run`, or cancelled /
//! expired).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use fastrouter_batch_core::translate;
use serde_json::Value;

use super::fault::pause_at;
use super::wire::Api;
use crate::ids::now_secs;
use crate::store::{ChunkRow, MergeSink, ResultRow, Store, StoreError, Usage};
use crate::worker::{not_run_line, result_line_for};

const CANCELLED: (&str, &str) = ("batch_cancelled", "This request was not executed because the batch was cancelled.");
const EXPIRED: (&str, &str) =
    ("batch_expired", "This request could not be executed before the completion window expired.");

/// Merges one ended chunk from the files in `dir` (`chunk-N.out`/`.err`, `chunk-N.res`).
/// `expiring`: our batch is expiring, so Anthropic lines its cancel stopped are reported
/// `batch_expired` (not `batch_cancelled`). False if it was merged already.
pub fn merge(store: &Store, c: &ChunkRow, dir: &Path, expiring: bool) -> Result<bool, String> {
    let api = Api::of(&c.provider);
    let canceled = if expiring { EXPIRED } else { CANCELLED };
    let map = match c.errors {
        Some(_) => HashMap::new(),
        None => store.chunk_map(&c.batch_id, c.chunk).map_err(|e| e.to_string())?,
    };
    let convert = Convert { map, canceled, batch_id: &c.batch_id };
    let merged = store.merge_chunk(c, |sink| {
        let mut put = Put { sink, c, seen: 0 };
        if let Some(err) = &c.errors {
            let code = err.get("code").and_then(Value::as_str).unwrap_or("batch_failed");
            let message = err.get("message").and_then(Value::as_str).unwrap_or("The upstream batch failed.");
            return store.for_each_chunk_line(&c.batch_id, c.chunk, |line, custom_id| {
                put.row(line, false, not_run_line(custom_id, code, message).to_string(), Usage::default())
            });
        }
        let kinds: &[&str] = match api {
            Api::OpenAi => &["out", "err"],
            Api::Anthropic => &["res"],
        };
        // Decoding and translating the results (CPU) runs beside the inserts (SQLite).
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, bool, String, Usage)>(4096);
            let convert = &convert;
            let reader = scope.spawn(move || -> Result<(), StoreError> {
                for kind in kinds {
                    let path = dir.join(format!("chunk-{}.{kind}", c.chunk));
                    if !path.exists() {
                        continue;
                    }
                    for_each_line(&path, |text| match convert.line(api, text) {
                        Some(r) => tx.send(r).map_err(|_| StoreError::Io(std::io::Error::other("merge stopped"))),
                        None => Ok(()),
                    })?;
                }
                Ok(())
            });
            for (line, ok, data, usage) in rx {
                put.row(line, ok, data, usage)?;
            }
            reader.join().map_err(|_| StoreError::Io(std::io::Error::other("the merge reader panicked")))?
        })
    });
    merged.map_err(|e| e.to_string())
}

struct Put<'s, 'a> {
    sink: &'s mut MergeSink<'a>,
    c: &'s ChunkRow,
    seen: u64,
}

/// Turns upstream result lines into ours, by the chunk's line map.
struct Convert<'a> {
    map: HashMap<String, (u64, Option<String>)>,
    /// What an Anthropic `canceled` result is reported as.
    canceled: (&'static str, &'static str),
    batch_id: &'a str,
}

impl Put<'_, '_> {
    fn row(&mut self, line: u64, ok: bool, data: String, usage: Usage) -> Result<(), StoreError> {
        let row =
            ResultRow { batch_id: self.c.batch_id.clone(), line, ok, data, provider: self.c.provider.clone(), usage };
        self.sink.put(&row)?;
        self.seen += 1;
        if self.seen == 1 {
            // Test hook: a crash with part of the chunk written (in the open transaction).
            pause_at("mid_merge");
        }
        Ok(())
    }
}

impl Convert<'_> {
    /// One upstream result line.
    fn line(&self, api: Api, text: &[u8]) -> Option<(u64, bool, String, Usage)> {
        if api == Api::OpenAi {
            if let Some((upstream_cid, ok, usage)) = openai_fast(text) {
                // OpenAI's line is already the contract's shape, under the original id: kept
                // as it is (no decode and re-encode of the answer).
                let (line, original) = self.map.get(&upstream_cid)?;
                if original.is_none() {
                    return Some((*line, ok, String::from_utf8_lossy(text).into_owned(), usage));
                }
            }
        }
        let Ok(v) = serde_json::from_slice::<Value>(text) else {
            eprintln!("fastrouter-batch engine: batch {}: skipping an unreadable result line", self.batch_id);
            return None;
        };
        let cid = v.get("custom_id").and_then(Value::as_str)?;
        // Ids that are not this chunk's (a duplicate batch's, say) are dropped.
        let (line, original) = self.map.get(cid)?;
        let custom_id = original.as_deref().unwrap_or(cid);
        let (ok, data, usage) = match api {
            Api::OpenAi => openai_result(custom_id, &v),
            Api::Anthropic => anthropic_result(custom_id, &v, self.canceled),
        };
        Some((*line, ok, data, usage))
    }
}

/// An OpenAI result line read without decoding its answer: its custom_id, whether it
/// belongs in the output file, and the tokens its answer reports. None if it does not have
/// OpenAI's shape (the full decode then deals with it).
fn openai_fast(text: &[u8]) -> Option<(String, bool, Usage)> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        custom_id: std::borrow::Cow<'a, str>,
        id: Option<serde::de::IgnoredAny>,
        #[serde(borrow)]
        response: Option<Response<'a>>,
        error: Option<serde::de::IgnoredAny>,
    }
    #[derive(serde::Deserialize)]
    struct Response<'a> {
        status_code: u16,
        #[serde(borrow)]
        body: Option<&'a serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize, Default)]
    struct Tokens {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
        #[serde(default)]
        prompt_tokens_details: Option<Details>,
        #[serde(default)]
        completion_tokens_details: Option<Details>,
    }
    #[derive(serde::Deserialize, Default)]
    struct Details {
        #[serde(default)]
        cached_tokens: Option<u64>,
        #[serde(default)]
        reasoning_tokens: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        usage: Option<Tokens>,
    }
    let line: Line<'_> = serde_json::from_slice(text).ok()?;
    // The contract's line has an id and both fields; anything else is decoded in full.
    line.id.as_ref()?;
    let (ok, usage) = match &line.response {
        Some(r) => {
            let body: Option<Body> = r.body.and_then(|b| serde_json::from_str(b.get()).ok());
            let t = body.and_then(|b| b.usage).unwrap_or_default();
            let usage = Usage {
                input_tokens: t.prompt_tokens,
                cached_tokens: t.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
                output_tokens: t.completion_tokens,
                reasoning_tokens: t.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
            };
            ((200..300).contains(&r.status_code), usage)
        }
        None => {
            line.error.as_ref()?;
            (false, Usage::default())
        }
    };
    Some((line.custom_id.into_owned(), ok, usage))
}

fn openai_result(custom_id: &str, v: &Value) -> (bool, String, Usage) {
    match v.get("response").filter(|r| r.is_object()) {
        Some(resp) => {
            let status = resp.get("status_code").and_then(Value::as_u64).unwrap_or(500) as u16;
            let body = resp.get("body").cloned().unwrap_or(Value::Null);
            let usage = Usage::of_body(&body);
            let request_id = resp.get("request_id").and_then(Value::as_str).map(str::to_owned);
            let (ok, data) = result_line_for(custom_id, status, body, request_id);
            (ok, data, usage)
        }
        None => {
            let code = v.pointer("/error/code").and_then(Value::as_str).unwrap_or("upstream_error");
            let message = v.pointer("/error/message").and_then(Value::as_str).unwrap_or("The request did not run.");
            (false, not_run_line(custom_id, code, message).to_string(), Usage::default())
        }
    }
}

/// The HTTP status an Anthropic error type stands for.
fn anthropic_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

fn anthropic_result(custom_id: &str, v: &Value, canceled: (&str, &str)) -> (bool, String, Usage) {
    let result = v.get("result").unwrap_or(&Value::Null);
    match result.get("type").and_then(Value::as_str) {
        Some("succeeded") => {
            let message = result.get("message").unwrap_or(&Value::Null);
            let model = message.get("model").and_then(Value::as_str).unwrap_or_default();
            let body = translate::chat_completion(message, model, now_secs());
            let usage = Usage::of_body(&body);
            let (ok, data) = result_line_for(custom_id, 200, body, None);
            (ok, data, usage)
        }
        Some("errored") => {
            let envelope = result.get("error").unwrap_or(&Value::Null);
            let kind = envelope.pointer("/error/type").and_then(Value::as_str).unwrap_or("api_error");
            let status = anthropic_status(kind);
            let (ok, data) = result_line_for(custom_id, status, translate::openai_error(envelope, status), None);
            (ok, data, Usage::default())
        }
        Some("canceled") => (false, not_run_line(custom_id, canceled.0, canceled.1).to_string(), Usage::default()),
        Some("expired") => (false, not_run_line(custom_id, EXPIRED.0, EXPIRED.1).to_string(), Usage::default()),
        other => {
            let message = format!("Anthropic reported an unknown result type {other:?}.");
            (false, not_run_line(custom_id, "upstream_invalid_response", &message).to_string(), Usage::default())
        }
    }
}

/// Calls `f` with each line of a file split on `\n` only (a trailing `\r` stripped, blank
/// lines skipped), one line in memory at a time.
fn for_each_line(path: &Path, mut f: impl FnMut(&[u8]) -> Result<(), StoreError>) -> Result<(), StoreError> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        let mut line = buf.as_slice();
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        f(line)?;
    }
}
