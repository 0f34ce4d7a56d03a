//! What can go wrong talking to the Batch API, with what the server said.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, Clone)]
pub enum ClientError {
    /// The server answered with a non-2xx status.
    Status(Box<StatusError>),
    /// No answer: connection refused or reset, DNS, TLS.
    Connection { message: String },
    /// No answer in time.
    Timeout { message: String },
    /// A local file could not be read or written. `errno` is the OS error number, if any.
    Io { message: String, path: Option<std::path::PathBuf>, kind: std::io::ErrorKind, errno: Option<i32> },
    /// The server's answer could not be understood.
    Decode { message: String },
    /// A setting or an argument is unusable (bad base URL, an empty id...).
    Config { message: String },
}

/// A non-2xx answer: its status and the error body's fields (OpenAI's `{"error": {...}}`).
#[derive(Debug, Clone)]
pub struct StatusError {
    pub status: u16,
    pub message: String,
    /// The error's `type`.
    pub kind: Option<String>,
    pub code: Option<String>,
    pub param: Option<String>,
    pub request_id: Option<String>,
    /// The whole body, when it was JSON.
    pub body: Option<Value>,
    /// The wait the answer asked for (`retry-after-ms` / `retry-after`), if any.
    pub retry_after: Option<Duration>,
    /// The server's `x-should-retry` (true or false), if it sent one: it knows whether
    /// trying again can help, so it overrides the status's default (as in openai-python).
    pub should_retry: Option<bool>,
}

impl ClientError {
    /// A status error from an answer's body (`{"error": {...}}` or anything else) and the
    /// wait its headers asked for.
    pub fn from_answer(status: u16, body: &[u8], request_id: Option<String>, retry_after: Option<Duration>) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error"));
        let text = |k: &str| {
            err.and_then(|e| e.get(k)).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
        };
        let message = text("message").unwrap_or_else(|| {
            let raw = String::from_utf8_lossy(&body[..body.len().min(500)]).trim().to_owned();
            if raw.is_empty() {
                format!("HTTP {status}")
            } else {
                raw
            }
        });
        Self::Status(Box::new(StatusError {
            status,
            message,
            kind: text("type"),
            code: text("code"),
            param: text("param"),
            request_id,
            body: parsed,
            retry_after,
            should_retry: None,
        }))
    }

    /// The wait the server asked for before a retry, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status(s) => s.retry_after,
            _ => None,
        }
    }

    /// Retrying might help: no answer, or an answer that says "later".
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status(s) => {
                s.should_retry.unwrap_or_else(|| fastrouter_batch_core::retry::is_retryable_status(s.status))
            }
            Self::Connection { .. } | Self::Timeout { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn from_reqwest(e: &reqwest::Error) -> Self {
        // The innermost cause says what happened; the URL tried is named without its
        // credentials or query, and headers (which carry the key) never are.
        let mut source: &dyn std::error::Error = e;
        while let Some(inner) = source.source() {
            source = inner;
        }
        let to = e.url().map(|u| format!(" ({})", shown_url(u))).unwrap_or_default();
        if e.is_timeout() {
            Self::Timeout { message: format!("Request timed out{to}: {source}") }
        } else if e.is_builder() {
            Self::Config { message: format!("Invalid request: {source}") }
        } else {
            Self::Connection { message: format!("Connection error{to}: {source}") }
        }
    }

    /// A local file error: the OS's text (the path travels apart, once).
    pub(crate) fn io(e: std::io::Error, path: Option<&std::path::Path>) -> Self {
        Self::Io { message: e.to_string(), path: path.map(Into::into), kind: e.kind(), errno: e.raw_os_error() }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::Config { message: message.into() }
    }
}

/// A URL as messages show it: without userinfo (which may hold a key) or query.
fn shown_url(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    crate::config::redact_userinfo(url.as_str())
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(s) => {
                write!(f, "Error code: {}", s.status)?;
                if let Some(code) = &s.code {
                    write!(f, " ({code})")?;
                }
                write!(f, " - {}", s.message)?;
                if let Some(id) = &s.request_id {
                    write!(f, " [request id {id}]")?;
                }
                Ok(())
            }
            Self::Connection { message }
            | Self::Timeout { message }
            | Self::Decode { message }
            | Self::Config { message }
            | Self::Io { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for ClientError {}
