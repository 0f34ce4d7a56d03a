//! The providers' batch endpoints as plain calls: OpenAI Files + Batches, Anthropic
//! Message Batches. No retries here: the callers decide, since a create must never be
//! retried blindly (neither API has an idempotency key).

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::config::{Upstream, UpstreamConfig};
use crate::providers::anthropic::API_VERSION;
use crate::providers::upstream_root;

/// How a call went wrong.
#[derive(Debug)]
pub enum CallError {
    /// 429: nothing was done; try again after the wait (if the provider named one).
    RateLimited(Option<Duration>),
    /// No reply, or a 5xx: the request may or may not have taken effect upstream.
    Unknown(String),
    /// A definite refusal (4xx other than 429): status, code and message.
    Refused { status: u16, code: String, message: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RateLimited(_) => f.write_str("rate limited (429)"),
            Self::Unknown(m) => f.write_str(m),
            Self::Refused { status, code, message } => write!(f, "{status} {code}: {message}"),
        }
    }
}

pub type Call<T> = Result<T, CallError>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Api {
    OpenAi,
    Anthropic,
}

impl Api {
    pub fn of(provider: &str) -> Self {
        if provider == "anthropic" {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }
}

/// The HTTP client and both upstreams.
pub struct Wire {
    pub client: reqwest::Client,
    pub cfg: UpstreamConfig,
}

impl Wire {
    fn upstream(&self, api: Api) -> &Upstream {
        match api {
            Api::OpenAi => &self.cfg.openai,
            Api::Anthropic => &self.cfg.anthropic,
        }
    }

    /// `path` under the provider's root (`/v1/...`), or an absolute URL as given.
    fn request(&self, api: Api, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let up = self.upstream(api);
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", upstream_root(&up.base_url))
        };
        let mut b = self.client.request(method, url).timeout(self.cfg.timeout);
        match api {
            Api::OpenAi => {
                if let Some(key) = &up.api_key {
                    b = b.bearer_auth(key.expose());
                }
            }
            Api::Anthropic => {
                b = b.header("anthropic-version", API_VERSION);
                if let Some(key) = &up.api_key {
                    b = b.header("x-api-key", key.expose());
                }
            }
        }
        b
    }

    /// Sends and reads a JSON reply, classifying failures.
    async fn json(&self, req: reqwest::RequestBuilder) -> Call<Value> {
        let resp = req.send().await.map_err(|e| CallError::Unknown(describe(&e)))?;
        let resp = check(resp).await?;
        let bytes = resp.bytes().await.map_err(|e| CallError::Unknown(describe(&e)))?;
        serde_json::from_slice(&bytes).map_err(|_| {
            CallError::Unknown(format!(
                "upstream answered with a body that is not JSON: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })
    }

    pub async fn get(&self, api: Api, path: &str) -> Call<Value> {
        self.json(self.request(api, reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, api: Api, path: &str, body: Option<&Value>) -> Call<Value> {
        let mut req = self.request(api, reqwest::Method::POST, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.json(req).await
    }

    pub async fn delete(&self, api: Api, path: &str) -> Call<Value> {
        self.json(self.request(api, reqwest::Method::DELETE, path)).await
    }

    /// `POST /v1/files` (`purpose=batch`) with the file at `path`, named `filename`.
    pub async fn upload(&self, path: &Path, filename: &str) -> Call<Value> {
        let content = tokio::fs::read(path).await.map_err(|e| CallError::Unknown(format!("cannot read {e}")))?;
        let boundary = format!("fr-native-{}", crate::ids::new_id(""));
        let mut body = Vec::with_capacity(content.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--{boundary}\r\n\
                 Content-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/jsonl\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&content);
        drop(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let req = self
            .request(Api::OpenAi, reqwest::Method::POST, "/v1/files")
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        self.json(req).await
    }

    /// `POST` of a JSON body kept in a file (Anthropic's create: up to 256 MB).
    pub async fn post_file(&self, api: Api, path: &str, file: &Path) -> Call<Value> {
        let body = tokio::fs::read(file).await.map_err(|e| CallError::Unknown(format!("cannot read {e}")))?;
        let req = self.request(api, reqwest::Method::POST, path).header("content-type", "application/json").body(body);
        self.json(req).await
    }

    /// Streams a body (a result file) to `dest`, written aside and moved into place.
    pub async fn download(&self, api: Api, path: &str, dest: &Path) -> Call<()> {
        let resp = self
            .request(api, reqwest::Method::GET, path)
            .header("accept", "application/binary")
            .send()
            .await
            .map_err(|e| CallError::Unknown(describe(&e)))?;
        let resp = check(resp).await?;
        let temp = dest.with_extension("part");
        let io = |e: std::io::Error| CallError::Unknown(format!("cannot write {}: {e}", temp.display()));
        let mut out = tokio::io::BufWriter::new(tokio::fs::File::create(&temp).await.map_err(io)?);
        let mut stream = resp.bytes_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| CallError::Unknown(describe(&e)))?;
            out.write_all(&piece).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        out.get_ref().sync_all().await.map_err(io)?;
        tokio::fs::rename(&temp, dest).await.map_err(io)?;
        Ok(())
    }
}

/// A non-2xx reply as a `CallError`.
async fn check(resp: reqwest::Response) -> Call<reqwest::Response> {
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let headers = resp.headers();
    let wait = fastrouter_batch_core::retry::retry_after(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    if status == 429 {
        return Err(CallError::RateLimited(wait));
    }
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map_or_else(|| format!("upstream answered {status}"), str::to_owned);
    if status >= 500 {
        return Err(CallError::Unknown(format!("upstream answered {status}: {message}")));
    }
    let code = ["/error/code", "/error/type"]
        .iter()
        .find_map(|p| body.pointer(p).and_then(Value::as_str))
        .unwrap_or("upstream_error")
        .to_owned();
    Err(CallError::Refused { status, code, message })
}

/// An error without the URL's query or any header (no key can leak through it).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    format!("upstream {kind}: {source}")
}

/// RFC 3339 (`2024-09-24T18:37:24.100435Z`, `...+00:00`) as Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let f = &frac[..digits];
        ms = format!("{f:0<3}")[..3].parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let oh = rest.get(1..3)?.parse::<i64>().ok()?;
            let om = rest.get(4..6)?.parse::<i64>().ok()?;
            sign * (oh * 60 + om)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_both_spellings() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("2024-09-24T18:37:24.100435Z"), Some(1_727_203_044_100));
        assert_eq!(parse_rfc3339_ms("2024-09-24T20:37:24.1+02:00"), Some(1_727_203_044_100));
        assert_eq!(parse_rfc3339_ms("nonsense"), None);
    }
}
