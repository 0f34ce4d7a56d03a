//! The one task that writes per-line results to SQLite, many to a transaction, so
//! thousands of lines a second cost a few commits, not thousands.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{ResultRow, Store};

enum Msg {
    Row(ResultRow),
    /// Answered once every row sent before it is committed: with the first failed commit
    /// of that batch's rows since its last flush (None: of any batch's rows).
    Flush(Option<String>, oneshot::Sender<Result<(), String>>),
}

type Flushes = Vec<(Option<String>, oneshot::Sender<Result<(), String>>)>;

#[derive(Clone)]
pub struct ResultsWriter {
    tx: mpsc::UnboundedSender<Msg>,
}

const MAX_ROWS_PER_COMMIT: usize = 4096;
/// How long a commit waits for more rows to join it.
const GATHER: Duration = Duration::from_millis(20);

impl ResultsWriter {
    pub fn spawn(store: Arc<Store>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    pub fn send(&self, row: ResultRow) {
        // Fails only when the engine is stopping; the line then runs again on restart.
        let _ = self.tx.send(Msg::Row(row));
    }

    /// Waits until everything sent so far is committed; fails if any of `batch_id`'s
    /// rows could not be (they were lost: the batch must not be finished as if they were).
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

async fn run(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    // A failed commit is reported to the next flush of each batch it held rows of, even
    // if later commits succeed (and never to another batch's flush).
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
        let result = if rows.is_empty() {
            Ok(())
        } else {
            let store = store.clone();
            let batches: HashSet<String> = rows.iter().map(|r| r.batch_id.clone()).collect();
            let outcome = match tokio::task::spawn_blocking(move || store.insert_results(&rows)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("results writer failed: {e}")),
            };
            if let Err(e) = &outcome {
                for id in batches {
                    lost.entry(id).or_insert_with(|| e.clone());
                }
            }
            outcome
        };
        if let Err(e) = result {
            eprintln!("fastrouter-batch engine: could not record results: {e}");
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
