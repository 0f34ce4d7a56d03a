//! `GET /metrics` (Prometheus' text format), and the middleware that counts every HTTP
//! answer by route template, method and status.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::Owner;
use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::metrics::{text, Metrics, Snapshot, UNMATCHED_ROUTE};

/// Needs an accepted key unless the engine serves metrics publicly (`metrics_public`).
pub async fn metrics(State(state): State<AppState>, owner: Result<Owner, ApiError>) -> ApiResult<Response> {
    if !state.cfg.metrics_public {
        owner?;
    }
    let now = Snapshot {
        batches_by_status: state.store.batches_by_status()?,
        queue_depth: state.store.pending_by_provider()?,
        in_flight: state.scheduler.in_flight(),
        storage_paused: state.scheduler.storage_paused(),
    };
    let headers = [(header::CONTENT_TYPE, text::CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")];
    Ok((headers, state.metrics.render(&now)).into_response())
}

/// Counts the answer under the route's template (`/v1/batches/{batch_id}`), never the raw
/// path: ids would make a series per batch.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let response = next.run(req).await;
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    metrics.http_answer(route, method.as_str(), response.status().as_u16(), started.elapsed());
    response
}
