//! Storage trouble the background work is waiting out (a full disk, say), and how it shows:
//! the results writer and each batch's steps retry with backoff until writes succeed
//! again, and meanwhile the batches they hold up carry a `storage_unavailable` entry in
//! their `errors.data`, gone as soon as storage works again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, StorageOp};

/// The first wait before retrying a failed write, doubled after each failure up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between tries: how late, at most, the engine notices space came back.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Capped exponential backoff between tries of a failing write.
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(RETRY_FIRST)
    }
}

impl Backoff {
    /// Waits before the next try; false if `stop` fired first.
    pub async fn wait(&mut self, stop: &CancellationToken) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(RETRY_MAX);
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = stop.cancelled() => false,
        }
    }
}

pub struct StorageHealth {
    /// Why the results writer cannot commit; every unfinished batch waits on it.
    writer: watch::Sender<Option<String>>,
    /// Why a batch's own step (validating, finalizing...) failed, by batch id.
    batches: Mutex<HashMap<String, String>>,
    /// Counts every failed write (each try).
    metrics: Arc<Metrics>,
}

impl StorageHealth {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { writer: watch::Sender::new(None), batches: Mutex::default(), metrics }
    }

    /// Whether the results writer cannot commit now.
    pub fn writer_failing(&self) -> bool {
        self.writer.borrow().is_some()
    }

    pub fn writer_failed(&self, why: &str) {
        self.metrics.storage_error(StorageOp::RecordResults);
        self.writer.send_if_modified(|now| {
            if now.is_none() {
                eprintln!(
                    "fastrouter-batch engine: cannot record results ({why}); batches pause until storage works again"
                );
            }
            let changed = now.as_deref() != Some(why);
            *now = Some(why.to_owned());
            changed
        });
    }

    pub fn writer_recovered(&self) {
        self.writer.send_if_modified(|now| {
            let was = now.take().is_some();
            if was {
                eprintln!("fastrouter-batch engine: results are recorded again; batches continue");
            }
            was
        });
    }

    pub fn batch_failed(&self, id: &str, why: &str) {
        self.metrics.storage_error(StorageOp::BatchStep);
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        if batches.insert(id.to_owned(), why.to_owned()).is_none() {
            eprintln!("fastrouter-batch engine: batch {id}: {why}; trying again until it works");
        }
    }

    pub fn batch_recovered(&self, id: &str) {
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        if batches.remove(id).is_some() {
            eprintln!("fastrouter-batch engine: batch {id} continues");
        }
    }

    /// Waits until the results writer can commit (or `stop` fires): no new request is
    /// sent while its result could not be recorded.
    pub async fn writer_ready(&self, stop: &CancellationToken) {
        let mut ready = self.writer.subscribe();
        tokio::select! {
            _ = ready.wait_for(Option::is_none) => {}
            _ = stop.cancelled() => {}
        }
    }

    /// Why an unfinished batch is held up by storage, if it is.
    pub fn notice(&self, id: &str) -> Option<String> {
        let why = self.batches.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        let why = why.or_else(|| self.writer.borrow().clone())?;
        Some(format!(
            "The engine cannot write to its data directory ({why}). The batch is paused and continues by \
             itself once storage works again (free some disk space)."
        ))
    }
}
