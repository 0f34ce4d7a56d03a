//! `GET /v1/batches/{batch_id}/providers`: a batch's request counts and usage per provider
//! (an extension of the engine; the dashboard's breakdown).

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Owner;
use super::error::{ApiError, ApiResult};
use super::path::BatchId;
use super::AppState;
use crate::store::ProviderCounts;

pub async fn providers(
    State(state): State<AppState>,
    Owner(owner): Owner,
    BatchId(id): BatchId,
) -> ApiResult<Json<Value>> {
    state.store.get_batch(&owner, &id)?.ok_or_else(|| ApiError::not_found("batch", &id))?;
    let data: Vec<Value> = state.store.provider_counts(&id)?.iter().map(ProviderCounts::to_json).collect();
    Ok(Json(json!({"object": "list", "batch_id": id, "data": data})))
}
