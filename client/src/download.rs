//! Reading a file's content (`GET /v1/files/{id}/content`): whole, streamed to disk, or line
//! by line. A download that fails (a status worth retrying, no answer, or a body cut off
//! mid-way) is opened again after a backoff, within one `max_retries` budget however many
//! times that happens.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::{Method, Response};
use tokio::io::AsyncWriteExt;

use crate::error::ClientError;
use crate::files::Files;
use crate::transport::{path_segment, status_error, Budget, Client};

fn content_path(file_id: &str) -> Result<String, ClientError> {
    Ok(format!("/v1/files/{}/content", path_segment("file_id", file_id)?))
}

/// One attempt at opening the content: the caller owns the retry budget.
async fn open(client: &Client, path: &str) -> Result<Response, ClientError> {
    let resp = client.request(Method::GET, path).send().await.map_err(|e| ClientError::from_reqwest(&e))?;
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(status_error(resp).await)
    }
}

impl Files<'_> {
    /// The whole content, in memory.
    pub async fn content(&self, file_id: &str) -> Result<Vec<u8>, ClientError> {
        let path = content_path(file_id)?;
        let mut budget = Budget::default();
        loop {
            let attempt = async {
                let resp = open(self.client, &path).await?;
                resp.bytes().await.map_err(|e| ClientError::from_reqwest(&e))
            };
            match attempt.await {
                Ok(bytes) => return Ok(bytes.to_vec()),
                Err(e) if budget.retry(self.client, ("GET", &path), &e).await => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The content streamed to `dest`: written aside, then renamed into place, so `dest`
    /// is never left half-written. Returns the bytes written.
    pub async fn download(&self, file_id: &str, dest: &Path) -> Result<u64, ClientError> {
        let path = content_path(file_id)?;
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "download".into());
        let temp = dest.with_file_name(format!(".{name}.part-{:016x}", rand::random::<u64>()));
        // Removes the temporary file however this ends: an error, or the future dropped
        // (Ctrl-C through the gate, a cancelled asyncio task).
        let mut guard = TempFile(Some(temp.clone()));
        let mut budget = Budget::default();
        let written = loop {
            let attempt = async {
                let resp = open(self.client, &path).await?;
                // Errors name the destination the caller gave, not the temporary sibling.
                let file = tokio::fs::File::create(&temp).await.map_err(|e| ClientError::io(e, Some(dest)))?;
                let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
                let written = copy_body(resp.bytes_stream(), &mut out, dest).await?;
                out.flush().await.map_err(|e| ClientError::io(e, Some(dest)))?;
                Ok(written)
            };
            match attempt.await {
                Ok(written) => break written,
                Err(e) if budget.retry(self.client, ("GET", &path), &e).await => {}
                Err(e) => return Err(e),
            }
        };
        tokio::fs::rename(&temp, dest).await.map_err(|e| ClientError::io(e, Some(dest)))?;
        guard.0 = None; // in place: nothing to remove
        Ok(written)
    }

    /// The content's lines (without `\n` or `\r\n`; invalid UTF-8 replaced), streamed. A
    /// download cut off mid-way is opened again and the bytes already delivered are
    /// skipped: no line is lost, repeated or torn. A line longer than [`MAX_LINE`] ends the
    /// stream with a `Decode` error naming it (`line_too_large`): an endless line is never
    /// held whole.
    pub fn lines(
        &self,
        file_id: &str,
    ) -> Result<impl Stream<Item = Result<String, ClientError>> + Send + 'static, ClientError> {
        self.lines_within(file_id, MAX_LINE)
    }

    /// `lines`, with another longest line.
    pub fn lines_within(
        &self,
        file_id: &str,
        max_line: usize,
    ) -> Result<impl Stream<Item = Result<String, ClientError>> + Send + 'static, ClientError> {
        let reader = LineReader {
            file_id: file_id.to_owned(),
            max_line,
            searched: 0,
            number: 0,
            client: self.client.clone(),
            path: content_path(file_id)?,
            body: None,
            pending: Vec::new(),
            start: 0,
            delivered: 0,
            skip: 0,
            budget: Budget::default(),
            done: false,
        };
        Ok(futures_util::stream::unfold(reader, |mut r| async move { r.next_line().await.map(|line| (line, r)) }))
    }
}

