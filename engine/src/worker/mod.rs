//! Processing batches in the background: one task per running batch, resumed from the
//! store when the engine starts.

mod dispatch;
pub use dispatch::End;
mod finalize;
mod health;
mod lines;
mod run;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::EngineConfig;
use crate::metrics::Metrics;
use crate::providers::Provider;
use crate::store::Store;
use health::StorageHealth;
pub use lines::{not_run_line, result_line_for};
pub use writer::ResultsWriter;

/// What every batch task shares.
pub struct Ctx {
    pub store: Arc<Store>,
    pub provider: Provider,
    pub cfg: EngineConfig,
    pub writer: ResultsWriter,
    pub health: Arc<StorageHealth>,
    pub metrics: Arc<Metrics>,
    /// Requests in flight per provider, across all batches.
    lanes: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Native mode's Anthropic creates of chunks of one request count (striped by it), one
    /// at a time across all batches (`native::submit`).
    pub anthropic_creates: crate::native::CreateLocks,
}

impl Ctx {
    fn lane(&self, provider: &str) -> Arc<Semaphore> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .entry(provider.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.concurrency_per_provider.max(1))))
            .clone()
    }
}

#[derive(Clone)]
pub struct Scheduler {
    ctx: Arc<Ctx>,
    /// The halt token of each running batch (fired by cancel or engine stop).
    running: Arc<Mutex<HashMap<String, CancellationToken>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Scheduler {
    pub fn new(store: Arc<Store>, provider: Provider, cfg: EngineConfig, metrics: Arc<Metrics>) -> Self {
        let shutdown = CancellationToken::new();
        let health = Arc::new(StorageHealth::new(metrics.clone()));
        let writer = ResultsWriter::spawn(store.clone(), health.clone(), metrics.clone(), shutdown.clone());
        let ctx = Ctx {
            store,
            provider,
            cfg,
            writer,
            health,
            metrics,
            lanes: Mutex::new(HashMap::new()),
            anthropic_creates: crate::native::create_locks(),
        };
        Self { ctx: Arc::new(ctx), running: Arc::default(), shutdown, tasks: TaskTracker::new() }
    }

    /// Why an unfinished batch is held up by storage trouble (a full disk), if it is: the
    /// API shows it as a `storage_unavailable` entry of the batch's `errors`.
    pub fn storage_notice(&self, id: &str) -> Option<String> {
        self.ctx.health.notice(id)
    }

    /// Upstream requests being sent now, per provider (for `/metrics`).
    pub fn in_flight(&self) -> Vec<(String, u64)> {
        let lanes = self.ctx.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let size = self.ctx.cfg.concurrency_per_provider.max(1);
        let mut busy: Vec<(String, u64)> =
            lanes.iter().map(|(p, lane)| (p.clone(), size.saturating_sub(lane.available_permits()) as u64)).collect();
        busy.sort();
        busy
    }

    /// Whether results cannot be recorded now (a full disk): every batch is paused.
    pub fn storage_paused(&self) -> bool {
        self.ctx.health.writer_failing()
    }

    /// Picks up every batch that was running when the engine last stopped.
    pub fn resume_all(&self) -> crate::store::Result<usize> {
        let ids = self.ctx.store.unfinished_batches()?;
        for id in &ids {
            self.start(id);
        }
        Ok(ids.len())
    }

    /// Starts processing a batch unless it is already being processed.
    pub fn start(&self, id: &str) {
        let halt = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if running.contains_key(id) || self.shutdown.is_cancelled() {
                return;
            }
            let halt = self.shutdown.child_token();
            running.insert(id.to_owned(), halt.clone());
            halt
        };
        let (ctx, running, id, shutdown) =
            (self.ctx.clone(), self.running.clone(), id.to_owned(), self.shutdown.clone());
        let scheduler = self.clone();
        self.tasks.spawn(async move {
            run::run_batch(&ctx, &id, &halt, &shutdown).await;
            running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            // A cancel that came as the task was ending found it still listed and fired
            // its token too late: run the batch to its cancellation.
            if let Ok(Some(row)) = ctx.store.batch(&id) {
                if row.status == crate::store::Status::Cancelling && !shutdown.is_cancelled() {
                    scheduler.start(&id);
                }
            }
        });
    }

    /// Interrupts a running batch whose status was just set to `cancelling`.
    pub fn cancel(&self, id: &str) {
        let token = self.running.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        match token {
            Some(t) => t.cancel(),
            // Not running in this process (e.g. still queued): run it to its cancellation.
            None => self.start(id),
        }
    }

    /// Stops every batch task where it is; state stays in the store for the next start.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let _ = self.ctx.writer.flush_all().await;
    }
}
