//! OpenAI's Files routes as the Batch API uses them: `POST /v1/files` (multipart `file` +
//! `purpose`), `GET /v1/files` (`purpose`, `order`, `after`, `limit`), `GET /v1/files/{id}`,
//! `GET /v1/files/{id}/content`, `DELETE /v1/files/{id}`.
//! A batch upload must be a `.jsonl` file in UTF-8 (checked here, as OpenAI does); the lines
//! themselves are checked only when a batch validates the file.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::knobs::Provider;
use super::state::{Shared, StoredFile, FILE_LIFETIME_SECS};
use super::wire::{check_key, openai_error, openai_invalid};

/// OpenAI's limit on a Batch API input file.
const MAX_BATCH_FILE_BYTES: usize = 200 * 1000 * 1000;
const PURPOSES: [&str; 6] = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"];

pub fn not_found(id: &str) -> Response {
    openai_error(404, "invalid_request_error", &format!("No such File object: {id}"), Some("id"), None)
}

#[derive(Default)]
struct Form {
    file: Option<(String, Vec<u8>)>,
    purpose: Option<String>,
    anchor: Option<String>,
    seconds: Option<String>,
}

async fn read_form(mut multipart: Multipart) -> Result<Form, Response> {
    let bad =
        |e: axum::extract::multipart::MultipartError| openai_invalid(&format!("Invalid multipart body: {e}"), None);
    let mut form = Form::default();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let filename = field.file_name().unwrap_or("upload").to_owned();
                form.file = Some((filename, field.bytes().await.map_err(bad)?.to_vec()));
            }
            "purpose" => form.purpose = Some(field.text().await.map_err(bad)?),
            "expires_after[anchor]" => form.anchor = Some(field.text().await.map_err(bad)?),
            "expires_after[seconds]" => form.seconds = Some(field.text().await.map_err(bad)?),
            _ => {}
        }
    }
    Ok(form)
}

/// The file's lifetime: `expires_after` (3600 to 2592000 seconds from `created_at`), or
/// 30 days for batch files, none for others.
fn lifetime(form: &Form, purpose: &str) -> Result<Option<i64>, Response> {
    let Some(seconds) = &form.seconds else {
        return Ok((purpose == "batch").then_some(FILE_LIFETIME_SECS));
    };
    if form.anchor.as_deref() != Some("created_at") {
        return Err(openai_invalid("expires_after[anchor] must be 'created_at'.", Some("expires_after[anchor]")));
    }
    match seconds.trim().parse::<i64>() {
        Ok(s) if (3600..=2_592_000).contains(&s) => Ok(Some(s)),
        _ => Err(openai_invalid(
            &format!("expires_after[seconds] must be an integer from 3600 to 2592000, got '{seconds}'."),
            Some("expires_after[seconds]"),
        )),
    }
}

pub async fn upload(State(shared): State<Arc<Shared>>, headers: HeaderMap, multipart: Multipart) -> Response {
    if let Err(denied) = check_key(&headers, Provider::OpenAi, &shared.lock().knobs) {
        return denied;
    }
    let form = match read_form(multipart).await {
        Ok(form) => form,
        Err(bad) => return bad,
    };
    let Some(purpose) = form.purpose.clone() else {
        return openai_invalid("Missing required parameter: 'purpose'.", Some("purpose"));
    };
    if !PURPOSES.contains(&purpose.as_str()) {
        let message = format!("'{purpose}' is not one of {PURPOSES:?} - 'purpose'");
        return openai_invalid(&message, Some("purpose"));
    }
    let Some((filename, bytes)) = form.file.clone() else {
        return openai_invalid("Missing required parameter: 'file'.", Some("file"));
    };
    if purpose == "batch" {
        if !filename.ends_with(".jsonl") {
            return openai_invalid("Invalid file format for Batch API. Must be .jsonl", None);
        }
        if std::str::from_utf8(&bytes).is_err() {
            return openai_invalid("Invalid file for Batch API. Must be utf-8 encoded", None);
        }
        if bytes.len() > MAX_BATCH_FILE_BYTES {
            let message =
                format!("File is too large for Batch API: {} bytes, at most {MAX_BATCH_FILE_BYTES}.", bytes.len());
            return openai_invalid(&message, Some("file"));
        }
    }
    let lifetime = match lifetime(&form, &purpose) {
        Ok(l) => l,
        Err(bad) => return bad,
    };
    let mut inner = shared.lock();
    let mut file = StoredFile::new(filename, &purpose, bytes, lifetime);
    file.hidden_reads = inner.knobs.hidden_file_reads;
    let body = file.json();
    inner.files.add(file);
    inner.counters.file_uploads += 1;
    Json(body).into_response()
}

pub async fn retrieve(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_key(&headers, Provider::OpenAi, &inner.knobs) {
        return denied;
    }
    match inner.files.read(&id) {
        Some(file) => Json(file.json()).into_response(),
        None => not_found(&id),
    }
}

pub async fn content(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_key(&headers, Provider::OpenAi, &inner.knobs) {
        return denied;
    }
    inner.counters.file_downloads += 1;
    match inner.files.read(&id) {
        Some(file) => ([(header::CONTENT_TYPE, "application/octet-stream")], file.bytes.to_vec()).into_response(),
        None => not_found(&id),
    }
}

pub async fn delete(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_key(&headers, Provider::OpenAi, &inner.knobs) {
        return denied;
    }
    match inner.files.remove(&id) {
        Some(_) => {
            inner.counters.file_deletes += 1;
            Json(json!({"id": id, "object": "file", "deleted": true})).into_response()
        }
        None => not_found(&id),
    }
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut inner = shared.lock();
    if let Err(denied) = check_key(&headers, Provider::OpenAi, &inner.knobs) {
        return denied;
    }
    inner.counters.file_lists += 1;
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 10_000,
        Some(Ok(l)) if (1..=10_000).contains(&l) => l,
        Some(_) => return openai_invalid("limit must be an integer from 1 to 10000.", Some("limit")),
    };
    let purpose = query.get("purpose");
    let mut files: Vec<&StoredFile> =
        inner.files.newest_first().filter(|f| purpose.is_none_or(|p| &f.purpose == p)).collect();
    match query.get("order").map(String::as_str) {
        None | Some("desc") => {}
        Some("asc") => files.reverse(),
        Some(other) => return openai_invalid(&format!("order must be 'asc' or 'desc', got '{other}'."), Some("order")),
    }
    let start = match query.get("after") {
        None => 0,
        Some(after) => match files.iter().position(|f| &f.id == after) {
            Some(i) => i + 1,
            None => return openai_invalid(&format!("after: no file with id '{after}'."), Some("after")),
        },
    };
    let page: Vec<&StoredFile> = files.iter().skip(start).take(limit).copied().collect();
    let has_more = start + page.len() < files.len();
    Json(json!({
        "object": "list", "data": page.iter().map(|f| f.json()).collect::<Vec<_>>(),
        "first_id": page.first().map(|f| &f.id), "last_id": page.last().map(|f| &f.id), "has_more": has_more,
    }))
    .into_response()
}
