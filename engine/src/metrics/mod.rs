//! What `GET /metrics` reports, in Prometheus' text format: counters and latency
//! histograms the engine updates as it works (HTTP answers, lines, upstream attempts,
//! retries, storage errors), and gauges read when scraped (batches by status, queue depth,
//! requests in flight). Engine-wide aggregates: no label holds an id, a key or a raw path,
//! so the series stay few whatever the traffic. Counters start at 0 with each engine.

mod histogram;
pub mod text;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use histogram::{Histogram, LATENCY_BUCKETS};
use text::Exposition;

use crate::providers::Attempt;

/// Every metric's name starts with this.
const PREFIX: &str = "fastrouter_engine";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The route label of a request no route matched (its raw path is never a label).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Where a storage error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StorageOp {
    /// Committing lines' results (the batches pause until it works again).
    RecordResults,
    /// A batch's own step: validating, starting, finalizing (retried until it works).
    BatchStep,
    /// An API request refused with 507 (an upload or create on a full disk).
    Request,
}

impl StorageOp {
    const ALL: [Self; 3] = [Self::RecordResults, Self::BatchStep, Self::Request];

    fn label(self) -> &'static str {
        match self {
            Self::RecordResults => "record_results",
            Self::BatchStep => "batch_step",
            Self::Request => "request",
        }
    }
}

/// How an upstream attempt ended: the HTTP status, or the error-file code of no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Answer {
    Status(u16),
    Transport(&'static str),
}

struct RouteStats {
    /// Answers by (method, status).
    answers: BTreeMap<(&'static str, u16), u64>,
    duration: Histogram,
}

struct ProviderStats {
    processed: u64,
    failed: u64,
    attempts: BTreeMap<Answer, u64>,
    latency: Histogram,
    retries: u64,
}

impl Default for ProviderStats {
    fn default() -> Self {
        Self {
            processed: 0,
            failed: 0,
            attempts: BTreeMap::new(),
            latency: Histogram::new(LATENCY_BUCKETS),
            retries: 0,
        }
    }
}

/// The readings taken when `/metrics` is scraped.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Batches per status (every status is reported, 0 when none).
    pub batches_by_status: Vec<(String, u64)>,
    /// Lines of running batches without a result yet, per provider.
    pub queue_depth: Vec<(String, u64)>,
    /// Upstream requests being sent now, per provider.
    pub in_flight: Vec<(String, u64)>,
    /// Results cannot be recorded (a full disk): batches are paused.
    pub storage_paused: bool,
}

pub const STATUSES: [&str; 8] =
    ["validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"];

#[derive(Default)]
pub struct Metrics {
    http: Mutex<HashMap<String, RouteStats>>,
    providers: Mutex<HashMap<String, ProviderStats>>,
    storage_errors: Mutex<BTreeMap<StorageOp, u64>>,
}

