//! The client's settings: where the API is, the key, the per-attempt timeout and the retries.

use std::sync::Arc;
use std::time::Duration;

use fastrouter_batch_core::retry::RetryPolicy;
use fastrouter_batch_core::Secret;

use crate::error::ClientError;

/// FastRouter's hosted Batch API: the base URL when none is given.
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
            .field("base_url", &redact_userinfo(&self.base_url))
            .field("api_key", &self.api_key)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Settings for the API at `base_url` (the hosted one when None): a 10-minute timeout
    /// per attempt, two retries.
    pub fn new(base_url: Option<&str>, api_key: Secret) -> Self {
        Self {
            base_url: normalise_base_url(base_url.unwrap_or(HOSTED_BASE_URL)),
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

/// `url` with any userinfo (`http://user:KEY@host`) shown as `***`: a base URL may carry
/// credentials, which no repr, log line or message may show.
pub fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

impl ClientConfig {
    /// The base URL as it may be shown (userinfo redacted).
    pub fn shown_base_url(&self) -> String {
        redact_userinfo(&self.base_url)
    }
}

/// `https://host/v1/` and `https://host` name the same API root.
fn normalise_base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix("/v1").unwrap_or(url).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(normalise_base_url("https://api.fastrouter.ai/"), "https://api.fastrouter.ai");
        assert_eq!(normalise_base_url("http://127.0.0.1:8080/v1/"), "http://127.0.0.1:8080");
        assert_eq!(normalise_base_url(" http://h/v1 "), "http://h");
        assert_eq!(ClientConfig::new(None, Secret::new("k")).base_url, HOSTED_BASE_URL);
    }

    #[test]
    fn userinfo_is_never_shown() {
        assert_eq!(redact_userinfo("http://user:KEY@host:8/v1?a=b@c"), "http://***@host:8/v1?a=b@c");
        assert_eq!(redact_userinfo("https://KEY@host"), "https://***@host");
        assert_eq!(redact_userinfo("https://h:1/p@x"), "https://h:1/p@x");
        assert_eq!(redact_userinfo("https://host"), "https://host");
        let cfg = ClientConfig::new(Some("http://u:sk-secret@h"), Secret::new("k"));
        assert!(!format!("{cfg:?}").contains("sk-secret"));
        assert_eq!(cfg.shown_base_url(), "http://***@h");
    }
}