type Body = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The longest line `Files::lines` delivers: 64 MiB (as the results readers).
pub const MAX_LINE: usize = 64 << 20;

/// The state of `Files::lines`.
struct LineReader {
    file_id: String,
    max_line: usize,
    /// Bytes of `pending[start..]` already searched for a newline (none there).
    searched: usize,
    /// Lines delivered.
    number: u64,
    client: Client,
    path: String,
    body: Option<Body>,
    /// Bytes received and not yet delivered are `pending[start..]`.
    pending: Vec<u8>,
    start: usize,
    /// Bytes of the content delivered as lines (newlines included).
    delivered: u64,
    /// Bytes still to skip at the start of a reopened download (delivered before).
    skip: u64,
    budget: Budget,
    done: bool,
}

impl LineReader {
    /// The next line is over the limit: the lines end here.
    fn too_long(&mut self) -> ClientError {
        self.done = true;
        self.pending = Vec::new();
        ClientError::Decode {
            message: format!(
                "file {}, line {}: the line is over the {}-byte limit per line [line_too_large]",
                self.file_id,
                self.number + 1,
                self.max_line
            ),
        }
    }

    async fn next_line(&mut self) -> Option<Result<String, ClientError>> {
        loop {
            if self.done {
                return None;
            }
            let from = self.start + self.searched;
            if let Some(at) = memchr::memchr(b'\n', &self.pending[from..]) {
                let nl = self.searched + at;
                let line = &self.pending[self.start..self.start + nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() > self.max_line {
                    return Some(Err(self.too_long()));
                }
                let line = String::from_utf8_lossy(line).into_owned();
                self.start += nl + 1;
                self.delivered += nl as u64 + 1;
                self.searched = 0;
                self.number += 1;
                return Some(Ok(line));
            }
            self.searched = self.pending.len() - self.start;
            // (+1: the `\r` of a `\r\n` ending, not yet seen.)
            if self.searched > self.max_line + 1 {
                return Some(Err(self.too_long()));
            }
            let next = match &mut self.body {
                Some(body) => body.next().await.map(|r| r.map_err(|e| ClientError::from_reqwest(&e))),
                None => match open(&self.client, &self.path).await {
                    Ok(resp) => {
                        self.body = Some(Box::pin(resp.bytes_stream()));
                        continue;
                    }
                    Err(e) => Some(Err(e)),
                },
            };
            match next {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let n = self.skip.min(chunk.len() as u64) as usize;
                        chunk = chunk.slice(n..);
                        self.skip -= n as u64;
                    }
                    self.pending.drain(..self.start);
                    self.start = 0;
                    self.pending.extend_from_slice(&chunk);
                }
                Some(Err(err)) => {
                    self.body = None;
                    if !self.budget.retry(&self.client, ("GET", &self.path), &err).await {
                        self.done = true;
                        return Some(Err(err));
                    }
                    // Reopened from the start: what was received but not delivered comes
                    // again, what was delivered is skipped.
                    self.pending.clear();
                    self.start = 0;
                    self.searched = 0;
                    self.skip = self.delivered;
                }
                None => {
                    // The end: a last line without a newline is a line too.
                    let rest = &self.pending[self.start..];
                    if rest.len() > self.max_line {
                        return Some(Err(self.too_long()));
                    }
                    self.done = true;
                    return (!rest.is_empty()).then(|| Ok(String::from_utf8_lossy(rest).into_owned()));
                }
            }
        }
    }
}

/// Removes the file at its path when dropped, unless the path was taken back.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn copy_body<W: tokio::io::AsyncWrite + Unpin>(
    mut body: impl Stream<Item = reqwest::Result<Bytes>> + Unpin,
    out: &mut W,
    path: &Path,
) -> Result<u64, ClientError> {
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ClientError::from_reqwest(&e))?;
        out.write_all(&chunk).await.map_err(|e| ClientError::io(e, Some(path)))?;
        written += chunk.len() as u64;
    }
    Ok(written)
}
