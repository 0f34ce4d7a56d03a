//! `/v1/batches`: create (idempotent with `Idempotency-Key`), retrieve, list, cancel.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use fastrouter_batch_core::model::Endpoint;
use serde_json::{json, Map, Value};

use super::auth::Owner;
use super::error::{detail, quote, ApiError, ApiResult};
use super::idempotency;
use super::paging;
use super::path::BatchId;
use super::AppState;
use crate::ids::{new_id, now_ms, now_secs, BATCH_PREFIX};
use crate::store::{BatchRow, CancelRefused, Status, Usage};

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
        Some(other) => Err(ApiError::bad_request(
            "invalid_type",
            format!("'{name}' must be a string, got {}.", quote(&other.to_string())),
        )
        .with_param(name)),
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
                    return Err(bad(format!(
                        "metadata key '{}' is longer than {MAX_METADATA_KEY} characters.",
                        quote(k)
                    )));
                }
                match v {
                    Value::String(s) if s.chars().count() <= MAX_METADATA_VALUE => {}
                    Value::String(_) => {
                        return Err(bad(format!(
                            "metadata['{}'] is longer than {MAX_METADATA_VALUE} characters.",
                            quote(k)
                        )))
                    }
                    other => {
                        return Err(bad(format!(
                            "metadata['{}'] must be a string, got {}.",
                            quote(k),
                            quote(&other.to_string())
                        )))
                    }
                }
            }
            Ok(Some(Value::Object(m.clone())))
        }
        Some(other) => Err(bad(format!("metadata must be an object of strings, got {}.", quote(&other.to_string())))),
    }
}

/// The wire form of a batch, telling (in `errors`) when storage trouble holds it up.
fn batch_json(state: &AppState, row: &BatchRow) -> Value {
    let mut json = row.to_json();
    // Native mode: the provider batches carrying this batch's lines (the dashboard shows them).
    if let Ok(chunks) = state.store.chunks(&row.id) {
        if !chunks.is_empty() {
            json["upstream_batches"] = chunks.iter().map(crate::store::ChunkRow::to_json).collect();
        }
    }
    if !row.status.is_terminal() {
        if let Some(message) = state.scheduler.storage_notice(&row.id) {
            json["errors"] = json!({"object": "list", "data": [
                {"code": "storage_unavailable", "line": null, "param": null, "message": message}
            ]});
        }
    }
    json
}

pub async fn create(
    State(state): State<AppState>,
    Owner(owner): Owner,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = body.map_err(ApiError::unreadable_body)?;
    let body: Map<String, Value> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("The request body is not a JSON object: {}.", detail(&e.to_string())),
        )
    })?;
    let idempotency = idempotency::key(&headers, &body)?;
    if let Some(k) = &idempotency {
        // Before any other check: a replay answers its batch even once its file is gone.
        if let Some(found) = state.store.batch_by_idempotency_key(&owner, &k.key, &k.hash)? {
            return Ok(Json(batch_json(&state, &idempotency::replay(found, &k.key)?)));
        }
    }
    let input_file_id = string_field(&body, "input_file_id", true)?.unwrap_or_default();
    let endpoint = string_field(&body, "endpoint", true)?.unwrap_or_default();
    if Endpoint::from_url(endpoint).is_none() {
        return Err(ApiError::bad_request(
            "invalid_endpoint",
            format!("endpoint must be '/v1/chat/completions' or '/v1/embeddings', got '{}'.", quote(endpoint)),
        )
        .with_param("endpoint"));
    }
    let window = string_field(&body, "completion_window", true)?.unwrap_or_default();
    if window != "24h" {
        return Err(ApiError::bad_request(
            "invalid_completion_window",
            format!("completion_window must be '24h', got '{}'.", quote(window)),
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
        usage: Usage::default(),
        live: (0, 0),
    };
    match state.store.insert_batch(&row, idempotency.as_ref().map(|k| (k.key.as_str(), k.hash.as_str())))? {
        Ok(row) => {
            state.scheduler.start(&row.id);
            Ok(Json(batch_json(&state, &row)))
        }
        // The same key came in twice at once and the other request made the batch.
        Err(found) => {
            Ok(Json(batch_json(&state, &idempotency::replay(found, idempotency.as_ref().map_or("", |k| &k.key))?)))
        }
    }
}

pub async fn retrieve(
    State(state): State<AppState>,
    Owner(owner): Owner,
    BatchId(id): BatchId,
) -> ApiResult<Json<Value>> {
    let row = state.store.get_batch(&owner, &id)?.ok_or_else(|| ApiError::not_found("batch", &id))?;
    Ok(Json(batch_json(&state, &row)))
}

pub async fn list(
    State(state): State<AppState>,
    Owner(owner): Owner,
    q: Result<Query<paging::ListParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let p = paging::params(q)?;
    let page = state.store.list_batches(&owner, p.after.as_deref(), p.limit)?;
    Ok(Json(paging::list(page, |b| &b.id, |b| batch_json(&state, b))))
}

pub async fn cancel(
    State(state): State<AppState>,
    Owner(owner): Owner,
    BatchId(id): BatchId,
) -> ApiResult<Json<Value>> {
    match state.store.request_cancel(&owner, &id)? {
        Ok(row) => {
            if row.status == Status::Cancelling {
                state.scheduler.cancel(&id);
            }
            Ok(Json(batch_json(&state, &row)))
        }
        Err(CancelRefused::NotFound) => Err(ApiError::not_found("batch", &id)),
        Err(CancelRefused::Finished(status)) => Err(ApiError::conflict(
            "batch_not_cancellable",
            format!("Batch '{id}' cannot be cancelled: its status is '{}'.", status.as_str()),
        )),
    }
}
