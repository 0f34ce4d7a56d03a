//! Anthropic's Message Batches routes: `POST /v1/messages/batches`, `GET .../{id}`, the
//! list (newest first; `after_id` / `before_id` / `limit`), `POST .../{id}/cancel`,
//! `GET .../{id}/results` (the absolute `results_url`) and `DELETE .../{id}`. The envelope
//! (`requests`, each `custom_id`) is checked at create, as Anthropic does; each `params`
//! only as the request runs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::anthropic_batch::{AnthropicBatch, Request, Status};
use super::dropped_reply;
use super::knobs::Provider;
use super::state::{Inner, Shared};
use super::wire::{anthropic_error, check_anthropic_headers, rate_limited};

/// Anthropic's per-batch request limit.
pub const MAX_REQUESTS: usize = 100_000;

fn invalid(message: &str) -> Response {
    anthropic_error(400, "invalid_request_error", message)
}

fn not_found(id: &str) -> Response {
    anthropic_error(404, "not_found_error", &format!("No message batch found with id '{id}'."))
}

/// `custom_id` must match `^[a-zA-Z0-9_-]{1,64}$`; the message says which part failed.
fn custom_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("String should have at least 1 character")
    } else if id.chars().count() > 64 {
        Some("String should have at most 64 characters")
    } else if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        Some("String should match pattern '^[a-zA-Z0-9_-]{1,64}$'")
    } else {
        None
    }
}

/// The requests of a create body, or the 400 Anthropic answers.
fn parse_requests(body: &[u8]) -> Result<Vec<Request>, Response> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("The request body is not valid JSON (an object is expected)."));
    };
    let Some(items) = body.get("requests") else { return Err(invalid("requests: Field required")) };
    let Some(items) = items.as_array() else { return Err(invalid("requests: Input should be a valid list")) };
    if items.is_empty() {
        return Err(invalid("requests: List should have at least 1 item after validation, not 0"));
    }
    if items.len() > MAX_REQUESTS {
        let message =
            format!("requests: List should have at most {MAX_REQUESTS} items after validation, not {}", items.len());
        return Err(invalid(&message));
    }
    let mut seen = HashSet::new();
    let mut requests = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let custom_id = match item.get("custom_id") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid(&format!("requests.{i}.custom_id: Input should be a valid string"))),
            None => return Err(invalid(&format!("requests.{i}.custom_id: Field required"))),
        };
        if let Some(problem) = custom_id_problem(&custom_id) {
            return Err(invalid(&format!("requests.{i}.custom_id: {problem}")));
        }
        if !seen.insert(custom_id.clone()) {
            let message = format!(
                "requests.{i}.custom_id: Duplicate custom_id '{custom_id}': each must be unique within a batch"
            );
            return Err(invalid(&message));
        }
        let params = match item.get("params") {
            Some(Value::Object(p)) => p.clone(),
            Some(_) => return Err(invalid(&format!("requests.{i}.params: Input should be a valid dictionary"))),
            None => return Err(invalid(&format!("requests.{i}.params: Field required"))),
        };
        requests.push((custom_id, params));
    }
    Ok(requests)
}

