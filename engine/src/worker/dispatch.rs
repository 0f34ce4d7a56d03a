//! Sending a batch's lines to the providers: streamed from the input file, skipping lines
//! that already have a result, with bounded concurrency per provider. Stops at the
//! deadline or when halted; lines in flight or still queued then are not run.
//!
//! Each provider has its own queue and its own runner, so a slow provider (rate limited,
//! down, retrying) holds back only its own lines: the file is read ahead past them, up to
//! `READ_AHEAD_BYTES` of queued lines in all, while the other providers' lines go out.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fastrouter_batch_core::json_scan::{Kind, Scanner};
use fastrouter_batch_core::jsonl::blocks::{
    for_each_line, is_blank, strip_bom, BlockReader, Chunk, DEFAULT_BLOCK_SIZE,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::lines::result_row;
use super::Ctx;
use crate::ids::now_ms;
use crate::providers::{LineRequest, Outcome};
use crate::store::BatchRow;

/// Bytes of lines read ahead of their provider's capacity, per batch. Bounds the memory a
/// stalled provider's backlog takes; past it, reading waits (and so do the other providers).
const READ_AHEAD_BYTES: usize = 64 << 20;

pub enum End {
    /// Every line has a result.
    Done,
    /// Halted (cancel or engine stop) with lines left.
    Halted,
    /// The deadline passed with lines left.
    Expired,
}

/// A line read and not yet sent: its 1-based number in the file and its bytes, holding
/// its share of the read-ahead from the moment it is read.
struct Queued {
    line_no: u64,
    bytes: Vec<u8>,
    _room: OwnedSemaphorePermit,
}

pub async fn dispatch(ctx: &Arc<Ctx>, row: &BatchRow, halt: &CancellationToken) -> Result<End, String> {
    let done: HashSet<u64> = ctx.store.done_lines(&row.id).map_err(|e| e.to_string())?.into_iter().collect();
    let path = ctx.store.content_path(&row.input_file_id);
    let max_line = ctx.cfg.limits.max_line_bytes as usize;
    let (tx, mut rx) = mpsc::channel::<Queued>(1024);
    let read_ahead = Arc::new(Semaphore::new(READ_AHEAD_BYTES));
    let reader = {
        let (read_ahead, runtime) = (read_ahead.clone(), tokio::runtime::Handle::current());
        tokio::task::spawn_blocking(move || read_pending(&path, max_line, &done, &read_ahead, &runtime, &tx))
    };

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

    let mut queues: HashMap<String, mpsc::UnboundedSender<Queued>> = HashMap::new();
    // One runner per provider; each returns how many of its lines it did not run.
    let mut runners: JoinSet<u64> = JoinSet::new();
    let mut exhausted = false;
    let mut not_run = 0;
    loop {
        // `biased`: once stopped, nothing more is taken, whatever else is ready.
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            l = rx.recv() => l,
        };
        let Some(line) = next else {
            exhausted = true;
            break;
        };
        let provider = provider_of(&line.bytes);
        let queue = queues.entry(provider.clone()).or_insert_with(|| {
            let (queue_tx, queue_rx) = mpsc::unbounded_channel();
            runners.spawn(run_provider(ctx.clone(), row.id.clone(), provider, queue_rx, stop.clone()));
            queue_tx
        });
        // A runner only stops taking lines on `stop`; such a line is not run.
        if queue.send(line).is_err() {
            not_run += 1;
        }
    }
    read_ahead.close(); // a reader waiting for room stops
    drop(rx);
    drop(queues); // the runners finish what is queued, unless stopped
    while let Some(r) = runners.join_next().await {
        // A runner that panicked (a bug) ran an unknown part of its lines.
        not_run += r.unwrap_or(1);
    }
    timer.abort();
    let read = reader.await.map_err(|e| e.to_string())?;
    ctx.writer.flush(&row.id).await?;
    if halt.is_cancelled() {
        return Ok(End::Halted);
    }
    read.map_err(|e| format!("cannot read the input file: {e}"))?;
    if exhausted && not_run == 0 {
        return Ok(End::Done);
    }
    Ok(End::Expired)
}

