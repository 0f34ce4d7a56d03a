//! OpenAI's Batch routes: `POST /v1/batches`, `GET /v1/batches/{id}`, `GET /v1/batches`
//! (newest first, `after` + `limit` paging) and `POST /v1/batches/{id}/cancel`. A create
//! checks only its own parameters and that the input file exists; what is wrong inside the
//! file shows later, as a `failed` batch.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::dropped_reply;
use super::knobs::Provider;
use super::openai_batch::{check_file, OpenAiBatch, Verdict};
use super::state::{Inner, Shared};
use super::wire::{check_key, openai_error, openai_invalid, rate_limited};

const ENDPOINTS: [&str; 8] = [
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
];
/// The endpoints whose lines the simulator can answer.
const SIMULATED: [&str; 2] = ["/v1/chat/completions", "/v1/embeddings"];

fn not_found(id: &str) -> Response {
    openai_error(404, "invalid_request_error", &format!("No batch found with id '{id}'."), None, None)
}

/// The create's parameters, each checked as OpenAI checks it.
struct Create {
    input_file_id: String,
    endpoint: String,
    metadata: Option<Map<String, Value>>,
    output_lifetime: Option<i64>,
}

fn parse_create(body: &[u8]) -> Result<Create, Response> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(openai_invalid("The request body must be a JSON object.", None));
    };
    let text = |key: &str| -> Result<String, Response> {
        match body.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            None | Some(Value::Null) => {
                Err(openai_invalid(&format!("Missing required parameter: '{key}'."), Some(key)))
            }
            Some(_) => Err(openai_invalid(&format!("Invalid type for '{key}': expected a string."), Some(key))),
        }
    };
    let input_file_id = text("input_file_id")?;
    let endpoint = text("endpoint")?;
    let window = text("completion_window")?;
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        let message = format!("Invalid value: '{endpoint}'. Supported values are: {}.", ENDPOINTS.join(", "));
        return Err(openai_invalid(&message, Some("endpoint")));
    }
    if !SIMULATED.contains(&endpoint.as_str()) {
        let message = format!("The fake upstream answers only {} batches, not '{endpoint}'.", SIMULATED.join(" and "));
        return Err(openai_invalid(&message, Some("endpoint")));
    }
    if window != "24h" {
        let message = format!("Invalid value: '{window}'. Supported values are: '24h'.");
        return Err(openai_invalid(&message, Some("completion_window")));
    }
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => {
            check_metadata(m)?;
            Some(m.clone())
        }
        Some(_) => return Err(openai_invalid("Invalid type for 'metadata': expected an object.", Some("metadata"))),
    };
    let output_lifetime = match body.get("output_expires_after") {
        None | Some(Value::Null) => None,
        Some(after) => Some(output_lifetime(after)?),
    };
    Ok(Create { input_file_id, endpoint, metadata, output_lifetime })
}

/// `output_expires_after`: `{"anchor": "created_at", "seconds": 3600..=2592000}`.
fn output_lifetime(after: &Value) -> Result<i64, Response> {
    if after.get("anchor").and_then(Value::as_str) != Some("created_at") {
        let message = "Invalid 'output_expires_after.anchor': expected 'created_at'.";
        return Err(openai_invalid(message, Some("output_expires_after.anchor")));
    }
    match after.get("seconds").and_then(Value::as_i64) {
        Some(s) if (3600..=2_592_000).contains(&s) => Ok(s),
        _ => Err(openai_invalid(
            "Invalid 'output_expires_after.seconds': expected an integer from 3600 to 2592000.",
            Some("output_expires_after.seconds"),
        )),
    }
}

/// Up to 16 pairs, keys up to 64 characters, string values up to 512.
fn check_metadata(m: &Map<String, Value>) -> Result<(), Response> {
    if m.len() > 16 {
        let message = format!("Invalid 'metadata': too many properties. Expected at most 16, but got {}.", m.len());
        return Err(openai_invalid(&message, Some("metadata")));
    }
    for (k, v) in m {
        if k.chars().count() > 64 {
            let message = format!("Invalid 'metadata': key '{k}' is longer than 64 characters.");
            return Err(openai_invalid(&message, Some("metadata")));
        }
        match v.as_str() {
            Some(s) if s.chars().count() <= 512 => {}
            Some(_) => {
                let message = format!("Invalid 'metadata.{k}': string too long. Expected at most 512 characters.");
                return Err(openai_invalid(&message, Some(&format!("metadata.{k}"))));
            }
            None => {
                let message = format!("Invalid type for 'metadata.{k}': expected a string.");
                return Err(openai_invalid(&message, Some(&format!("metadata.{k}"))));
            }
        }
    }
    Ok(())
}

/// The input file's bytes, if the create may see it and it is a batch file.
fn input_file(inner: &mut Inner, file_id: &str) -> Result<Arc<[u8]>, Response> {
    let Some(file) = inner.files.read(file_id) else {
        let message = format!("Cannot find file {file_id}, or project proj_fake does not have access to it.");
        return Err(openai_invalid(&message, Some("input_file_id")));
    };
    if file.purpose != "batch" {
        let message = format!("File {} has purpose '{}'; a batch needs purpose 'batch'.", file.id, file.purpose);
        return Err(openai_invalid(&message, Some("input_file_id")));
    }
    Ok(file.bytes.clone())
}

