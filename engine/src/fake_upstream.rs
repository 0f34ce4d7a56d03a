//! A fake upstream provider speaking both wire formats with the simulator's answers:
//! realtime (`/v1/chat/completions`, `/v1/embeddings`, Anthropic's `/v1/messages`) and the
//! native batch APIs (OpenAI's Files + Batches, Anthropic's Message Batches), including
//! their awkward parts: late validation failures, shuffled result files, counts that show
//! only at the end, partial results after cancel and expiry. Fault knobs (`FakeKnobs`) make
//! it drop or hold create replies, rate-limit, hide fresh uploads, write CRLF, or stall;
//! counters and `batches()` show what a client did. The benchmark's "real HTTP provider",
//! the native executor's test double, and a stand-in for demos.
//!
//! A request (realtime, or a batch line) fails when its body carries `[fake:error]` (400)
//! or `[fake:error:NNN]` (that status): see `answers`.

// The route helpers refuse with a ready axum `Response` (built once per refused call, on a
// test double's cold path): boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod answers;
mod anthropic_batch;
mod anthropic_batches;
mod knobs;
mod messages_rules;
mod openai_batch;
mod openai_batches;
mod openai_files;
mod progress;
mod realtime;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;

pub use answers::FAIL_MARKER;
pub use knobs::{FakeBatch, FakeCounters, FakeKnobs, Provider};

use crate::config::SimulatedConfig;
use state::Shared;

/// Bodies up to Anthropic's 256 MB batch limit (and a little over, so the 413 is ours).
const BODY_LIMIT: usize = knobs::ANTHROPIC_MAX_REQUEST_BYTES + (1 << 20);

pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(realtime::chat))
        .route("/v1/embeddings", post(realtime::embeddings))
        .route("/v1/messages", post(realtime::messages))
        .route("/v1/files", post(openai_files::upload).get(openai_files::list))
        .route("/v1/files/{id}", get(openai_files::retrieve).delete(openai_files::delete))
        .route("/v1/files/{id}/content", get(openai_files::content))
        .route("/v1/batches", post(openai_batches::create).get(openai_batches::list))
        .route("/v1/batches/{id}", get(openai_batches::retrieve))
        .route("/v1/batches/{id}/cancel", post(openai_batches::cancel))
        .route("/v1/messages/batches", post(anthropic_batches::create).get(anthropic_batches::list))
        .route("/v1/messages/batches/{id}", get(anthropic_batches::retrieve).delete(anthropic_batches::delete))
        .route("/v1/messages/batches/{id}/cancel", post(anthropic_batches::cancel))
        .route("/v1/messages/batches/{id}/results", get(anthropic_batches::results))
        .layer(axum::middleware::map_response(request_ids))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// Every answer carries a request id, under each provider's header name.
async fn request_ids(mut response: Response) -> Response {
    let id = wire::new_id("req_");
    let headers = response.headers_mut();
    if let Ok(value) = id.parse() {
        headers.insert("x-request-id", value);
    }
    if let Ok(value) = id.parse() {
        headers.insert("request-id", value);
    }
    response
}

/// A reply that never comes: the body fails before its first byte, so the server closes
/// the connection without sending an answer (the client sees a dropped connection).
fn dropped_reply() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::other("reply dropped by the fake upstream"))
    });
    let mut response = Response::new(Body::from_stream(failing));
    *response.status_mut() = StatusCode::OK;
    response
}

impl FakeUpstream {
    /// Serves on 127.0.0.1 at `port` (0 picks one). Must run inside a tokio runtime.
    pub async fn start(cfg: SimulatedConfig, port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(cfg, format!("http://{addr}")));
        let app = router(shared.clone());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await;
        });
        Ok(Self { addr, shared, stop, server })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces every knob (see `FakeKnobs`; counts such as `drop_create_replies` restart).
    pub fn configure(&self, knobs: FakeKnobs) {
        self.shared.update_knobs(|k| *k = knobs);
    }

    /// Changes some knobs: `fake.update_knobs(|k| k.stall = true)`.
    pub fn update_knobs(&self, change: impl FnOnce(&mut FakeKnobs)) {
        self.shared.update_knobs(change);
    }

    /// The knobs now (the "next K" counts as far as they have been used up).
    pub fn knobs(&self) -> FakeKnobs {
        self.shared.lock().knobs.clone()
    }

    pub fn counters(&self) -> FakeCounters {
        self.shared.lock().counters.clone()
    }

    /// Every batch the fake holds, oldest first (after moving them by the time elapsed).
    pub fn batches(&self) -> Vec<FakeBatch> {
        let mut inner = self.shared.lock();
        inner.catch_up();
        let openai = inner.openai.iter().map(|b| FakeBatch {
            provider: Provider::OpenAi,
            id: b.id.clone(),
            state: b.status.as_str().to_owned(),
            request_count: b.request_count(),
            metadata: b.metadata.clone().unwrap_or_default(),
            input_file_id: Some(b.input_file_id.clone()),
            created_at: b.created_at,
        });
        let anthropic = inner.anthropic.iter().map(|b| FakeBatch {
            provider: Provider::Anthropic,
            id: b.id.clone(),
            state: b.status.as_str().to_owned(),
            request_count: b.request_count(),
            metadata: Default::default(),
            input_file_id: None,
            created_at: b.created_ms / 1000,
        });
        let mut all: Vec<FakeBatch> = openai.chain(anthropic).collect();
        all.sort_by_key(|b| b.created_at);
        all
    }

    /// Expires every unfinished batch now, keeping the results it has (OpenAI: `expired`,
    /// the unanswered lines `batch_expired` in the error file; Anthropic: `ended`, the
    /// unanswered requests `expired`).
    pub fn expire_all(&self) {
        self.shared.lock().expire_all();
    }

    pub async fn stop(self) {
        self.stop.cancel();
        // Held creates would keep their connections (and the graceful shutdown) waiting.
        self.shared.update_knobs(|k| k.hold_creates = false);
        let mut server = self.server;
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut server).await.is_err() {
            server.abort();
        }
    }
}
