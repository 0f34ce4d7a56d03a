//! `/v1/files`: upload (multipart, streamed to disk), list, retrieve, delete, content.

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fastrouter_batch_core::jsonl::blocks::BOM;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::auth::Owner;
use super::error::{ApiError, ApiResult};
use super::paging;
use super::AppState;
use crate::ids::{new_id, now_secs, FILE_PREFIX};
use crate::store::FileRow;

/// Counts request lines (non-blank) across chunk boundaries, as the validator does: a
/// byte-order mark at the start of the file is not content.
#[derive(Default)]
struct RowCounter {
    rows: u64,
    in_content: bool,
    /// Bytes seen so far, while they are all a prefix of the byte-order mark.
    bom: Option<usize>,
    started: bool,
}

impl RowCounter {
    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if !self.started {
                let seen = self.bom.unwrap_or(0);
                if seen < BOM.len() && b == BOM[seen] {
                    self.bom = Some(seen + 1);
                    continue;
                }
                self.started = true;
                if seen > 0 && seen < BOM.len() {
                    self.in_content = true; // a broken mark is content (the validator says so)
                }
            }
            match b {
                b'\n' => {
                    self.rows += u64::from(self.in_content);
                    self.in_content = false;
                }
                b' ' | b'\t' | b'\r' => {}
                _ => self.in_content = true,
            }
        }
    }

    fn finish(self) -> u64 {
        self.rows + u64::from(self.in_content)
    }
}

/// A part written to a temporary file; removed on drop unless kept.
struct Upload {
    path: std::path::PathBuf,
    bytes: u64,
    rows: u64,
    filename: String,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How much of a refused upload is read (and thrown away) so the client, still sending,
/// gets the answer instead of a reset connection; past this the connection is closed.
const MAX_DRAIN_BYTES: u64 = 1 << 30;
const MAX_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads and discards the rest of a part, within the bounds above. Memory stays at a chunk.
async fn drain_field(mut field: Field<'_>) {
    let drain = async {
        let mut seen = 0u64;
        while let Ok(Some(chunk)) = field.chunk().await {
            seen += chunk.len() as u64;
            if seen > MAX_DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(MAX_DRAIN_TIME, drain).await;
}

/// Reads and discards a whole multipart body (a refused upload), within the same bounds.
async fn drain_multipart(multipart: Result<Multipart, MultipartRejection>) {
    if let Ok(mut multipart) = multipart {
        drain_rest(&mut multipart).await;
    }
}

/// Reads and discards the parts left in a multipart body.
async fn drain_rest(multipart: &mut Multipart) {
    let drain = async {
        while let Ok(Some(field)) = multipart.next_field().await {
            drain_field(field).await;
        }
    };
    let _ = tokio::time::timeout(MAX_DRAIN_TIME, drain).await;
}

async fn receive(state: &AppState, mut field: Field<'_>) -> ApiResult<Upload> {
    let limit = state.cfg.limits.max_bytes;
    let filename = field.file_name().unwrap_or("upload.jsonl").to_owned();
    let path = state.store.temp_path("upload");
    let file = tokio::fs::File::create(&path).await.map_err(ApiError::internal)?;
    let mut upload = Upload { path, bytes: 0, rows: 0, filename };
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut counter = RowCounter::default();
    while let Some(chunk) =
        field.chunk().await.map_err(|e| ApiError::bad_request("invalid_upload", format!("Upload cut short: {e}")))?
    {
        upload.bytes += chunk.len() as u64;
        if upload.bytes > limit {
            drain_field(field).await;
            return Err(ApiError::too_large(limit).with_param("file"));
        }
        counter.feed(&chunk);
        out.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    out.flush().await.map_err(ApiError::internal)?;
    out.into_inner().sync_all().await.map_err(ApiError::internal)?;
    upload.rows = counter.finish();
    Ok(upload)
}

/// An upload refused part-way (bad key, too large...) reads and drops the rest of the body
/// first, so the client gets the answer, then closes the connection (in case the drain
/// stopped at its bounds, the unread rest must not be taken for the next request).
pub async fn upload(
    State(state): State<AppState>,
    owner: Result<Owner, ApiError>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let result = match owner {
        Ok(Owner(owner)) => receive_upload(&state, owner, multipart).await,
        Err(e) => {
            drain_multipart(multipart).await;
            Err(e)
        }
    };
    match result {
        Ok(json) => json.into_response(),
        Err(e) => {
            let mut response = e.into_response();
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            response
        }
    }
}

async fn receive_upload(
    state: &AppState,
    owner: String,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<Value>> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request("invalid_upload", format!("Expected multipart/form-data: {}", e.body_text()))
    })?;
    let mut purpose = None;
    let mut upload = None;
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request("invalid_upload", format!("Malformed multipart body: {e}"))
    };
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("file") if upload.is_none() => match receive(state, field).await {
                Ok(u) => upload = Some(u),
                Err(e) => {
                    drain_rest(&mut multipart).await;
                    return Err(e);
                }
            },
            Some("purpose") => purpose = Some(field.text().await.map_err(bad)?),
            // Other parts are read past and ignored, like OpenAI does.
            _ => {}
        }
    }
    let purpose = purpose.unwrap_or_else(|| "batch".into());
    if purpose != "batch" {
        return Err(ApiError::bad_request("invalid_purpose", format!("purpose must be 'batch', got '{purpose}'."))
            .with_param("purpose"));
    }
    let upload = upload.ok_or_else(|| {
        ApiError::bad_request("missing_file", "The multipart body has no 'file' part.").with_param("file")
    })?;
    let row = FileRow {
        id: new_id(FILE_PREFIX),
        owner,
        filename: upload.filename.clone(),
        purpose,
        bytes: upload.bytes,
        num_rows: upload.rows,
        created_at: now_secs(),
    };
    tokio::fs::rename(&upload.path, state.store.content_path(&row.id)).await.map_err(ApiError::internal)?;
    if let Err(e) = state.store.insert_file(&row) {
        let _ = std::fs::remove_file(state.store.content_path(&row.id));
        return Err(e.into());
    }
    Ok(Json(row.to_json()))
}

fn owned_file(state: &AppState, owner: &str, id: &str) -> ApiResult<FileRow> {
    state.store.get_file(owner, id)?.ok_or_else(|| ApiError::not_found("file", id))
}

pub async fn retrieve(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Path(id): Path<String>,
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

pub async fn delete(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
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

pub async fn content(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Path(id): Path<String>,
) -> ApiResult<Response> {
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

#[cfg(test)]
mod tests {
    use super::RowCounter;

    #[test]
    fn rows_across_chunks() {
        let mut c = RowCounter::default();
        for chunk in [&b"{\"a\":1}\n\n  \r\n{\"b"[..], b"\":2}\r\n", b"{}"] {
            c.feed(chunk);
        }
        assert_eq!(c.finish(), 3);
        // A byte-order mark (even split across chunks) before a blank line: not a row.
        let mut c = RowCounter::default();
        for chunk in [&b"\xEF"[..], b"\xBB\xBF  \r\n{}\n", b"{}"] {
            c.feed(chunk);
        }
        assert_eq!(c.finish(), 2);
        let mut c = RowCounter::default();
        c.feed(b"\xEF\xBB\xBF{}\n");
        assert_eq!(c.finish(), 1);
    }
}