/// Sends one provider's queued lines, in file order, as its lane (shared by every batch)
/// allows. Returns how many lines it did not run (stopped first).
async fn run_provider(
    ctx: Arc<Ctx>,
    batch_id: String,
    provider: String,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    stop: CancellationToken,
) -> u64 {
    let lane = ctx.lane(&provider);
    let mut tasks = JoinSet::new();
    let dropped = Arc::new(AtomicU64::new(0));
    let mut not_run = 0;
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            q = queue.recv() => q,
        };
        let Some(Queued { line_no, bytes, _room }) = next else { break };
        while let Some(done) = tasks.try_join_next() {
            // A call that panicked (a bug) recorded nothing: the line did not run.
            not_run += u64::from(done.is_err());
        }
        let req = match LineRequest::parse(&bytes) {
            Ok(r) => r,
            Err(e) => {
                // Validation passed, so only a file changed on disk gets here.
                let outcome = Outcome::NoReply { code: "invalid_request", message: format!("line {line_no}: {e}") };
                record(&ctx, &batch_id, &provider, line_no, "", outcome);
                continue;
            }
        };
        drop(bytes);
        // While results cannot be recorded (a full disk), send nothing new: its answer
        // would have nowhere to go.
        ctx.health.writer_ready(&stop).await;
        let permit = tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            p = lane.clone().acquire_owned() => p.ok(),
        };
        let Some(permit) = permit else {
            not_run += 1;
            break;
        };
        let (ctx, id, stop, dropped) = (ctx.clone(), batch_id.clone(), stop.clone(), dropped.clone());
        tasks.spawn(async move {
            let _permit = permit;
            match ctx.provider.call(&req, &ctx.cfg.retry, &stop, &ctx.metrics).await {
                Some(outcome) => record(&ctx, &id, &req.provider, line_no, &req.custom_id, outcome),
                None => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    queue.close();
    while queue.try_recv().is_ok() {
        not_run += 1;
    }
    while let Some(done) = tasks.join_next().await {
        not_run += u64::from(done.is_err());
    }
    not_run + dropped.load(Ordering::Relaxed)
}

/// The line's `provider` (the lane it waits in), read without decoding the rest: "" when
/// it has none or is not JSON, which `LineRequest::parse` then reports.
fn provider_of(line: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(strip_bom(line)) else { return String::new() };
    let mut provider = String::new();
    let mut sc = Scanner::new(text);
    let _ = sc.object(|s, key| {
        if key.is("provider") && s.peek()? == Kind::String {
            provider = s.string()?.decode().into_owned();
        } else {
            s.skip()?;
        }
        Ok(())
    });
    provider
}

fn record(ctx: &Ctx, batch_id: &str, provider: &str, line: u64, custom_id: &str, outcome: Outcome) {
    ctx.writer.send(result_row(batch_id, provider, line, custom_id, outcome));
}

/// Streams the lines without a result to `tx`, each holding its share of `read_ahead`
/// (waited for here, so lines read and not yet sent never pass the bound). Stops early
/// when the receiver is gone or the read-ahead is closed.
fn read_pending(
    path: &std::path::Path,
    max_line: usize,
    done: &HashSet<u64>,
    read_ahead: &Arc<Semaphore>,
    runtime: &tokio::runtime::Handle,
    tx: &mpsc::Sender<Queued>,
) -> std::io::Result<()> {
    let mut reader = BlockReader::new(File::open(path)?, DEFAULT_BLOCK_SIZE, max_line);
    let mut line_no = 0u64;
    while let Some(chunk) = reader.next_chunk()? {
        match chunk {
            Chunk::Lines(block) => {
                let mut pending = Vec::new();
                let base = line_no;
                for_each_line(&block, |i, line| {
                    let n = base + i as u64 + 1;
                    // A byte-order mark before a blank first line leaves it blank (as the
                    // validator counts it).
                    let line = if n == 1 { strip_bom(line) } else { line };
                    if !is_blank(line) && !done.contains(&n) {
                        pending.push((n, line.to_vec()));
                    }
                });
                line_no += fastrouter_batch_core::jsonl::blocks::count_lines(&block);
                for (line_no, bytes) in pending {
                    let share = bytes.len().clamp(1, READ_AHEAD_BYTES) as u32;
                    let Ok(room) = runtime.block_on(read_ahead.clone().acquire_many_owned(share)) else {
                        return Ok(()); // closed: the dispatcher stopped
                    };
                    if tx.blocking_send(Queued { line_no, bytes, _room: room }).is_err() {
                        return Ok(());
                    }
                }
            }
            // Validation rejects over-long lines, so a file that passed has none (and this
            // reader has no byte limit: it never stops early).
            Chunk::LongLine { .. } | Chunk::Stopped { .. } => line_no += 1,
        }
    }
    Ok(())
}
