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
        let mut e = Exposition::default();
        let name = |n: &str| format!("{PREFIX}_{n}");

        e.family(&name("build_info"), "gauge", "The engine's version (always 1).");
        e.sample(&name("build_info"), &[("version", env!("CARGO_PKG_VERSION"))], 1.0);

        {
            let http = locked(&self.http);
            let mut routes: Vec<_> = http.iter().collect();
            routes.sort_by(|a, b| a.0.cmp(b.0));
            let requests = name("http_requests_total");
            e.family(&requests, "counter", "HTTP requests answered, by route template, method and status.");
            for (route, stats) in &routes {
                for ((method, status), n) in &stats.answers {
                    let status = status.to_string();
                    e.sample(&requests, &[("route", route), ("method", method), ("status", &status)], *n as f64);
                }
            }
            let duration = name("http_request_duration_seconds");
            e.family(
                &duration,
                "histogram",
                "Time to answer an HTTP request (to the response head), by route template.",
            );
            for (route, stats) in &routes {
                e.histogram(&duration, &[("route", route)], &stats.duration);
            }
        }

        let batches = name("batches");
        e.family(&batches, "gauge", "Batches in each status (every key's).");
        for status in STATUSES {
            let n = now.batches_by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            e.sample(&batches, &[("status", status)], n as f64);
        }

        {
            let providers = locked(&self.providers);
            let mut providers: Vec<_> = providers.iter().collect();
            providers.sort_by(|a, b| a.0.cmp(b.0));
            let per_provider =
                |e: &mut Exposition, metric: &str, kind: &str, help: &str, f: &dyn Fn(&ProviderStats) -> u64| {
                    let metric = name(metric);
                    e.family(&metric, kind, help);
                    for (provider, stats) in &providers {
                        e.sample(&metric, &[("provider", provider)], f(stats) as f64);
                    }
                };
            per_provider(
                &mut e,
                "lines_processed_total",
                "counter",
                "Lines that got their result, by provider.",
                &|p| p.processed,
            );
            per_provider(
                &mut e,
                "lines_failed_total",
                "counter",
                "Lines whose result is a failure (an error answer, or none after the retries), by provider.",
                &|p| p.failed,
            );
            let attempts = name("upstream_requests_total");
            e.family(
                &attempts,
                "counter",
                "Upstream attempts by provider and outcome: the HTTP status, or the error code when there was no answer.",
            );
            for (provider, stats) in &providers {
                for (answer, n) in &stats.attempts {
                    let status = match answer {
                        Answer::Status(s) => s.to_string(),
                        Answer::Transport(code) => (*code).to_owned(),
                    };
                    e.sample(&attempts, &[("provider", provider), ("status", &status)], *n as f64);
                }
            }
            let latency = name("upstream_request_duration_seconds");
            e.family(&latency, "histogram", "Time each upstream attempt took, by provider.");
            for (provider, stats) in &providers {
                e.histogram(&latency, &[("provider", provider)], &stats.latency);
            }
            per_provider(
                &mut e,
                "upstream_retries_total",
                "counter",
                "Upstream attempts tried again, by provider.",
                &|p| p.retries,
            );
        }

        let gauge = |e: &mut Exposition, metric: &str, help: &str, values: &[(String, u64)]| {
            let metric = name(metric);
            e.family(&metric, "gauge", help);
            for (provider, n) in values {
                e.sample(&metric, &[("provider", provider)], *n as f64);
            }
        };
        gauge(&mut e, "queue_depth", "Lines of running batches without a result yet, by provider.", &now.queue_depth);
        gauge(&mut e, "upstream_in_flight", "Upstream requests being sent now, by provider.", &now.in_flight);

        let errors = name("storage_errors_total");
        e.family(&errors, "counter", "Failed writes to the data directory (a full disk, say), by operation.");
        {
            let counted = locked(&self.storage_errors);
            for op in StorageOp::ALL {
                e.sample(&errors, &[("operation", op.label())], counted.get(&op).copied().unwrap_or(0) as f64);
            }
        }
        let paused = name("storage_paused");
        e.family(&paused, "gauge", "1 while results cannot be recorded (batches are paused until storage works).");
        e.sample(&paused, &[], if now.storage_paused { 1.0 } else { 0.0 });
        e.finish()
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
