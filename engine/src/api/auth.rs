//! Who is calling: the bearer key, reduced to its owner id. Everything a key made is
//! visible to that key only.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::auth::{bearer, owner_of};

/// The caller's owner id (a digest of its key).
pub struct Owner(pub String);

impl FromRequestParts<AppState> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or_else(ApiError::unauthorized)?;
        let owner = owner_of(key);
        if state.owners.contains(&owner) {
            Ok(Owner(owner))
        } else {
            Err(ApiError::unauthorized())
        }
    }
}