/// Makes the batch with the file's verdict (shown at its first step), failing it at once
/// if it would pass the model's enqueued-token limit.
fn make_batch(inner: &mut Inner, create: Create, verdict: Verdict, embedding_dims: usize) -> Value {
    let mut batch = OpenAiBatch::new(create.endpoint, create.input_file_id, create.metadata, verdict, embedding_dims);
    batch.output_lifetime = create.output_lifetime;
    if let (Some(limit), Some((model, tokens))) = (inner.knobs.enqueued_token_limit, batch.enqueued()) {
        let queued: u64 =
            inner.openai.iter().filter_map(OpenAiBatch::enqueued).filter(|(m, _)| *m == model).map(|(_, t)| t).sum();
        if queued + tokens > limit {
            batch.over_token_limit(limit);
        }
    }
    let reply = batch.json();
    inner.openai.push(batch);
    reply
}

pub async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (create, bytes) = {
        let mut inner = shared.lock();
        if let Err(denied) = check_key(&headers, Provider::OpenAi, &inner.knobs) {
            return denied;
        }
        if inner.rate_limit_create(Provider::OpenAi) {
            return rate_limited(Provider::OpenAi, &inner.knobs);
        }
        let create = match parse_create(&body) {
            Ok(c) => c,
            Err(bad) => return bad,
        };
        match input_file(&mut inner, &create.input_file_id) {
            Ok(bytes) => (create, bytes),
            Err(bad) => return bad,
        }
    };
    // Reading up to 200 MB of lines takes a while: off the lock and off the runtime's threads.
    let endpoint = create.endpoint.clone();
    let Ok(verdict) = tokio::task::spawn_blocking(move || check_file(&bytes, &endpoint)).await else {
        return openai_error(500, "server_error", "The fake upstream failed to read the input file.", None, None);
    };
    let (reply, drop, hold) = {
        let mut inner = shared.lock();
        let reply = make_batch(&mut inner, create, verdict, shared.cfg.embedding_dims);
        let drop = inner.count_create(Provider::OpenAi);
        (reply, drop, inner.holds(Provider::OpenAi))
    };
    if hold {
        shared.wait_while_held().await;
    }
    if drop {
        return dropped_reply();
    }
    Json(reply).into_response()
}

pub async fn retrieve(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_key(&headers, Provider::OpenAi, &inner.knobs) {
        return denied;
    }
    inner.counters.openai_polls += 1;
    if inner.rate_limit_poll(Provider::OpenAi) {
        return rate_limited(Provider::OpenAi, &inner.knobs);
    }
    let Inner { knobs, files, openai, .. } = &mut *inner;
    let Some(batch) = openai.iter_mut().find(|b| b.id == id) else { return not_found(&id) };
    batch.clock.polled(knobs);
    batch.advance(knobs, files);
    Json(batch.json()).into_response()
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_key(&headers, Provider::OpenAi, &inner.knobs) {
        return denied;
    }
    inner.counters.openai_lists += 1;
    if inner.rate_limit_poll(Provider::OpenAi) {
        return rate_limited(Provider::OpenAi, &inner.knobs);
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => return openai_invalid("limit must be an integer from 1 to 100.", Some("limit")),
    };
    let ids: Vec<String> = inner.openai.iter().rev().map(|b| b.id.clone()).collect();
    let start = match query.get("after") {
        None => 0,
        Some(after) => match ids.iter().position(|id| id == after) {
            Some(i) => i + 1,
            None => return openai_invalid(&format!("after: no batch with id '{after}'."), Some("after")),
        },
    };
    let page: Vec<&String> = ids.iter().skip(start).take(limit).collect();
    let Inner { knobs, files, openai, .. } = &mut *inner;
    let mut data = Vec::new();
    for id in &page {
        if let Some(batch) = openai.iter_mut().find(|b| &b.id == *id) {
            batch.clock.polled(knobs);
            batch.advance(knobs, files);
            data.push(batch.json());
        }
    }
    let has_more = start + page.len() < ids.len();
    Json(json!({
        "object": "list", "data": data, "first_id": page.first(), "last_id": page.last(), "has_more": has_more,
    }))
    .into_response()
}

pub async fn cancel(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_key(&headers, Provider::OpenAi, &inner.knobs) {
        return denied;
    }
    inner.counters.openai_cancels += 1;
    let Inner { knobs, files, openai, .. } = &mut *inner;
    let Some(batch) = openai.iter_mut().find(|b| b.id == id) else { return not_found(&id) };
    batch.advance(knobs, files);
    match batch.cancel() {
        Ok(()) => Json(batch.json()).into_response(),
        Err(status) => openai_error(
            409,
            "invalid_request_error",
            &format!("Cannot cancel a batch with status '{}'.", status.as_str()),
            None,
            None,
        ),
    }
}
