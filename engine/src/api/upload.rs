//! `POST /v1/files`: a multipart upload, its `file` part streamed to disk. Every other
//! part is small (`MAX_SMALL_PART`), the parts are few (`MAX_PARTS`), and the parser never
//! holds more than `metered::SLACK` bytes: whatever is sent, memory stays bounded, and a
//! refusal quotes at most a short prefix of what was sent.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::auth::Owner;
use super::error::{detail, quote, ApiError, ApiResult};
use super::metered::{self, Meter, MAX_DRAIN_BYTES};
use super::AppState;
use crate::ids::{new_id, now_secs, FILE_PREFIX};
use crate::store::FileRow;

/// The most a part other than `file` may hold (`purpose` is one word).
const MAX_SMALL_PART: usize = 4096;
/// The most parts a body may have (`file`, `purpose` and a few ignored ones).
const MAX_PARTS: usize = 16;
/// The longest filename kept (a file name on most filesystems fits in 255 bytes).
const MAX_FILENAME_BYTES: usize = 255;
/// How long a refused upload is read (and thrown away) before the connection is closed.
const MAX_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

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

use fastrouter_batch_core::jsonl::blocks::BOM;

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

/// Reads and discards the rest of a part, within the bounds above. Memory stays at a chunk.
async fn drain_field(mut field: Field<'_>, meter: &Meter) {
    let drain = async {
        let mut seen = 0u64;
        while let Ok(Some(chunk)) = field.chunk().await {
            meter.took(chunk.len());
            seen += chunk.len() as u64;
            if seen > MAX_DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(MAX_DRAIN_TIME, drain).await;
}

/// Reads and discards the parts left in a multipart body.
async fn drain_rest(multipart: &mut Multipart, meter: &Meter) {
    let drain = async {
        while let Ok(Some(field)) = multipart.next_field().await {
            drain_field(field, meter).await;
        }
    };
    let _ = tokio::time::timeout(MAX_DRAIN_TIME, drain).await;
}

fn malformed(meter: &Meter, e: MultipartError) -> ApiError {
    if super::error::stalled(&e) {
        return ApiError::body_timeout();
    }
    let message = if meter.overflowed() {
        format!(
            "Malformed multipart body: more than {} bytes without a boundary or the end of a part's headers.",
            metered::SLACK
        )
    } else {
        format!("Malformed multipart body: {}", detail(&e.to_string()))
    };
    ApiError::bad_request("invalid_upload", message)
}

/// A small part's value, or None (the part drained) when it is over `MAX_SMALL_PART`.
async fn read_small(mut field: Field<'_>, meter: &Meter) -> ApiResult<Option<Vec<u8>>> {
    let mut value = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| malformed(meter, e))? {
        meter.took(chunk.len());
        if value.len() + chunk.len() > MAX_SMALL_PART {
            drain_field(field, meter).await;
            return Ok(None);
        }
        value.extend_from_slice(&chunk);
    }
    Ok(Some(value))
}

/// Writes the `file` part to a temporary file; a refused part is drained first.
async fn receive(state: &AppState, mut field: Field<'_>, meter: &Meter) -> ApiResult<Upload> {
    let received = write_part(state, &mut field, meter).await;
    if received.is_err() {
        // The answer (413, 507...) waits until the client has sent the rest.
        drain_field(field, meter).await;
    }
    received
}

async fn write_part(state: &AppState, field: &mut Field<'_>, meter: &Meter) -> ApiResult<Upload> {
    let limit = state.cfg.limits.max_bytes;
    let filename = field.file_name().unwrap_or("upload.jsonl").to_owned();
    if filename.len() > MAX_FILENAME_BYTES {
        return Err(ApiError::bad_request(
            "invalid_filename",
            format!("The filename '{}' is longer than {MAX_FILENAME_BYTES} bytes.", quote(&filename)),
        )
        .with_param("file"));
    }
    let path = state.store.temp_path("upload");
    state.store.check_space()?;
    let file = tokio::fs::File::create(&path).await?;
    let mut upload = Upload { path, bytes: 0, rows: 0, filename };
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut counter = RowCounter::default();
    while let Some(chunk) = field.chunk().await.map_err(|e| malformed(meter, e))? {
        meter.took(chunk.len());
        upload.bytes += chunk.len() as u64;
        if upload.bytes > limit {
            return Err(ApiError::too_large(limit).with_param("file"));
        }
        counter.feed(&chunk);
        state.store.check_space()?;
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.into_inner().sync_all().await?;
    upload.rows = counter.finish();
    Ok(upload)
}

/// An upload refused part-way (bad key, too large...) reads and drops the rest of the body
/// first, so the client gets the answer, then closes the connection (in case the drain
/// stopped at its bounds, the unread rest must not be taken for the next request).
pub async fn upload(State(state): State<AppState>, owner: Result<Owner, ApiError>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (body, meter) = metered::meter(body);
    let multipart = Multipart::from_request(Request::from_parts(parts, body), &state).await;
    let result = match (owner, multipart) {
        (Ok(Owner(owner)), multipart) => receive_upload(&state, owner, multipart, &meter).await,
        (Err(e), Ok(mut multipart)) => {
            drain_rest(&mut multipart, &meter).await;
            Err(e)
        }
        (Err(e), Err(_)) => Err(e),
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
    meter: &Meter,
) -> ApiResult<Json<Value>> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request("invalid_upload", format!("Expected multipart/form-data: {}", detail(&e.body_text())))
    })?;
    let mut purpose = None;
    let mut upload = None;
    let mut parts = 0;
    while let Some(field) = multipart.next_field().await.map_err(|e| malformed(meter, e))? {
        parts += 1;
        let taken = take_part(state, field, meter, parts, &mut purpose, &mut upload).await;
        if let Err(e) = taken {
            drain_rest(&mut multipart, meter).await;
            return Err(e);
        }
    }
    let purpose = match purpose {
        None => "batch".to_owned(),
        Some(p) if p == b"batch" => "batch".to_owned(),
        Some(p) => {
            return Err(ApiError::bad_request(
                "invalid_purpose",
                format!("purpose must be 'batch', got '{}'.", quote(&String::from_utf8_lossy(&p))),
            )
            .with_param("purpose"))
        }
    };
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
    tokio::fs::rename(&upload.path, state.store.content_path(&row.id)).await?;
    if let Err(e) = state.store.insert_file(&row) {
        let _ = std::fs::remove_file(state.store.content_path(&row.id));
        return Err(e.into());
    }
    Ok(Json(row.to_json()))
}