/// Readings by provider as samples.
fn per_provider(values: &[(String, u64)]) -> impl Iterator<Item = (&str, f64)> {
    values.iter().map(|(p, n)| (p.as_str(), *n as f64))
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A method as a label: the standard ones by name, any other (clients may invent
/// methods) as `other`, so they cannot multiply the series.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

impl Metrics {
    /// One HTTP answer: `route` is the matched route's template (`/v1/batches/{batch_id}`)
    /// or `UNMATCHED_ROUTE`.
    pub fn http_answer(&self, route: &str, method: &str, status: u16, took: Duration) {
        {
            let mut http = locked(&self.http);
            if !http.contains_key(route) {
                let stats = RouteStats { answers: BTreeMap::new(), duration: Histogram::new(LATENCY_BUCKETS) };
                http.insert(route.to_owned(), stats);
            }
            let stats = http.get_mut(route).expect("inserted above");
            *stats.answers.entry((method_label(method), status)).or_default() += 1;
            stats.duration.observe(took.as_secs_f64());
        }
        if status == 507 {
            self.storage_error(StorageOp::Request);
        }
    }

    fn provider<R>(&self, provider: &str, f: impl FnOnce(&mut ProviderStats) -> R) -> R {
        let mut providers = locked(&self.providers);
        if let Some(stats) = providers.get_mut(provider) {
            return f(stats);
        }
        f(providers.entry(provider.to_owned()).or_default())
    }

    /// A line's result was handed to the results writer: answered (`ok`), or failed.
    pub fn line_recorded(&self, provider: &str, ok: bool) {
        self.provider(provider, |p| {
            p.processed += 1;
            p.failed += u64::from(!ok);
        });
    }

    /// One upstream attempt and how long it took.
    pub fn upstream_attempt(&self, provider: &str, attempt: &Attempt, took: Duration) {
        let answer = match attempt {
            Attempt::Reply { status, .. } => Answer::Status(*status),
            Attempt::Transport { code, .. } => Answer::Transport(code),
        };
        self.provider(provider, |p| {
            *p.attempts.entry(answer).or_default() += 1;
            p.latency.observe(took.as_secs_f64());
        });
    }

    /// A failed attempt is to be tried again.
    pub fn upstream_retry(&self, provider: &str) {
        self.provider(provider, |p| p.retries += 1);
    }

    pub fn storage_error(&self, op: StorageOp) {
        *locked(&self.storage_errors).entry(op).or_default() += 1;
    }

    /// The exposition: the counters kept here and the readings of `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        let mut e = Exposition::new(PREFIX);
        e.by_label("build_info", "gauge", "The engine's version (always 1).", "version", [(VERSION, 1.0)]);
        self.render_http(&mut e);
        let count = |status: &str| now.batches_by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        let batches = STATUSES.map(|s| (s, count(s) as f64));
        e.by_label("batches", "gauge", "Batches in each status (every key's).", "status", batches);
        self.render_providers(&mut e);
        let help = "Lines of running batches without a result yet, by provider.";
        e.by_label("queue_depth", "gauge", help, "provider", per_provider(&now.queue_depth));
        let help = "Upstream requests being sent now, by provider.";
        e.by_label("upstream_in_flight", "gauge", help, "provider", per_provider(&now.in_flight));
        let errors = {
            let counted = locked(&self.storage_errors);
            StorageOp::ALL.map(|op| (op.label(), counted.get(&op).copied().unwrap_or(0) as f64))
        };
        let help = "Failed writes to the data directory (a full disk, say), by operation.";
        e.by_label("storage_errors_total", "counter", help, "operation", errors);
        e.family(
            "storage_paused",
            "gauge",
            "1 while results cannot be recorded (batches are paused until storage works).",
        );
        e.sample("storage_paused", &[], if now.storage_paused { 1.0 } else { 0.0 });
        e.finish()
    }

    fn render_http(&self, e: &mut Exposition) {
        let http = locked(&self.http);
        let mut routes: Vec<_> = http.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        e.family("http_requests_total", "counter", "HTTP requests answered, by route template, method and status.");
        for (route, stats) in &routes {
            for ((method, status), n) in &stats.answers {
                let status = status.to_string();
                let labels = [("route", route.as_str()), ("method", method), ("status", &status)];
                e.sample("http_requests_total", &labels, *n as f64);
            }
        }
        let help = "Time to answer an HTTP request (to the response head), by route template.";
        e.family("http_request_duration_seconds", "histogram", help);
        for (route, stats) in &routes {
            e.histogram("http_request_duration_seconds", &[("route", route)], &stats.duration);
        }
    }

    fn render_providers(&self, e: &mut Exposition) {
        let providers = locked(&self.providers);
        let mut providers: Vec<_> = providers.iter().collect();
        providers.sort_by(|a, b| a.0.cmp(b.0));
        let each = |f: fn(&ProviderStats) -> u64| providers.iter().map(move |(p, s)| (p.as_str(), f(s) as f64));
        let help = "Lines that got their result, by provider.";
        e.by_label("lines_processed_total", "counter", help, "provider", each(|p| p.processed));
        let help = "Lines whose result is a failure (an error answer, or none after the retries), by provider.";
        e.by_label("lines_failed_total", "counter", help, "provider", each(|p| p.failed));
        let help =
            "Upstream attempts by provider and outcome: the HTTP status, or the error code when there was no answer.";
        e.family("upstream_requests_total", "counter", help);
        for (provider, stats) in &providers {
            for (answer, n) in &stats.attempts {
                let status = match answer {
                    Answer::Status(s) => s.to_string(),
                    Answer::Transport(code) => (*code).to_owned(),
                };
                e.sample("upstream_requests_total", &[("provider", provider), ("status", &status)], *n as f64);
            }
        }
        e.family("upstream_request_duration_seconds", "histogram", "Time each upstream attempt took, by provider.");
        for (provider, stats) in &providers {
            e.histogram("upstream_request_duration_seconds", &[("provider", provider)], &stats.latency);
        }
        let help = "Upstream attempts tried again, by provider.";
        e.by_label("upstream_retries_total", "counter", help, "provider", each(|p| p.retries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        let m = Metrics::default();
        for method in ["GET", "BREW", "PROPFIND"] {
            m.http_answer("/v1/files", method, 405, Duration::from_millis(1));
        }
        let text = m.render(&Snapshot::default());
        assert!(text.contains(r#"route="/v1/files",method="other",status="405"} 2"#), "{text}");
        assert!(!text.contains("BREW"), "{text}");
    }

    #[test]
    fn a_507_counts_as_a_storage_error() {
        let m = Metrics::default();
        m.http_answer("/v1/files", "POST", 507, Duration::ZERO);
        let text = m.render(&Snapshot::default());
        assert!(text.contains("fastrouter_engine_storage_errors_total{operation=\"request\"} 1"), "{text}");
        assert!(text.contains("fastrouter_engine_storage_errors_total{operation=\"record_results\"} 0"), "{text}");
    }
}
