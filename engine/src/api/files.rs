//! `/v1/files`: list, retrieve, delete, content (the upload is in `upload.rs`).

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio_util::io::ReaderStream;

use super::auth::Owner;
use super::error::{ApiError, ApiResult};
use super::paging;
use super::path::FileId;
use super::AppState;
use crate::store::FileRow;

fn owned_file(state: &AppState, owner: &str, id: &str) -> ApiResult<FileRow> {
    state.store.get_file(owner, id)?.ok_or_else(|| ApiError::not_found("file", id))
}

pub async fn retrieve(
    State(state): State<AppState>,
    Owner(owner): Owner,
    FileId(id): FileId,
) -> ApiResult<Json<Value>> {
    Ok(Json(owned_file(&state, &owner, &id)?.to_json()))
}

pub async fn list(
    State(state): State<AppState>,
    Owner(owner): Owner,
    q: Result<Query<paging::ListParams>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let p = paging::params(q)?;
    let page = state.store.list_files(&owner, p.after.as_deref(), p.limit, p.purpose.as_deref())?;
    Ok(Json(paging::list(page, |f| &f.id, FileRow::to_json)))
}

pub async fn delete(State(state): State<AppState>, Owner(owner): Owner, FileId(id): FileId) -> ApiResult<Json<Value>> {
    owned_file(&state, &owner, &id)?;
    if let Some(batch) = state.store.batch_using_file(&owner, &id)? {
        return Err(ApiError::conflict(
            "file_in_use",
            format!("File '{id}' is the input of batch '{batch}', which is still running."),
        ));
    }
    if !state.store.delete_file(&owner, &id)? {
        return Err(ApiError::not_found("file", &id));
    }
    Ok(Json(json!({"id": id, "object": "file", "deleted": true})))
}

pub async fn content(State(state): State<AppState>, Owner(owner): Owner, FileId(id): FileId) -> ApiResult<Response> {
    let row = owned_file(&state, &owner, &id)?;
    let file = tokio::fs::File::open(state.store.content_path(&row.id)).await.map_err(ApiError::internal)?;
    let len = file.metadata().await.map_err(ApiError::internal)?.len();
    let body = Body::from_stream(ReaderStream::with_capacity(file, 256 * 1024));
    Ok((
        [
            (header::CONTENT_TYPE, "application/jsonl".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", row.filename.replace('"', ""))),
        ],
        body,
    )
        .into_response())
}
