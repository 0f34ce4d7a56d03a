//! The two providers' wire conventions the batch routes share: error envelopes, key
//! checks, 429s, RFC 3339 timestamps, ids, and JSONL result bodies.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::seq::SliceRandom;
use serde_json::{json, Value};

use super::knobs::{FakeKnobs, Provider};

/// OpenAI's error envelope: `{"error":{"message","type","param","code"}}`.
pub fn openai_error(status: u16, kind: &str, message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), Json(body)).into_response()
}

/// A 400 `invalid_request_error` naming the parameter at fault.
pub fn openai_invalid(message: &str, param: Option<&str>) -> Response {
    openai_error(400, "invalid_request_error", message, param, None)
}

/// Anthropic's error envelope: `{"type":"error","error":{"type","message"},"request_id"}`.
pub fn anthropic_error(status: u16, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": new_id("req_01")});
    (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), Json(body)).into_response()
}

/// Anthropic's error type for an HTTP status ([AN-err]).
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The key a call carries: `Authorization: Bearer <key>`, or for Anthropic `x-api-key`
/// (which the `anthropic` SDK 2.x no longer sends: it sends the key as a bearer token).
fn given_key(headers: &HeaderMap, provider: Provider) -> Option<&str> {
    let bearer = || header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match provider {
        Provider::OpenAi => bearer(),
        Provider::Anthropic => header(headers, "x-api-key").or_else(bearer),
    }
    .filter(|k| !k.is_empty())
}

/// A batch or file call's key check: any key unless the `api_key` knob names one.
pub fn check_key(headers: &HeaderMap, provider: Provider, knobs: &FakeKnobs) -> Result<(), Response> {
    let given = given_key(headers, provider);
    let ok = match (&knobs.api_key, given) {
        (_, None) => false,
        (Some(wanted), Some(k)) => wanted.expose() == k,
        (None, Some(_)) => true,
    };
    if ok {
        return Ok(());
    }
    Err(match (provider, given) {
        (Provider::OpenAi, None) => openai_error(
            401,
            "invalid_request_error",
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
            None,
        ),
        (Provider::OpenAi, Some(_)) => {
            openai_error(401, "invalid_request_error", "Incorrect API key provided.", None, Some("invalid_api_key"))
        }
        (Provider::Anthropic, None) => anthropic_error(401, "authentication_error", "x-api-key header is required"),
        (Provider::Anthropic, Some(_)) => anthropic_error(401, "authentication_error", "invalid x-api-key"),
    })
}

/// A realtime call's key check: only when the `api_key` knob names a key.
pub fn check_realtime_key(headers: &HeaderMap, provider: Provider, knobs: &FakeKnobs) -> Result<(), Response> {
    if knobs.api_key.is_none() {
        return Ok(());
    }
    check_key(headers, provider, knobs)
}

/// Anthropic's batch routes also need `anthropic-version`.
pub fn check_anthropic_headers(headers: &HeaderMap, knobs: &FakeKnobs) -> Result<(), Response> {
    check_key(headers, Provider::Anthropic, knobs)?;
    if header(headers, "anthropic-version").is_none() {
        return Err(anthropic_error(400, "invalid_request_error", "anthropic-version: header is required"));
    }
    Ok(())
}

/// A 429 the way each provider sends it, asking to wait `knobs.retry_after`.
pub fn rate_limited(provider: Provider, knobs: &FakeKnobs) -> Response {
    let wait = knobs.retry_after;
    let mut response = match provider {
        Provider::OpenAi => openai_error(
            429,
            "rate_limit_error",
            "Rate limit reached for batch requests. Please try again later.",
            None,
            Some("rate_limit_exceeded"),
        ),
        Provider::Anthropic => {
            anthropic_error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.")
        }
    };
    let headers = response.headers_mut();
    let secs = wait.as_millis().div_ceil(1000).to_string();
    headers.insert("retry-after", secs.parse().expect("digits are a header value"));
    headers.insert("retry-after-ms", wait.as_millis().to_string().parse().expect("digits are a header value"));
    response
}

/// A fresh id: the prefix and 32 random hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// Unix milliseconds as RFC 3339 in UTC with microseconds (`2024-09-24T18:37:24.100000Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        ms.rem_euclid(1000) * 1000
    )
}

/// Result lines as a JSONL body in an order other than the given one (when there are two
/// or more), each ending `\n`, or `\r\n` under the `crlf` knob.
pub fn shuffled_jsonl(mut lines: Vec<Value>, crlf: bool) -> Vec<u8> {
    let before: Vec<Value> = lines.clone();
    lines.shuffle(&mut rand::rng());
    if lines.len() > 1 && lines == before {
        lines.rotate_left(1);
    }
    let mut out = Vec::new();
    for line in &lines {
        out.extend_from_slice(line.to_string().as_bytes());
        out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_727_203_044_100), "2024-09-24T18:37:24.100000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn shuffled_jsonl_never_keeps_the_input_order() {
        for _ in 0..50 {
            let lines: Vec<Value> = (0..3).map(|i| json!({"i": i})).collect();
            let body = String::from_utf8(shuffled_jsonl(lines, true)).unwrap();
            assert!(body.ends_with("\r\n"));
            assert_ne!(body, "{\"i\":0}\r\n{\"i\":1}\r\n{\"i\":2}\r\n");
        }
    }
}
