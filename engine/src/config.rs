//! Everything the engine can be told: where it keeps state, who may call it, which
//! provider answers, limits, concurrency and retry policy.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

pub use fastrouter_batch_core::translate::{Sampling, SamplingTable};
pub use fastrouter_batch_core::{Limits, RetryPolicy, Secret};

/// Who answers the lines of a batch.
#[derive(Debug, Clone)]
pub enum ProviderMode {
    /// The built-in simulator: deterministic replies, no network.
    Simulated(SimulatedConfig),
    /// Real HTTP providers: each line goes to its `provider`'s upstream.
    Upstream(UpstreamConfig),
}

#[derive(Debug, Clone)]
pub struct SimulatedConfig {
    /// Time each simulated request takes.
    pub latency: Duration,
    /// Probability that one attempt fails with a transient error (429 or 500).
    pub fault_rate: f64,
    /// Length of simulated embedding vectors (unless the request asks for `dimensions`).
    pub embedding_dims: usize,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self { latency: Duration::ZERO, fault_rate: 0.0, embedding_dims: 64 }
    }
}

/// One upstream provider: its base URL (without `/v1`) and key.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub base_url: String,
    pub api_key: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub openai: Upstream,
    pub anthropic: Upstream,
    /// Per-attempt timeout of an upstream request.
    pub timeout: Duration,
    /// Each provider's own batch API (half price) or one realtime call per line.
    pub mode: UpstreamMode,
    /// Native mode's tuning: polling, chunk limits, hygiene.
    pub native: NativeConfig,
}

/// How `provider="upstream"` runs a batch's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamMode {
    /// Through OpenAI Batch and Anthropic Message Batches: billed at half price, done within 24 h.
    Native,
    /// One realtime call per line: full price, fast turnaround.
    Realtime,
}

impl UpstreamMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "native" => Some(Self::Native),
            "realtime" => Some(Self::Realtime),
            _ => None,
        }
    }
}

/// Native mode's knobs. The chunk limits are the providers' own; tests lower them to
/// force several chunks.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// The longest wait between polls of an upstream batch (polling starts quicker and backs off).
    pub poll_interval: Duration,
    pub openai_max_requests: usize,
    pub openai_max_bytes: u64,
    pub anthropic_max_requests: usize,
    pub anthropic_max_bytes: u64,
    /// Delete the uploaded OpenAI input file once its batch has ended.
    pub delete_input_files: bool,
}

impl Default for NativeConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(60),
            openai_max_requests: 50_000,
            openai_max_bytes: 200_000_000,
            anthropic_max_requests: 100_000,
            anthropic_max_bytes: 256_000_000,
            delete_input_files: true,
        }
    }
}

impl NativeConfig {
    /// Caps every chunk at `n` requests (tests: several chunks from a small file).
    pub fn with_chunk_size(mut self, n: usize) -> Self {
        self.openai_max_requests = n.clamp(1, self.openai_max_requests);
        self.anthropic_max_requests = n.clamp(1, self.anthropic_max_requests);
        self
    }
}

pub const OPENAI_BASE_URL: &str = "https://api.openai.com";
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

impl UpstreamConfig {
    /// Base URLs and keys from `OPENAI_BASE_URL`/`OPENAI_API_KEY` and
    /// `ANTHROPIC_BASE_URL`/`ANTHROPIC_API_KEY`, with the public endpoints as defaults.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            openai: Upstream {
                base_url: var("OPENAI_BASE_URL").unwrap_or_else(|| OPENAI_BASE_URL.into()),
                api_key: var("OPENAI_API_KEY").map(Secret::new),
            },
            anthropic: Upstream {
                base_url: var("ANTHROPIC_BASE_URL").unwrap_or_else(|| ANTHROPIC_BASE_URL.into()),
                api_key: var("ANTHROPIC_API_KEY").map(Secret::new),
            },
            timeout: Duration::from_secs(600),
            mode: UpstreamMode::Native,
            native: NativeConfig::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Where files and state live; `None` makes a temporary directory removed on stop.
    pub data_dir: Option<PathBuf>,
    /// Keys accepted as `Authorization: Bearer <key>`; empty makes one.
    pub api_keys: Vec<Secret>,
    pub provider: ProviderMode,
    /// Input files are checked against these (upload size, requests per batch...).
    pub limits: Limits,
    /// How long a batch may run before it expires (`24h` on the wire; shorter in tests).
    pub completion_window: Duration,
    /// Requests in flight at once, per provider.
    pub concurrency_per_provider: usize,
    pub retry: RetryPolicy,
    /// HTTP connections served at once; more wait (in the listen backlog) until one ends.
    pub max_connections: usize,
    /// A connection whose request head is not complete this long after it was opened (or
    /// after its last answer) is closed: clients that trickle headers hold no slot for long.
    pub header_read_timeout: Duration,
    /// A request body that sends nothing for this long is cut off (408 `request_timeout`;
    /// the connection then closes, its body unread): a client that stops mid-upload holds no
    /// slot for long. An idle timeout: a slow upload that keeps sending is never cut.
    pub body_read_timeout: Duration,
    /// Which Anthropic models take `temperature` / `top_p` / `top_k`: validation refuses, and
    /// the translation never sends, what a model would answer 400 to.
    pub anthropic_sampling: SamplingTable,
    /// Serve `/metrics` without a key (to a Prometheus that has none). Off by default:
    /// scraping then needs `Authorization: Bearer <key>` with an accepted key.
    pub metrics_public: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            data_dir: None,
            api_keys: Vec::new(),
            provider: ProviderMode::Simulated(SimulatedConfig::default()),
            limits: Limits::default(),
            completion_window: Duration::from_secs(24 * 3600),
            concurrency_per_provider: 64,
            retry: RetryPolicy::default(),
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            anthropic_sampling: SamplingTable::default(),
            metrics_public: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_value() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let cfg = EngineConfig { api_keys: vec![s], ..Default::default() };
        assert!(!format!("{cfg:?}").contains("sk-very-secret"));
    }
}