/// Reads one part into `purpose` or `upload` (other small parts are read past and ignored,
/// like OpenAI does). A refused part is drained before the error returns.
async fn take_part(
    state: &AppState,
    field: Field<'_>,
    meter: &Meter,
    number: usize,
    purpose: &mut Option<Vec<u8>>,
    upload: &mut Option<Upload>,
) -> ApiResult<()> {
    if number > MAX_PARTS {
        drain_field(field, meter).await;
        return Err(ApiError::bad_request(
            "too_many_parts",
            format!("The multipart body has more than {MAX_PARTS} parts."),
        ));
    }
    let name = field.name().unwrap_or_default().to_owned();
    match name.as_str() {
        "file" if upload.is_some() => {
            drain_field(field, meter).await;
            Err(ApiError::bad_request("invalid_upload", "The multipart body has more than one 'file' part.")
                .with_param("file"))
        }
        "file" => {
            *upload = Some(receive(state, field, meter).await?);
            Ok(())
        }
        _ => match read_small(field, meter).await? {
            Some(value) => {
                if name == "purpose" {
                    *purpose = Some(value);
                }
                Ok(())
            }
            None if name == "purpose" => Err(ApiError::bad_request(
                "invalid_purpose",
                format!("purpose must be 'batch', got a value of more than {MAX_SMALL_PART} bytes."),
            )
            .with_param("purpose")),
            None => Err(ApiError::bad_request(
                "part_too_large",
                format!(
                    "The multipart part '{}' is larger than {MAX_SMALL_PART} bytes; only 'file' may be large.",
                    quote(&name)
                ),
            )),
        },
    }
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
