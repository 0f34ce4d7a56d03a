//! Ids taken from the URL path. A segment that does not percent-decode to UTF-8 is
//! refused with the contract's JSON error (axum's own rejection is plain text).

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::error::ApiError;

/// The `{file_id}` of a files route.
pub struct FileId(pub String);

/// The `{batch_id}` of a batches route.
pub struct BatchId(pub String);

async fn path_id<S: Send + Sync>(parts: &mut Parts, state: &S, param: &'static str) -> Result<String, ApiError> {
    match Path::<String>::from_request_parts(parts, state).await {
        Ok(Path(id)) => Ok(id),
        Err(_) => Err(ApiError::bad_request(
            "invalid_id",
            format!("The {param} in the request URL is not valid: once percent-decoded it must be UTF-8 text."),
        )
        .with_param(param)),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FileId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(parts, state, "file_id").await.map(Self)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BatchId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        path_id(parts, state, "batch_id").await.map(Self)
    }
}
