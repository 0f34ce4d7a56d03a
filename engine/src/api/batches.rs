//! `/v1/batches`: create (idempotent with `Idempotency-Key`), retrieve, list, cancel.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use fastrouter_batch_core::model::Endpoint;
use serde_json::{Map, Value};

use super::auth::Owner;
use super::error::{ApiError, ApiResult};
use super::paging;
use super::AppState;
use crate::ids::{new_id, now_ms, now_secs, BATCH_PREFIX};
use crate::store::{BatchRow, CancelRefused, Status};

const MAX_METADATA_PAIRS: usize = 16;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;

fn string_field<'a>(body: &'a Map<String, Value>, name: &'static str, required: bool) -> ApiResult<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => {
            Err(ApiError::bad_request("missing_required_parameter", format!("Missing required parameter: '{name}'."))
                .with_param(name))
        }
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => {
            Err(ApiError::bad_request("invalid_type", format!("'{name}' must be a string, got {other}."))
                .with_param(name))
        }
    }
}

fn metadata(body: &Map<String, Value>) -> ApiResult<Option<Value>> {
    let bad = |msg: String| ApiError::bad_request("invalid_metadata", msg).with_param("metadata");
    match body.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            if m.len() > MAX_METADATA_PAIRS {
                return Err(bad(format!(
                    "metadata holds {} pairs; at most {MAX_METADATA_PAIRS} are allowed.",
                    m.len()
                )));
            }
            for (k, v) in m {
                if k.chars().count() > MAX_METADATA_KEY {
                    return Err(bad(format!("metadata key '{k}' is longer than {MAX_METADATA_KEY} characters.")));
                }
                match v {
                    Value::String(s) if s.chars().count() <= MAX_METADATA_VALUE => {}
                    Value::String(_) => {
                        return Err(bad(format!("metadata['{k}'] is longer than {MAX_METADATA_VALUE} characters.")))
                    }
                    other => return Err(bad(format!("metadata['{k}'] must be a string, got {other}."))),
                }
            }
            Ok(Some(Value::Object(m.clone())))
        }
        Some(other) => Err(bad(format!("metadata must be an object of strings, got {other}."))),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Owner(owner): Owner,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = body.map_err(ApiError::unreadable_body)?;
    let body: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("The request body is not a JSON object: {e}.")))?;
    let input_file_id = string_field(&body, "input_file_id", true)?.unwrap_or_default();
    let endpoint = string_field(&body, "endpoint", true)?.unwrap_or_default();
    if Endpoint::from_url(endpoint).is_none() {
        return Err(ApiError::bad_request(
            "invalid_endpoint",
            format!("endpoint must be '/v1/chat/completions' or '/v1/embeddings', got '{endpoint}'."),
        )
        .with_param("endpoint"));
    }
    let window = string_field(&body, "completion_window", true)?.unwrap_or_default();
    if window != "24h" {
        return Err(ApiError::bad_request(
            "invalid_completion_window",
            format!("completion_window must be '24h', got '{window}'."),
        )
        .with_param("completion_window"));
    }
    let metadata = metadata(&body)?;
    let file = state
        .store
        .get_file(&owner, input_file_id)?
        .ok_or_else(|| ApiError::not_found("file", input_file_id).with_param("input_file_id"))?;
    if file.purpose != "batch" {
        return Err(ApiError::bad_request(
            "invalid_input_file",
            format!(
                "File '{input_file_id}' has purpose '{}'; a batch needs a file uploaded with purpose 'batch'.",
                file.purpose
            ),
        )
        .with_param("input_file_id"));
    }
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).filter(|k| !k.is_empty());
    let window_ms = state.cfg.completion_window.as_millis() as i64;
    let (created_ms, created_at) = (now_ms(), now_secs());
    let row = BatchRow {
        id: new_id(BATCH_PREFIX),
        owner,
        endpoint: endpoint.to_owned(),
        input_file_id: input_file_id.to_owned(),
        completion_window: window.to_owned(),
        status: Status::Validating,
        metadata,
        errors: None,
        output_file_id: None,
        error_file_id: None,
        total: 0,
        completed: 0,
        failed: 0,
        deadline_ms: created_ms + window_ms,
        created_at,
        in_progress_at: None,
        expires_at: Some((created_ms + window_ms) / 1000),
        finalizing_at: None,
        completed_at: None,
        failed_at: None,
        expired_at: None,
        cancelling_at: None,
        cancelled_at: None,
    };
    let (row, created) = state.store.insert_batch(&row, idempotency_key)?;
    if created {
        state.scheduler.start(&row.id);
    }
    Ok(Json(row.to_json()))
}

pub async fn retrieve(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = state.store.get_batch(&owner, &id)?.ok_or_else(|| ApiError::not_found("batch", &id))?;
    Ok(Json(row.to_json()))
}

pub async fn list(
    State(state): State<AppState>,
    Owner(owner): Owner,
    q: Result<Query<paging::ListParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let p = paging::params(q)?;
    let page = state.store.list_batches(&owner, p.after.as_deref(), p.limit)?;
    Ok(Json(paging::list(page, |b| &b.id, BatchRow::to_json)))
}

pub async fn cancel(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    match state.store.request_cancel(&owner, &id)? {
        Ok(row) => {
            if row.status == Status::Cancelling {
                state.scheduler.cancel(&id);
            }
            Ok(Json(row.to_json()))
        }
        Err(CancelRefused::NotFound) => Err(ApiError::not_found("batch", &id)),
        Err(CancelRefused::Finished(status)) => Err(ApiError::conflict(
            "batch_not_cancellable",
            format!("Batch '{id}' cannot be cancelled: its status is '{}'.", status.as_str()),
        )),
    }
}
