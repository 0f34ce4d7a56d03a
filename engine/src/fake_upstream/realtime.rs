//! The realtime routes: `/v1/chat/completions`, `/v1/embeddings` and Anthropic's
//! `/v1/messages`, answered as a batch line would be (`answers`), after the simulator's
//! latency and transient faults.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde_json::{json, Map, Value};

use super::answers;
use super::knobs::Provider;
use super::state::Shared;
use super::wire::check_realtime_key;
use crate::config::SimulatedConfig;

/// Waits the latency, then maybe fails the way a busy provider does.
async fn delay_or_fault(cfg: &SimulatedConfig, anthropic: bool) -> Option<Response> {
    if !cfg.latency.is_zero() {
        tokio::time::sleep(cfg.latency).await;
    }
    if cfg.fault_rate > 0.0 && rand::rng().random::<f64>() < cfg.fault_rate {
        let (status, body) = if anthropic {
            (529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
        } else {
            (
                429,
                json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error", "param": null, "code": "rate_limited"}}),
            )
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return Some((status, [("retry-after-ms", "10")], Json(body)).into_response());
    }
    None
}

fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), Json(body)).into_response()
}

/// Counts the call and checks the key (when the `api_key` knob names one).
fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    provider: Provider,
    count: fn(&mut super::FakeCounters),
) -> Result<(), Response> {
    let mut inner = shared.lock();
    check_realtime_key(headers, provider, &inner.knobs)?;
    count(&mut inner.counters);
    Ok(())
}

pub async fn chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    if let Err(denied) = admit(&shared, &headers, Provider::OpenAi, |c| c.chat_calls += 1) {
        return denied;
    }
    if let Some(fault) = delay_or_fault(&shared.cfg, false).await {
        return fault;
    }
    let (status, body) = answers::openai("/v1/chat/completions", &body, shared.cfg.embedding_dims);
    reply(status, body)
}

pub async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    if let Err(denied) = admit(&shared, &headers, Provider::OpenAi, |c| c.embedding_calls += 1) {
        return denied;
    }
    if let Some(fault) = delay_or_fault(&shared.cfg, false).await {
        return fault;
    }
    let (status, body) = answers::openai("/v1/embeddings", &body, shared.cfg.embedding_dims);
    reply(status, body)
}

pub async fn messages(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    if let Err(denied) = admit(&shared, &headers, Provider::Anthropic, |c| c.messages_calls += 1) {
        return denied;
    }
    if let Some(fault) = delay_or_fault(&shared.cfg, true).await {
        return fault;
    }
    match answers::anthropic(&body, false) {
        Ok(message) => Json(message).into_response(),
        Err((status, envelope)) => reply(status, envelope),
    }
}
