//! What can go wrong talking to the Batch API, with what the server said.

use serde_json::Value;

#[derive(Debug, Clone)]
pub enum ClientError {
    /// The server answered with a non-2xx status.
    Status {
        status: u16,
        message: String,
        kind: Option<String>,
        code: Option<String>,
        param: Option<String>,
        request_id: Option<String>,
        body: Option<Value>,
        /// The wait the answer asked for (`retry-after-ms` / `retry-after`), if any.
        retry_after: Option<std::time::Duration>,
    },
    /// No answer: connection refused or reset, DNS, TLS.
    Connection { message: String },
    /// No answer in time.
    Timeout { message: String },
    /// A local file could not be read or written. `errno` is the OS error number, if any.
    Io { message: String, path: Option<std::path::PathBuf>, kind: std::io::ErrorKind, errno: Option<i32> },
    /// The server's answer could not be understood.
    Decode { message: String },
    /// A setting is unusable (bad base URL, missing key...).
    Config { message: String },
}

impl ClientError {
    /// Builds a status error from an error body `{"error": {...}}` (or anything else).
    pub fn from_body(status: u16, body: &[u8], request_id: Option<String>) -> Self {
        Self::from_answer(status, body, request_id, None)
    }

    /// `from_body` with the wait the answer's headers asked for.
    pub fn from_answer(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        retry_after: Option<std::time::Duration>,
    ) -> Self {
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
        Self::Status {
            status,
            message,
            kind: text("type"),
            code: text("code"),
            param: text("param"),
            request_id,
            body: parsed,
            retry_after,
        }
    }

    /// The wait the server asked for before a retry, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Retrying might help: no answer, or an answer that says "later".
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => fastrouter_batch_core::retry::is_retryable_status(*status),
            Self::Connection { .. } | Self::Timeout { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn from_reqwest(e: &reqwest::Error) -> Self {
        // The innermost cause says what happened; the URL (which may carry a query) and
        // headers (which carry the key) are never part of the message.
        let mut source: &dyn std::error::Error = e;
        while let Some(inner) = source.source() {
            source = inner;
        }
        if e.is_timeout() {
            Self::Timeout { message: format!("Request timed out: {source}") }
        } else if e.is_builder() {
            Self::Config { message: format!("Invalid request: {source}") }
        } else {
            Self::Connection { message: format!("Connection error: {source}") }
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status { status, message, code, request_id, .. } => {
                write!(f, "Error code: {status}")?;
                if let Some(code) = code {
                    write!(f, " ({code})")?;
                }
                write!(f, " - {message}")?;
                if let Some(id) = request_id {
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
