//! The HTTP surface: the wire contract's endpoints on axum.

mod auth;
mod batches;
mod breakdown;
mod dashboard;
pub mod error;
mod files;
mod idempotency;
mod metered;
mod metrics;
mod paging;
mod path;
pub mod serve;
mod upload;

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::config::EngineConfig;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::worker::Scheduler;
use error::ApiError;

/// The OpenAPI document describing every route below.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The most a JSON request body may hold (uploads have their own, larger limit).
const MAX_JSON_BODY: usize = 1 << 20;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub scheduler: Scheduler,
    pub cfg: Arc<EngineConfig>,
    /// Owner ids of the accepted keys.
    pub owners: Arc<HashSet<String>>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/files", post(upload::upload).get(files::list).layer(DefaultBodyLimit::disable()))
        .route("/v1/files/{file_id}", get(files::retrieve).delete(files::delete))
        .route("/v1/files/{file_id}/content", get(files::content))
        .route("/v1/batches", post(batches::create).get(batches::list))
        .route("/v1/batches/{batch_id}", get(batches::retrieve))
        .route("/v1/batches/{batch_id}/cancel", post(batches::cancel))
        .route("/v1/batches/{batch_id}/providers", get(breakdown::providers))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(dashboard::index))
        .route("/ui/app.js", get(dashboard::app_js))
        .route("/ui/app.css", get(dashboard::app_css))
        .route("/ui/icon.svg", get(dashboard::icon))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(state.cfg.body_read_timeout))
        .layer(axum::middleware::map_response(with_request_id))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .with_state(state)
}

/// Every answer names itself (`x-request-id`), so a client error can quote it.
async fn with_request_id(mut response: axum::response::Response) -> axum::response::Response {
    if let Ok(id) = header::HeaderValue::from_str(&crate::ids::new_id("req_")) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::no_route(method.as_str(), uri.path())
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::wrong_method(method.as_str(), uri.path())
}
