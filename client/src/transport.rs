//! Sending requests: base URL and key, per-request timeout, retries with backoff that
//! honours `retry-after-ms` / `retry-after`, and streamed file transfers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fastrouter_batch_core::retry::{self, RetryPolicy};
use fastrouter_batch_core::Secret;
use futures_util::{Stream, StreamExt};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::error::ClientError;
use crate::multipart::Form;

pub const HOSTED_BASE_URL: &str = "https://api.fastrouter.ai";

/// Told before each retry: what failed, and how long until the next attempt.
pub struct RetryEvent<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// 1 for the first retry.
    pub retry: u32,
    pub max_retries: u32,
    pub wait: Duration,
    pub error: &'a ClientError,
}

pub type RetryHook = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

#[derive(Clone)]
pub struct ClientConfig {
    /// Without a trailing slash and without `/v1`.
    pub base_url: String,
    pub api_key: Secret,
    /// Per attempt.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Called before each retry (the Python binding logs it).
    pub on_retry: Option<RetryHook>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    pub fn new(base_url: &str, api_key: Secret) -> Self {
        Self {
            base_url: normalise_base_url(base_url),
            api_key,
            timeout: Duration::from_secs(600),
            retry: RetryPolicy {
                max_retries: 2,
                base_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(8),
                max_retry_after: Duration::from_secs(60),
            },
            on_retry: None,
        }
    }
}

/// `https://host/v1/` and `https://host` name the same API root.
fn normalise_base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix("/v1").unwrap_or(url).to_owned()
}

/// What to upload: a file streamed from disk, or bytes in memory.
pub enum Upload {
    Path(PathBuf),
    Bytes(Bytes),
}

#[derive(Clone)]
pub struct Client {
    cfg: ClientConfig,
    /// The connection pool and the pid that made it. A forked child must not reuse the
    /// parent's pooled connections (their driver tasks ran on the parent's runtime threads,
    /// which the child does not have): it gets a fresh pool.
    http: Arc<Mutex<(u32, reqwest::Client)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base_url", &self.cfg.base_url).finish_non_exhaustive()
    }
}

