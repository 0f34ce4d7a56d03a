//! Sending a batch's lines to the provider: streamed from the input file, skipping lines
//! that already have a result, with bounded concurrency per provider. Stops at the
//! deadline or when halted; lines in flight then are dropped (they count as not run).

use std::collections::HashSet;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fastrouter_batch_core::jsonl::blocks::{for_each_line, is_blank, BlockReader, Chunk, DEFAULT_BLOCK_SIZE};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::lines::result_line;
use super::Ctx;
use crate::ids::now_ms;
use crate::providers::{LineRequest, Outcome};
use crate::store::{BatchRow, ResultRow};

pub enum End {
    /// Every line has a result.
    Done,
    /// Halted (cancel or engine stop) with lines left.
    Halted,
    /// The deadline passed with lines left.
    Expired,
}

/// A line to run: its 1-based number in the file and its bytes.
type Line = (u64, Vec<u8>);

pub async fn dispatch(ctx: &Arc<Ctx>, row: &BatchRow, halt: &CancellationToken) -> Result<End, String> {
    let done: HashSet<u64> = ctx.store.done_lines(&row.id).map_err(|e| e.to_string())?.into_iter().collect();
    let path = ctx.store.content_path(&row.input_file_id);
    let max_line = ctx.cfg.limits.max_line_bytes as usize;
    let (tx, mut rx) = mpsc::channel::<Line>(1024);
    let reader = tokio::task::spawn_blocking(move || read_pending(&path, max_line, &done, &tx));

    // Fires at the deadline as well as on halt.
    let stop = halt.child_token();
    let wait = Duration::from_millis((row.deadline_ms - now_ms()).max(0) as u64);
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            stop.cancel();
        })
    };

    let mut tasks = JoinSet::new();
    let dropped = Arc::new(AtomicU64::new(0));
    let mut exhausted = false;
    loop {
        let next = tokio::select! {
            l = rx.recv() => l,
            _ = stop.cancelled() => break,
        };
        let Some((line_no, bytes)) = next else {
            exhausted = true;
            break;
        };
        while tasks.try_join_next().is_some() {}
        let req = match LineRequest::parse(&bytes) {
            Ok(r) => r,
            Err(e) => {
                // Validation passed, so only a file changed on disk gets here.
                let outcome = Outcome::NoReply { code: "invalid_request", message: format!("line {line_no}: {e}") };
                record(ctx, &row.id, line_no, "", outcome);
                continue;
            }
        };
        let permit = tokio::select! {
            p = ctx.lane(&req.provider).acquire_owned() => p.map_err(|e| e.to_string())?,
            _ = stop.cancelled() => break,
        };
        let (ctx, id, stop, dropped) = (ctx.clone(), row.id.clone(), stop.clone(), dropped.clone());
        tasks.spawn(async move {
            let _permit = permit;
            match ctx.provider.call(&req, &ctx.cfg.retry, &stop).await {
                Some(outcome) => record(&ctx, &id, line_no, &req.custom_id, outcome),
                None => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    drop(rx);
    while tasks.join_next().await.is_some() {}
    timer.abort();
    let read = reader.await.map_err(|e| e.to_string())?;
    ctx.writer.flush().await?;
    if halt.is_cancelled() {
        return Ok(End::Halted);
    }
    read.map_err(|e| format!("cannot read the input file: {e}"))?;
    if exhausted && dropped.load(Ordering::Relaxed) == 0 {
        return Ok(End::Done);
    }
    Ok(End::Expired)
}

fn record(ctx: &Ctx, batch_id: &str, line: u64, custom_id: &str, outcome: Outcome) {
    let (ok, data) = result_line(custom_id, outcome);
    ctx.writer.send(ResultRow { batch_id: batch_id.to_owned(), line, ok, data });
}

/// Streams the lines without a result to `tx`. Stops early when the receiver is gone.
fn read_pending(path: &std::path::Path, max_line: usize, done: &HashSet<u64>, tx: &mpsc::Sender<Line>) -> std::io::Result<()> {
    let mut reader = BlockReader::new(File::open(path)?, DEFAULT_BLOCK_SIZE, max_line);
    let mut line_no = 0u64;
    while let Some(chunk) = reader.next_chunk()? {
        match chunk {
            Chunk::Lines(block) => {
                let mut pending = Vec::new();
                let base = line_no;
                for_each_line(&block, |i, line| {
                    let n = base + i as u64 + 1;
                    if !is_blank(line) && !done.contains(&n) {
                        pending.push((n, line.to_vec()));
                    }
                });
                line_no += fastrouter_batch_core::jsonl::blocks::count_lines(&block);
                for l in pending {
                    if tx.blocking_send(l).is_err() {
                        return Ok(());
                    }
                }
            }
            // Validation rejects over-long lines, so a file that passed has none.
            Chunk::LongLine { .. } => line_no += 1,
        }
    }
    Ok(())
}
