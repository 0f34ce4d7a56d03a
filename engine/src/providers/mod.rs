//! Who answers a line: the simulator or a real upstream (OpenAI-compatible, Anthropic),
//! and the retry loop around one line's attempts.

pub mod anthropic;
mod http;
pub mod openai;
pub mod simulated;

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use fastrouter_batch_core::retry;
use fastrouter_batch_core::translate::SamplingTable;

use crate::config::{ProviderMode, RetryPolicy, UpstreamConfig};
use crate::metrics::Metrics;
pub use fastrouter_batch_core::tls::install_crypto;

/// One input line, parsed for dispatch.
#[derive(Debug, Clone, Deserialize)]
pub struct LineRequest {
    pub custom_id: String,
    #[serde(default)]
    pub provider: String,
    pub url: String,
    pub body: Map<String, Value>,
}

impl LineRequest {
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        let line = fastrouter_batch_core::jsonl::blocks::strip_bom(line);
        serde_json::from_slice(line).map_err(|e| e.to_string())
    }
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// The provider answered (any status). Bodies are OpenAI-shaped.
    Reply { status: u16, body: Value, request_id: Option<String>, retry_after: Option<Duration> },
    /// No usable answer: connection refused or reset, timeout, or a reply that cannot be
    /// read (a 2xx that is not the provider's JSON). `code` names which for the error file.
    Transport { code: &'static str, message: String },
}

/// How a line ended after its retries.
#[derive(Debug, Clone)]
pub enum Outcome {
    Reply {
        status: u16,
        body: Value,
        request_id: Option<String>,
    },
    /// Never got an answer; `code` goes to the error file's `error.code`.
    NoReply {
        code: &'static str,
        message: String,
    },
}

pub enum Provider {
    Simulated(simulated::Simulator),
    Upstream(Upstreams),
}

pub struct Upstreams {
    client: reqwest::Client,
    cfg: UpstreamConfig,
    sampling: SamplingTable,
}

impl Provider {
    /// `sampling` says which Anthropic models take which sampling parameters.
    pub fn new(mode: &ProviderMode, sampling: &SamplingTable) -> Result<Self, String> {
        let sampling = sampling.clone();
        Ok(match mode {
            ProviderMode::Simulated(cfg) => Self::Simulated(simulated::Simulator { cfg: cfg.clone(), sampling }),
            ProviderMode::Upstream(cfg) => {
                Self::Upstream(Upstreams { client: http::client(cfg.timeout)?, cfg: cfg.clone(), sampling })
            }
        })
    }

    /// The upstream HTTP client (shared with native mode), if this is a real upstream.
    pub fn http_client(&self) -> Option<reqwest::Client> {
        match self {
            Self::Upstream(up) => Some(up.client.clone()),
            Self::Simulated(_) => None,
        }
    }

    async fn attempt(&self, req: &LineRequest) -> Attempt {
        match self {
            Self::Simulated(sim) => sim.attempt(req).await,
            Self::Upstream(up) if req.provider == "anthropic" => {
                anthropic::attempt(&up.client, &up.cfg.anthropic, up.cfg.timeout, req, &up.sampling).await
            }
            // Every other provider is reached through an OpenAI-compatible API.
            Self::Upstream(up) => openai::attempt(&up.client, &up.cfg.openai, up.cfg.timeout, req).await,
        }
    }

    /// Runs a line to its outcome, retrying transient failures under `policy`. `None` if
    /// `stop` fired first (the line then counts as not run). Each attempt is timed in `metrics`.
    pub async fn call(
        &self,
        req: &LineRequest,
        policy: &RetryPolicy,
        stop: &CancellationToken,
        metrics: &Metrics,
    ) -> Option<Outcome> {
        let mut retry = 0;
        loop {
            let started = std::time::Instant::now();
            let attempt = tokio::select! {
                a = self.attempt(req) => a,
                _ = stop.cancelled() => return None,
            };
            metrics.upstream_attempt(&req.provider, &attempt, started.elapsed());
            let asked = match attempt {
                Attempt::Reply { status, body, request_id, retry_after } => {
                    if !retry::is_retryable_status(status) || retry >= policy.max_retries {
                        return Some(Outcome::Reply { status, body, request_id });
                    }
                    retry_after
                }
                Attempt::Transport { code, message } => {
                    if retry >= policy.max_retries {
                        return Some(Outcome::NoReply { code, message });
                    }
                    None
                }
            };
            metrics.upstream_retry(&req.provider);
            let wait = retry::delay(policy, retry, asked);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return None,
            }
            retry += 1;
        }
    }
}

/// An OpenAI-shaped error body (`param` is required by OpenAI's schema, null here).
pub fn error_body(message: &str, kind: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// `https://api.openai.com/v1` and `https://api.openai.com` name the same upstream: the
/// line's url (`/v1/...`) is appended to the root.
pub fn upstream_root(base_url: &str) -> &str {
    let base = base_url.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

/// A model name without its `provider/` prefix (`openai/gpt-4.1` → `gpt-4.1`).
pub fn upstream_model<'a>(model: &'a str, provider: &str) -> &'a str {
    model.strip_prefix(provider).and_then(|m| m.strip_prefix('/')).unwrap_or(model)
}