pub async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (reply, drop, hold) = {
        let mut inner = shared.lock();
        if let Err(denied) = check_anthropic_headers(&headers, &inner.knobs) {
            return denied;
        }
        if body.len() > inner.knobs.max_request_bytes {
            let message =
                format!("Request exceeds the maximum allowed size of {} bytes.", inner.knobs.max_request_bytes);
            return anthropic_error(413, "request_too_large", &message);
        }
        if inner.rate_limit_create(Provider::Anthropic) {
            return rate_limited(Provider::Anthropic, &inner.knobs);
        }
        let requests = match parse_requests(&body) {
            Ok(r) => r,
            Err(bad) => return bad,
        };
        let batch = AnthropicBatch::new(requests);
        let reply = batch.json();
        inner.anthropic.push(batch);
        let drop = inner.count_create(Provider::Anthropic);
        (reply, drop, inner.holds(Provider::Anthropic))
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
    if let Err(denied) = check_anthropic_headers(&headers, &inner.knobs) {
        return denied;
    }
    inner.counters.anthropic_polls += 1;
    if inner.rate_limit_poll(Provider::Anthropic) {
        return rate_limited(Provider::Anthropic, &inner.knobs);
    }
    let Inner { knobs, anthropic, base_url, .. } = &mut *inner;
    let Some(batch) = anthropic.iter_mut().find(|b| b.id == id) else { return not_found(&id) };
    batch.clock.polled(knobs);
    batch.advance(knobs, base_url);
    Json(batch.json()).into_response()
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_anthropic_headers(&headers, &inner.knobs) {
        return denied;
    }
    inner.counters.anthropic_lists += 1;
    if inner.rate_limit_poll(Provider::Anthropic) {
        return rate_limited(Provider::Anthropic, &inner.knobs);
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(l)) if (1..=1000).contains(&l) => l,
        Some(_) => return invalid("limit: Input should be an integer from 1 to 1000"),
    };
    let ids: Vec<String> = inner.anthropic.iter().rev().map(|b| b.id.clone()).collect();
    let find = |key: &str| -> Result<Option<usize>, Response> {
        match query.get(key) {
            None => Ok(None),
            Some(cursor) => match ids.iter().position(|id| id == cursor) {
                Some(i) => Ok(Some(i)),
                None => Err(invalid(&format!("{key}: no message batch with id '{cursor}'"))),
            },
        }
    };
    let (after, before) = match (find("after_id"), find("before_id")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(bad), _) | (_, Err(bad)) => return bad,
    };
    // Newest first: after_id pages toward older batches, before_id toward newer ones.
    let (start, end, has_more) = match (after, before) {
        (Some(_), Some(_)) => return invalid("after_id and before_id cannot both be given"),
        (Some(a), None) => (a + 1, (a + 1 + limit).min(ids.len()), a + 1 + limit < ids.len()),
        (None, Some(b)) => (b.saturating_sub(limit), b, b > limit),
        (None, None) => (0, limit.min(ids.len()), limit < ids.len()),
    };
    let page = &ids[start..end];
    let Inner { knobs, anthropic, base_url, .. } = &mut *inner;
    let mut data = Vec::new();
    for id in page {
        if let Some(batch) = anthropic.iter_mut().find(|b| &b.id == id) {
            batch.clock.polled(knobs);
            batch.advance(knobs, base_url);
            data.push(batch.json());
        }
    }
    Json(json!({"data": data, "has_more": has_more, "first_id": page.first(), "last_id": page.last()})).into_response()
}

pub async fn cancel(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_anthropic_headers(&headers, &inner.knobs) {
        return denied;
    }
    inner.counters.anthropic_cancels += 1;
    let Inner { knobs, anthropic, base_url, .. } = &mut *inner;
    let Some(batch) = anthropic.iter_mut().find(|b| b.id == id) else { return not_found(&id) };
    batch.advance(knobs, base_url);
    if batch.cancel() {
        Json(batch.json()).into_response()
    } else {
        invalid(&format!("Message batch {id} has already ended and cannot be canceled."))
    }
}

pub async fn results(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_anthropic_headers(&headers, &inner.knobs) {
        return denied;
    }
    inner.counters.anthropic_results += 1;
    let Some(batch) = inner.anthropic.iter().find(|b| b.id == id) else { return not_found(&id) };
    match &batch.results_body {
        Some(body) => ([(header::CONTENT_TYPE, "application/binary")], body.clone()).into_response(),
        None => invalid(&format!("Message batch {id} has not ended yet: its results are not available.")),
    }
}

pub async fn delete(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_anthropic_headers(&headers, &inner.knobs) {
        return denied;
    }
    let Some(i) = inner.anthropic.iter().position(|b| b.id == id) else { return not_found(&id) };
    if inner.anthropic[i].status != Status::Ended {
        return invalid(&format!(
            "Message batch {id} is still being processed: cancel it, and delete it once it has ended."
        ));
    }
    inner.anthropic.remove(i);
    Json(json!({"id": id, "type": "message_batch_deleted"})).into_response()
}