fn build_http() -> Result<reqwest::Client, ClientError> {
    crate::install_crypto();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .user_agent(concat!("fastrouter-batch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::Config { message: format!("cannot build the HTTP client: {e}") })
}

fn request_id(resp: &Response) -> Option<String> {
    ["x-request-id", "request-id"]
        .iter()
        .find_map(|h| resp.headers().get(*h).and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// A local file error: the OS's text (the path travels apart, once).
fn io_error(e: std::io::Error, path: Option<&Path>) -> ClientError {
    ClientError::Io {
        message: e.to_string(),
        path: path.map(Path::to_path_buf),
        kind: e.kind(),
        errno: e.raw_os_error(),
    }
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientError> {
        if !(cfg.base_url.starts_with("http://") || cfg.base_url.starts_with("https://")) {
            return Err(ClientError::Config {
                message: format!("base_url must start with http:// or https://, got {:?}", cfg.base_url),
            });
        }
        let http = build_http()?;
        Ok(Self { cfg, http: Arc::new(Mutex::new((std::process::id(), http))) })
    }

    /// The connection pool of this process (made afresh in a forked child).
    fn http(&self) -> reqwest::Client {
        let mut slot = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let pid = std::process::id();
        if slot.0 != pid {
            if let Ok(fresh) = build_http() {
                *slot = (pid, fresh);
            }
        }
        slot.1.clone()
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// A copy with other settings, sharing the connection pool.
    pub fn with_config(&self, cfg: ClientConfig) -> Self {
        Self { cfg, http: self.http.clone() }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http()
            .request(method, format!("{}{path}", self.cfg.base_url))
            .bearer_auth(self.cfg.api_key.expose())
            .timeout(self.cfg.timeout)
    }

    /// Sends `build()` until it gets a 2xx or a final error. `build` is called per attempt
    /// (a streamed upload must reopen its file).
    async fn send<F, Fut>(&self, what: (&str, &str), build: F) -> Result<Response, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<RequestBuilder, ClientError>>,
    {
        self.send_then(what, build, |resp| std::future::ready(Ok(resp))).await
    }

    /// `send`, then `finish` on the 2xx answer within the same attempt: an answer whose
    /// body stalls past the timeout or breaks off is retried like one that never came,
    /// from the one retry budget.
    async fn send_then<F, Fut, G, GFut, T>(
        &self,
        what: (&str, &str),
        mut build: F,
        mut finish: G,
    ) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<RequestBuilder, ClientError>>,
        G: FnMut(Response) -> GFut,
        GFut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 0;
        loop {
            let err = match build().await?.send().await {
                Ok(resp) if resp.status().is_success() => match finish(resp).await {
                    Ok(done) => return Ok(done),
                    Err(e) => e,
                },
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let id = request_id(&resp);
                    let body = resp.bytes().await.unwrap_or_default();
                    let asked = retry::retry_after(|n| headers.get(n).and_then(|v| v.to_str().ok()));
                    ClientError::from_answer(status, &body, id, asked)
                }
                Err(e) => ClientError::from_reqwest(&e),
            };
            if !err.is_retryable() || attempt >= self.cfg.retry.max_retries {
                return Err(err);
            }
            let wait = retry::delay(&self.cfg.retry, attempt, err.retry_after());
            self.tell_retry(what, attempt + 1, wait, &err);
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn tell_retry(&self, (method, path): (&str, &str), retry: u32, wait: Duration, error: &ClientError) {
        if let Some(hook) = &self.cfg.on_retry {
            hook(&RetryEvent { method, path, retry, max_retries: self.cfg.retry.max_retries, wait, error });
        }
    }

    async fn json(resp: Response) -> Result<Value, ClientError> {
        let bytes = resp.bytes().await.map_err(|e| ClientError::from_reqwest(&e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode { message: format!("The server's answer is not JSON: {e}") })
    }

    /// GET, POST (JSON) or DELETE on `path` (e.g. `/v1/batches`), answered with JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ClientError> {
        self.send_then(
            (method.as_str(), path),
            || {
                let mut req = self.request(method.clone(), path).query(query);
                if let Some(body) = body {
                    req = req.json(body);
                }
                if let Some(key) = idempotency_key {
                    req = req.header("Idempotency-Key", key);
                }
                std::future::ready(Ok(req))
            },
            Self::json,
        )
        .await
    }

    /// `POST /v1/files`: the upload streamed from disk, retried from the start if it fails.
    pub async fn upload(&self, source: &Upload, filename: &str, purpose: &str) -> Result<Value, ClientError> {
        self.send_then(
            ("POST", "/v1/files"),
            || async {
                let form = Form::new(filename, purpose);
                let (len, body): (u64, reqwest::Body) = match source {
                    Upload::Bytes(b) => {
                        let content = futures_util::stream::once(std::future::ready(Ok(b.clone())));
                        (form.len(b.len() as u64), reqwest::Body::wrap_stream(form.body(content)))
                    }
                    Upload::Path(p) => {
                        let file = tokio::fs::File::open(p).await.map_err(|e| io_error(e, Some(p)))?;
                        let size = file.metadata().await.map_err(|e| io_error(e, Some(p)))?.len();
                        let chunks = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
                        (form.len(size), reqwest::Body::wrap_stream(form.body(chunks)))
                    }
                };
                Ok(self
                    .request(Method::POST, "/v1/files")
                    .header(reqwest::header::CONTENT_TYPE, form.content_type.clone())
                    .header(reqwest::header::CONTENT_LENGTH, len)
                    .body(body))
            },
            Self::json,
        )
        .await
    }

    /// The response of `GET /v1/files/{id}/content`, its body not yet read (retried).
    pub async fn open_content(&self, file_id: &str) -> Result<Response, ClientError> {
        let path = content_path(file_id)?;
        self.send(("GET", &path), || std::future::ready(Ok(self.request(Method::GET, &path)))).await
    }

    /// One attempt at opening the content: the caller owns the retry budget.
    async fn open_content_once(&self, file_id: &str) -> Result<Response, ClientError> {
        let resp = self
            .request(Method::GET, &content_path(file_id)?)
            .send()
            .await
            .map_err(|e| ClientError::from_reqwest(&e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let (status, id) = (resp.status().as_u16(), request_id(&resp));
        let headers = resp.headers().clone();
        let asked = retry::retry_after(|n| headers.get(n).and_then(|v| v.to_str().ok()));
        let body = resp.bytes().await.unwrap_or_default();
        Err(ClientError::from_answer(status, &body, id, asked))
    }

    /// A file's content, whole.
    pub async fn content(&self, file_id: &str) -> Result<Vec<u8>, ClientError> {
        self.with_download_retries(file_id, || async {
            let resp = self.open_content_once(file_id).await?;
            let bytes = resp.bytes().await.map_err(|e| ClientError::from_reqwest(&e))?;
            Ok(bytes.to_vec())
        })
        .await
    }

    /// A file's content streamed to `dest` (written aside, then renamed into place).
    /// Returns the bytes written.
    pub async fn download(&self, file_id: &str, dest: &Path) -> Result<u64, ClientError> {
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "download".into());
        let temp = dest.with_file_name(format!(".{name}.part-{:016x}", rand::random::<u64>()));
        // Removes the temporary file however this ends: an error, or the future dropped
        // (Ctrl-C through the gate, a cancelled asyncio task).
        let mut guard = TempFile(Some(temp.clone()));
        let result = self
            .with_download_retries(file_id, || async {
                let resp = self.open_content_once(file_id).await?;
                // Errors name the destination the caller gave, not the temporary sibling.
                let file = tokio::fs::File::create(&temp).await.map_err(|e| io_error(e, Some(dest)))?;
                let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
                let written = copy_body(resp.bytes_stream(), &mut out, dest).await?;
                out.flush().await.map_err(|e| io_error(e, Some(dest)))?;
                Ok(written)
            })
            .await;
        let n = result?;
        tokio::fs::rename(&temp, dest).await.map_err(|e| io_error(e, Some(dest)))?;
        guard.0 = None; // in place: nothing to remove
        Ok(n)
    }

    /// A download is retried whole (status, connection or mid-body failure) within the one
    /// `max_retries` budget.
    async fn with_download_retries<T, F, Fut>(&self, file_id: &str, mut run: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 0;
        loop {
            match run().await {
                Err(e) if e.is_retryable() && attempt < self.cfg.retry.max_retries => {
                    let wait = retry::delay(&self.cfg.retry, attempt, e.retry_after());
                    let path = content_path(file_id).unwrap_or_default();
                    self.tell_retry(("GET", &path), attempt + 1, wait, &e);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
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

/// Percent-encodes one path segment (an id), so an id can never reach another endpoint
/// (`a/b`) or carry a query (`x?y=1`). "." and ".." (which URLs resolve, even encoded) and
/// "" are refused.
pub fn path_segment(id: &str) -> Result<String, ClientError> {
    if matches!(id, "" | "." | "..") {
        return Err(ClientError::Config { message: format!("invalid id {id:?}") });
    }
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

fn content_path(file_id: &str) -> Result<String, ClientError> {
    Ok(format!("/v1/files/{}/content", path_segment(file_id)?))
}

async fn copy_body<W: tokio::io::AsyncWrite + Unpin>(
    mut body: impl Stream<Item = reqwest::Result<Bytes>> + Unpin,
    out: &mut W,
    path: &Path,
) -> Result<u64, ClientError> {
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ClientError::from_reqwest(&e))?;
        out.write_all(&chunk).await.map_err(|e| io_error(e, Some(path)))?;
        written += chunk.len() as u64;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::normalise_base_url;

    #[test]
    fn ids_stay_one_path_segment() {
        use super::path_segment;
        assert_eq!(path_segment("file-abc_1.2~x").unwrap(), "file-abc_1.2~x");
        assert_eq!(path_segment("../batches").unwrap(), "..%2Fbatches");
        assert_eq!(path_segment("x?y=1#z").unwrap(), "x%3Fy%3D1%23z");
        assert_eq!(path_segment("é").unwrap(), "%C3%A9");
        for bad in ["", ".", ".."] {
            assert!(path_segment(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(normalise_base_url("https://api.fastrouter.ai/"), "https://api.fastrouter.ai");
        assert_eq!(normalise_base_url("http://127.0.0.1:8080/v1/"), "http://127.0.0.1:8080");
        assert_eq!(normalise_base_url(" http://h/v1 "), "http://h");
    }
}
