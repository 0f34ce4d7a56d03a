//! When to retry an HTTP attempt and how long to wait first: shared by the client (calls
//! to the Batch API) and the engine (calls to upstream providers).

use std::time::{Duration, SystemTime};

use rand::Rng;

/// How failed attempts are retried: capped exponential backoff with jitter, or the
/// server's `retry-after-ms` / `retry-after` when it gives one.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `retry-after` honoured; longer asks are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Statuses worth another attempt: timeouts, conflicts, rate limits and server errors
/// (Anthropic's 529 "overloaded" included).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// The wait a server asked for: `retry-after-ms`, else `retry-after` in seconds or as an
/// HTTP date. `header` looks a header up by its lowercase name.
/// Absurd asks (`retry-after: 1e20`) are clamped to a day rather than overflowing.
pub fn retry_after<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<Duration> {
    const DAY: f64 = 86_400.0;
    let text = |name: &str| header(name).map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms >= 0.0 {
            // NaN fails the test above; +inf clamps like any huge value.
            return Some(Duration::from_secs_f64((ms / 1000.0).min(DAY)));
        }
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(DAY)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// The wait before retry number `retry` (0-based): the server's ask, capped, or an
/// exponential backoff with jitter (between half and all of `base * 2^retry`, capped).
pub fn delay(policy: &RetryPolicy, retry: u32, asked: Option<Duration>) -> Duration {
    if let Some(asked) = asked {
        return asked.min(policy.max_retry_after);
    }
    let ceiling = policy.base_delay.saturating_mul(1u32 << retry.min(20)).min(policy.max_delay);
    let half = ceiling / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(h: &HashMap<&'static str, String>) -> Option<Duration> {
        retry_after(|name| h.get(name).map(String::as_str))
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 409, 429, 500, 502, 503, 529] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 413, 422] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HashMap::new();
        h.insert("retry-after", "2".to_string());
        assert_eq!(lookup(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".to_string());
        assert_eq!(lookup(&h), Some(Duration::from_millis(150)));
        let mut h = HashMap::new();
        h.insert("retry-after", httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30)));
        let d = lookup(&h).unwrap();
        assert!(d > Duration::from_secs(27) && d <= Duration::from_secs(30), "{d:?}");
        h.insert("retry-after", "soon".to_string());
        assert_eq!(lookup(&h), None);
        // Huge, infinite, negative and NaN asks: clamped or ignored, never a panic.
        let day = Duration::from_secs(86_400);
        for (name, value, want) in [
            ("retry-after", "1e20", Some(day)),
            ("retry-after", "inf", Some(day)),
            ("retry-after", "-1", None),
            ("retry-after", "NaN", None),
            ("retry-after-ms", "1e30", Some(day)),
        ] {
            let h = HashMap::from([(name, value.to_string())]);
            assert_eq!(lookup(&h), want, "{name}: {value}");
        }
    }

    #[test]
    fn delays_are_capped_and_jittered() {
        let p = RetryPolicy {
            max_retries: 9,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
        };
        for retry in 0..10 {
            let ceiling = (Duration::from_millis(100) * (1 << retry)).min(Duration::from_secs(1));
            let d = delay(&p, retry, None);
            assert!(d >= ceiling / 2 && d <= ceiling, "{retry}: {d:?}");
        }
        assert_eq!(delay(&p, 0, Some(Duration::from_secs(60))), Duration::from_secs(5));
        assert_eq!(delay(&p, 3, Some(Duration::from_millis(7))), Duration::from_millis(7));
    }
}
