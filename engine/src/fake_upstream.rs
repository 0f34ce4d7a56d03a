//! A fake upstream provider speaking both wire formats (`/v1/chat/completions`,
//! `/v1/embeddings` and Anthropic's `/v1/messages`) with the simulator's replies, latency
//! and faults. The benchmark's "real HTTP provider", and a stand-in for demos.

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
use crate::providers::simulated::{anthropic_message, chat_answer, openai_chat, openai_embeddings};

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
                json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limited"}}),
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
    // Anthropic's request carries `system` apart; the answer echoes the last user turn.
    Json(anthropic_message(&chat_answer(&body))).into_response()
}
