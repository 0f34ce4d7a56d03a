//! A fake upstream provider speaking both wire formats (`/v1/chat/completions`,
//! `/v1/embeddings` and Anthropic's `/v1/messages`) with the simulator's replies, latency
//! and faults. The benchmark's "real HTTP provider", and a stand-in for demos. It answers
//! tools with tool calls and response schemas with fitting JSON, and `/v1/messages`
//! refuses what Anthropic refuses (`messages_rules`).

mod messages_rules;

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rand::Rng;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::config::SimulatedConfig;
use crate::providers::simulated::{answer, anthropic_message, chat_answer, openai_chat, openai_embeddings, Ask};

pub struct FakeUpstream {
    addr: SocketAddr,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl FakeUpstream {
    /// Serves on 127.0.0.1 at `port` (0 picks one). Must run inside a tokio runtime.
    pub async fn start(cfg: SimulatedConfig, port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/messages", post(messages))
            .with_state(cfg);
        let stop = CancellationToken::new();
        let token = stop.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await;
        });
        Ok(Self { addr, stop, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let mut server = self.server;
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut server).await.is_err() {
            server.abort();
        }
    }
}

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

async fn chat(State(cfg): State<SimulatedConfig>, Json(body): Json<Map<String, Value>>) -> Response {
    if let Some(fault) = delay_or_fault(&cfg, false).await {
        return fault;
    }
    Json(openai_chat(&chat_answer(&body), crate::ids::now_secs())).into_response()
}

async fn embeddings(State(cfg): State<SimulatedConfig>, Json(body): Json<Map<String, Value>>) -> Response {
    if let Some(fault) = delay_or_fault(&cfg, false).await {
        return fault;
    }
    Json(openai_embeddings(&body, cfg.embedding_dims)).into_response()
}

async fn messages(State(cfg): State<SimulatedConfig>, Json(body): Json<Map<String, Value>>) -> Response {
    if let Some(fault) = delay_or_fault(&cfg, true).await {
        return fault;
    }
    if let Err(message) = messages_rules::check(&Value::Object(body.clone())) {
        let error = json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}});
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    Json(anthropic_message(&answer(&Ask::from_anthropic(&body)))).into_response()
}
