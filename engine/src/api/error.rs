//! The contract's error body, `{"error": {"message", "type", "code", "param", "status"}}`,
//! with the matching HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<&'static str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// How much of a value the caller sent an error message may quote.
const QUOTE_CHARS: usize = 64;
/// How much of a parser's message (which may quote the input) an error message may hold.
const DETAIL_CHARS: usize = 160;
/// No message is longer, whatever it quotes (a last guard; `quote` keeps them far shorter).
const MAX_MESSAGE_CHARS: usize = 512;

/// What the caller sent, as an error message may quote it: whole when short, else its
/// first characters and its size, so a huge value is never echoed back.
pub fn quote(sent: &str) -> String {
    quote_up_to(sent, QUOTE_CHARS)
}

/// A parser's own message about the input, which may quote it: cut like `quote`, longer.
pub fn detail(message: &str) -> String {
    quote_up_to(message, DETAIL_CHARS)
}

fn quote_up_to(sent: &str, chars: usize) -> String {
    match sent.char_indices().nth(chars) {
        None => sent.to_owned(),
        Some((end, _)) => format!("{}... ({} bytes)", &sent[..end], sent.len()),
    }
}

fn cut(mut message: String) -> String {
    if let Some((end, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(end);
        message.push_str("...");
    }
    message
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, code, message: message.into(), param: None }
    }

    pub fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            "Missing or invalid API key: send 'Authorization: Bearer <key>' with a key this engine accepts.",
        )
    }

    /// The same answer for a missing id and another key's id, so ids cannot be probed.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("No {what} with id '{}'.", quote(id)),
        )
    }

    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_url",
            format!("Unknown request URL: {} {}.", quote(method), quote(path)),
        )
    }

    pub fn wrong_method(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            format!("{} is not allowed on {}.", quote(method), quote(path)),
        )
    }

    /// A request body that could not be read: too large, cut short, or stalled.
    pub fn unreadable_body(e: axum::extract::rejection::BytesRejection) -> Self {
        let status = e.status();
        if stalled(&e) {
            Self::body_timeout()
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(status, "invalid_request_error", "request_too_large", "The request body is too large.")
        } else {
            Self::new(
                status,
                "invalid_request_error",
                "invalid_body",
                format!("Could not read the request body: {}", detail(&e.body_text())),
            )
        }
    }

    /// The body stopped coming for longer than `body_read_timeout`.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            "The request body stopped arriving: nothing was received for too long.",
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
    }

    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "file_too_large",
            format!("The file is larger than this engine's limit of {limit} bytes."),
        )
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal_error", message.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let final_answer = !self.may_succeed_later();
        let body = json!({"error": {
            "message": cut(self.message),
            "type": self.kind,
            "code": self.code,
            "param": self.param,
            "status": self.status.as_u16(),
        }});
        let mut response = (self.status, Json(body)).into_response();
        if final_answer {
            // openai-python and our client read this before their status rules: a 409 for a
            // finished batch, say, is answered the same however often it is sent.
            response.headers_mut().insert("x-should-retry", axum::http::HeaderValue::from_static("false"));
        }
        response
    }
}

impl ApiError {
    /// Whether the same request could be answered otherwise if sent again: the server's
    /// failures, a timeout, a rate limit. Every other 4xx is about the request itself.
    fn may_succeed_later(&self) -> bool {
        let status = self.status.as_u16();
        !(400..500).contains(&status) || matches!(status, 408 | 429)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_full() {
            Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "server_error",
                "insufficient_storage",
                "The engine's disk is full: nothing was stored. Free some space and send the request again.",
            )
        } else {
            Self::internal(e)
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        crate::store::StoreError::Io(e).into()
    }
}

/// Whether `e` (or what caused it) is the body's idle timeout.
pub fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}
