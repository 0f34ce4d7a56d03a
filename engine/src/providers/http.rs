//! The shared HTTP client for upstream providers, and one JSON POST.

use std::time::Duration;

use serde_json::Value;

use fastrouter_batch_core::retry;

use super::{error_body, Attempt};

pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    fastrouter_batch_core::tls::install_crypto();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot build the upstream HTTP client: {e}"))
}

/// A reply read whole: status, parsed body (non-JSON bodies wrapped in an error body),
/// request id and any retry-after.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
}

pub async fn post_json(req: reqwest::RequestBuilder, body: &Value, timeout: Duration) -> Result<Reply, Attempt> {
    let sent = req.timeout(timeout).json(body).send().await;
    let resp = sent.map_err(|e| Attempt::Transport { code: UNREACHABLE, message: describe(&e) })?;
    let status = resp.status().as_u16();
    let headers = resp.headers();
    let retry_after = retry::retry_after(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let request_id = ["x-request-id", "request-id"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(str::to_owned));
    let bytes = resp.bytes().await.map_err(|e| Attempt::Transport { code: UNREACHABLE, message: describe(&e) })?;
    let text = || String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned();
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        // A 2xx that is not a JSON object (a proxy's HTML page, say) is no answer at all.
        _ if (200..300).contains(&status) => {
            return Err(invalid_reply(format!(
                "upstream answered {status} with a body that is not a JSON object: {}",
                text()
            )))
        }
        _ => error_body(
            &format!("upstream answered {status} with a non-JSON body: {}", text()),
            "upstream_error",
            Value::Null,
        ),
    };
    Ok(Reply { status, body, request_id, retry_after })
}

/// The error-file code of a line whose upstream could not be reached.
pub const UNREACHABLE: &str = "upstream_unreachable";
/// The error-file code of a line whose upstream answered with something unreadable.
pub const INVALID_REPLY: &str = "upstream_invalid_response";

pub fn invalid_reply(message: String) -> Attempt {
    Attempt::Transport { code: INVALID_REPLY, message }
}

/// An error without the URL's query or any header (no key can leak through it).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reply cut short"
    } else {
        "request failed"
    };
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    format!("upstream {kind}: {source}")
}
