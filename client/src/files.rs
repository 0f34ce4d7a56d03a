//! `/v1/files`: uploads (streamed from disk, retried from the start if they fail), retrieve,
//! list and delete. Reading a file's content is in `download.rs`.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::Method;

use crate::error::ClientError;
use crate::multipart::Form;
use crate::transport::{path_segment, Client};
use crate::types::{FileDeleted, FileObject, ListParams, Page};

/// What to upload: a file streamed from disk, or bytes in memory.
pub enum Upload {
    Path(PathBuf),
    Bytes(Bytes),
}

pub struct Files<'c> {
    pub(crate) client: &'c Client,
}

impl<'c> Files<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        Self { client }
    }

    /// `POST /v1/files`: uploads `source` as `filename` (multipart, its length sent ahead so
    /// the server can refuse an oversized upload at once).
    pub async fn create(&self, source: &Upload, filename: &str, purpose: &str) -> Result<FileObject, ClientError> {
        let client = self.client;
        let build = || async {
            let form = Form::new(filename, purpose);
            let (len, body): (u64, reqwest::Body) = match source {
                Upload::Bytes(b) => {
                    let content = futures_util::stream::once(std::future::ready(Ok(b.clone())));
                    (form.len(b.len() as u64), reqwest::Body::wrap_stream(form.body(content)))
                }
                Upload::Path(p) => {
                    let file = tokio::fs::File::open(p).await.map_err(|e| ClientError::io(e, Some(p)))?;
                    let size = file.metadata().await.map_err(|e| ClientError::io(e, Some(p)))?.len();
                    let chunks = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
                    (form.len(size), reqwest::Body::wrap_stream(form.body(chunks)))
                }
            };
            Ok(client
                .request(Method::POST, "/v1/files")
                .header(reqwest::header::CONTENT_TYPE, form.content_type.clone())
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(body))
        };
        client.send_then(("POST", "/v1/files"), build, crate::transport::read_json).await
    }

    /// `GET /v1/files/{file_id}`.
    pub async fn retrieve(&self, file_id: &str) -> Result<FileObject, ClientError> {
        let path = format!("/v1/files/{}", path_segment("file_id", file_id)?);
        self.client.call(Method::GET, &path, &[], None, None).await
    }

    /// `GET /v1/files`: one page, only files of `purpose` if given.
    pub async fn list(&self, purpose: Option<&str>, page: &ListParams) -> Result<Page<FileObject>, ClientError> {
        let mut query = page.query();
        if let Some(purpose) = purpose {
            query.push(("purpose", purpose.to_owned()));
        }
        self.client.call(Method::GET, "/v1/files", &query, None, None).await
    }

    /// `DELETE /v1/files/{file_id}`.
    pub async fn delete(&self, file_id: &str) -> Result<FileDeleted, ClientError> {
        let path = format!("/v1/files/{}", path_segment("file_id", file_id)?);
        self.client.call(Method::DELETE, &path, &[], None, None).await
    }
}
