//! The one task that writes per-line results to SQLite, many to a transaction, so
//! thousands of lines a second cost a few commits, not thousands. A commit that fails (a
//! full disk) is tried again with backoff until it succeeds, its rows kept meanwhile;
//! only an engine stop gives them up (those lines then run again on the next start).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::health::{Backoff, StorageHealth};
use crate::metrics::Metrics;
use crate::store::{ResultRow, Store};

enum Msg {
    Row(ResultRow),
    /// Answered once every row sent before it is committed: with the error of rows of that
    /// batch given up since its last flush (None: of any batch's rows).
    Flush(Option<String>, oneshot::Sender<Result<(), String>>),
}

type Flushes = Vec<(Option<String>, oneshot::Sender<Result<(), String>>)>;

#[derive(Clone)]
pub struct ResultsWriter {
    tx: mpsc::UnboundedSender<Msg>,
    metrics: Arc<Metrics>,
}

const MAX_ROWS_PER_COMMIT: usize = 4096;
/// How long a commit waits for more rows to join it.
const GATHER: Duration = Duration::from_millis(20);

impl ResultsWriter {
    /// Commits until the channel closes; after `stop`, a failed commit is not retried.
    pub fn spawn(
        store: Arc<Store>,
        health: Arc<StorageHealth>,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx, health, stop));
        Self { tx, metrics }
    }

    pub fn send(&self, row: ResultRow) {
        self.metrics.line_recorded(&row.provider, row.ok);
        // Fails only when the engine is stopping; the line then runs again on restart.
        let _ = self.tx.send(Msg::Row(row));
    }

    /// Waits until everything sent so far is committed; fails if any of `batch_id`'s
    /// rows were given up (the batch must not be finished as if they were recorded).
    pub async fn flush(&self, batch_id: &str) -> Result<(), String> {
        self.flush_for(Some(batch_id.to_owned())).await
    }

    /// `flush` for every batch (at engine stop).
    pub async fn flush_all(&self) -> Result<(), String> {
        self.flush_for(None).await
    }

    async fn flush_for(&self, batch_id: Option<String>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Flush(batch_id, tx)).map_err(|_| "the engine is stopping".to_string())?;
        rx.await.map_err(|_| "the engine is stopping".to_string())?
    }
}

fn take(m: Msg, rows: &mut Vec<ResultRow>, flushes: &mut Flushes) {
    match m {
        Msg::Row(r) => rows.push(r),
        Msg::Flush(batch, f) => flushes.push((batch, f)),
    }
}

async fn run(
    store: Arc<Store>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    health: Arc<StorageHealth>,
    stop: CancellationToken,
) {
    // Rows given up (at engine stop) are reported to the next flush of each batch they
    // belonged to (and never to another batch's flush).
    let mut lost: HashMap<String, String> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut rows = Vec::new();
        let mut flushes = Vec::new();
        take(first, &mut rows, &mut flushes);
        let gather_until = tokio::time::Instant::now() + GATHER;
        while rows.len() < MAX_ROWS_PER_COMMIT && flushes.is_empty() {
            match tokio::time::timeout_at(gather_until, rx.recv()).await {
                Ok(Some(m)) => take(m, &mut rows, &mut flushes),
                _ => break,
            }
        }
        while rows.len() < MAX_ROWS_PER_COMMIT {
            match rx.try_recv() {
                Ok(m) => take(m, &mut rows, &mut flushes),
                Err(_) => break,
            }
        }
        if !rows.is_empty() {
            let batches: HashSet<String> = rows.iter().map(|r| r.batch_id.clone()).collect();
            let count = rows.len();
            if let Err(e) = commit(&store, rows, &health, &stop).await {
                eprintln!("fastrouter-batch engine: results of {count} lines not recorded: {e}");
                for id in batches {
                    lost.entry(id).or_insert_with(|| e.clone());
                }
            }
        }
        for (batch, f) in flushes {
            let answer = match batch {
                Some(id) => lost.remove(&id),
                None => lost.drain().next().map(|(_, e)| e),
            };
            let _ = f.send(answer.map_or(Ok(()), Err));
        }
    }
}

/// Commits `rows`, trying again with backoff while it fails, until it succeeds or the
/// engine stops (then the rows are given up).
async fn commit(
    store: &Arc<Store>,
    mut rows: Vec<ResultRow>,
    health: &StorageHealth,
    stop: &CancellationToken,
) -> Result<(), String> {
    let mut backoff = Backoff::default();
    loop {
        let s = store.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            let outcome = s.insert_results(&rows).map_err(|e| e.to_string());
            (rows, outcome)
        });
        let outcome;
        (rows, outcome) = attempt.await.map_err(|e| format!("results writer failed: {e}"))?;
        let Err(e) = outcome else {
            health.writer_recovered();
            return Ok(());
        };
        health.writer_failed(&e);
        if stop.is_cancelled() || !backoff.wait(stop).await {
            health.writer_recovered();
            return Err(e);
        }
    }
}
