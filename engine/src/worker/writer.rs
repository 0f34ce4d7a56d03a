//! The one task that writes per-line results to SQLite, many to a transaction, so
//! thousands of lines a second cost a few commits, not thousands.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{ResultRow, Store};

enum Msg {
    Row(ResultRow),
    /// Answered once every row sent before it is committed.
    Flush(oneshot::Sender<Result<(), String>>),
}

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

    /// Waits until everything sent so far is durable.
    pub async fn flush(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Flush(tx)).map_err(|_| "the engine is stopping".to_string())?;
        rx.await.map_err(|_| "the engine is stopping".to_string())?
    }
}

fn take(m: Msg, rows: &mut Vec<ResultRow>, flushes: &mut Vec<oneshot::Sender<Result<(), String>>>) {
    match m {
        Msg::Row(r) => rows.push(r),
        Msg::Flush(f) => flushes.push(f),
    }
}

async fn run(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    // A failed commit is reported to the next flush even if later commits succeed.
    let mut lost: Option<String> = None;
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
            match tokio::task::spawn_blocking(move || store.insert_results(&rows)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("results writer failed: {e}")),
            }
        };
        if let Err(e) = result {
            eprintln!("fastrouter-batch engine: could not record results: {e}");
            lost = Some(e);
        }
        if !flushes.is_empty() {
            let answer = match lost.take() {
                Some(e) => Err(e),
                None => Ok(()),
            };
            for f in flushes {
                let _ = f.send(answer.clone());
            }
        }
    }
}
