//! Sending requests: the connection pool (made afresh in a forked child), the key, the
//! per-attempt timeout, and retries with backoff that honours `retry-after-ms` /
//! `retry-after`, `max_retries` per operation however many attempts it takes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastrouter_batch_core::retry;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use crate::batches::Batches;
use crate::config::{ClientConfig, RetryEvent};
use crate::error::ClientError;
use crate::files::Files;

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
        f.debug_struct("Client").field("base_url", &self.cfg.shown_base_url()).finish_non_exhaustive()
    }
}

fn build_http() -> Result<reqwest::Client, ClientError> {
    fastrouter_batch_core::tls::install_crypto();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .user_agent(concat!("fastrouter-batch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::config(format!("cannot build the HTTP client: {e}")))
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Self, ClientError> {
        if !(cfg.base_url.starts_with("http://") || cfg.base_url.starts_with("https://")) {
            return Err(ClientError::config(format!(
                "base_url must start with http:// or https://, got {:?}",
                cfg.shown_base_url()
            )));
        }
        let http = build_http()?;
        Ok(Self { cfg, http: Arc::new(Mutex::new((std::process::id(), http))) })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    /// A copy with other settings, sharing the connection pool.
    pub fn with_config(&self, cfg: ClientConfig) -> Self {
        Self { cfg, http: self.http.clone() }
    }

    /// `/v1/files`: upload, retrieve, list, delete, read the content.
    pub fn files(&self) -> Files<'_> {
        Files::new(self)
    }

    /// `/v1/batches`: create, retrieve, list, cancel.
    pub fn batches(&self) -> Batches<'_> {
        Batches::new(self)
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

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http()
            .request(method, format!("{}{path}", self.cfg.base_url))
            .bearer_auth(self.cfg.api_key.expose())
            .timeout(self.cfg.timeout)
    }

    /// Sends `build()` until a 2xx answer passes `finish`, or a final error. `build` runs
    /// per attempt (a streamed upload reopens its file); `finish` reads the answer within
    /// the same attempt, so an answer whose body stalls past the timeout or breaks off is
    /// retried like one that never came.
    pub(crate) async fn send_then<F, Fut, G, GFut, T>(
        &self,
        (method, path): (&str, &str),
        mut build: F,
        mut finish: G,
    ) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<RequestBuilder, ClientError>>,
        G: FnMut(Response) -> GFut,
        GFut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut budget = Budget::default();
        loop {
            let err = match build().await?.send().await {
                Ok(resp) if resp.status().is_success() => match finish(resp).await {
                    Ok(done) => return Ok(done),
                    Err(e) => e,
                },
                Ok(resp) => status_error(resp).await,
                Err(e) => ClientError::from_reqwest(&e),
            };
            if !budget.retry(self, (method, path), &err).await {
                return Err(err);
            }
        }
    }

    /// A JSON call (GET, POST with an optional JSON body, DELETE) answered with the object
    /// `T`. `idempotency_key` goes with every attempt.
    pub(crate) async fn call<T>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError>
    where
        T: TryFrom<Value, Error = ClientError>,
    {
        let build = || {
            let mut req = self.request(method.clone(), path).query(query);
            if let Some(body) = body {
                req = req.json(body);
            }
            if let Some(key) = idempotency_key {
                req = req.header("Idempotency-Key", key);
            }
            std::future::ready(Ok(req))
        };
        self.send_then((method.as_str(), path), build, read_json).await
    }
}

/// The retries one operation has used: however many times it is attempted (a download
/// reopened after a reset, say), `max_retries` in all.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    used: u32,
}

impl Budget {
    /// After a failed attempt of `method path`: if retrying may help and retries are left,
    /// tells the retry hook, waits (the server's ask, or a jittered backoff) and says true.
    pub(crate) async fn retry(&mut self, client: &Client, (method, path): (&str, &str), err: &ClientError) -> bool {
        let cfg = &client.cfg;
        if !err.is_retryable() || self.used >= cfg.retry.max_retries {
            return false;
        }
        let wait = retry::delay(&cfg.retry, self.used, err.retry_after());
        self.used += 1;
        if let Some(hook) = &cfg.on_retry {
            hook(&RetryEvent { method, path, retry: self.used, max_retries: cfg.retry.max_retries, wait, error: err });
        }
        tokio::time::sleep(wait).await;
        true
    }
}

fn request_id(resp: &Response) -> Option<String> {
    ["x-request-id", "request-id"]
        .iter()
        .find_map(|h| resp.headers().get(*h).and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// A non-2xx answer as a status error: its body's fields, its request id, the wait it asked for.
pub(crate) async fn status_error(resp: Response) -> ClientError {
    let status = resp.status().as_u16();
    let id = request_id(&resp);
    let asked = retry::retry_after(|n| resp.headers().get(n).and_then(|v| v.to_str().ok()));
    let should_retry = match resp.headers().get("x-should-retry").and_then(|v| v.to_str().ok()) {
        Some(v) if v.trim().eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    let body = resp.bytes().await.unwrap_or_default();
    let mut err = ClientError::from_answer(status, &body, id, asked);
    if let ClientError::Status(s) = &mut err {
        s.should_retry = should_retry;
    }
    err
}

/// A 2xx answer's body as the object `T`.
pub(crate) async fn read_json<T: TryFrom<Value, Error = ClientError>>(resp: Response) -> Result<T, ClientError> {
    let bytes = resp.bytes().await.map_err(|e| ClientError::from_reqwest(&e))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::Decode { message: format!("The server's answer is not JSON: {e}") })?;
    T::try_from(value)
}

/// An id as one percent-encoded path segment, so it can never reach another endpoint
/// (`a/b`) or carry a query (`x?y=1`). `name` is the argument's, for the error: "", "."
/// and ".." (which URLs resolve, even encoded) are refused.
pub(crate) fn path_segment(name: &str, id: &str) -> Result<String, ClientError> {
    if id.is_empty() {
        return Err(ClientError::config(format!("{name} must not be empty")));
    }
    if matches!(id, "." | "..") {
        return Err(ClientError::config(format!("{name} must not be '{id}'")));
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

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(path_segment("id", "file-abc_1.2~x").unwrap(), "file-abc_1.2~x");
        assert_eq!(path_segment("id", "../batches").unwrap(), "..%2Fbatches");
        assert_eq!(path_segment("id", "x?y=1#z").unwrap(), "x%3Fy%3D1%23z");
        assert_eq!(path_segment("id", "é").unwrap(), "%C3%A9");
        assert_eq!(path_segment("file_id", "").unwrap_err().to_string(), "file_id must not be empty");
        assert_eq!(path_segment("batch_id", "..").unwrap_err().to_string(), "batch_id must not be '..'");
        assert!(path_segment("id", ".").is_err());
    }
}
