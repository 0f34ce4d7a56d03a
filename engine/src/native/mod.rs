//! Native mode: a batch's lines run through each provider's own batch API (OpenAI Batch,
//! Anthropic Message Batches), billed at half price, and are merged back exactly once.
//!
//! Everything is driven from the store, so a restart at any point carries on: the plan
//! (`plan`) is stored before any provider call, each create is journaled (`submit`),
//! submitted chunks are polled from their stored upstream ids and never resubmitted
//! (`poll`), and each chunk's results are merged in one transaction (`merge`).

pub mod fault;
pub mod merge;
pub mod plan;
pub mod poll;
pub mod submit;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{NativeConfig, ProviderMode, UpstreamMode};
use crate::ids::now_ms;
use crate::store::{BatchRow, ChunkRow, ChunkState, Store};
use crate::worker::{Ctx, End};
use fault::pause_at;
use wire::Wire;

/// Engine-wide locks of Anthropic creates, striped by request count (see `submit`).
pub type CreateLocks = Arc<[Arc<tokio::sync::Mutex<()>>]>;

/// A stripe per request count modulo 64: chunks of unrelated sizes seldom share one.
pub fn create_locks() -> CreateLocks {
    (0..64).map(|_| Arc::default()).collect()
}

/// What one batch's native run works with.
pub struct Native {
    pub store: Arc<Store>,
    pub wire: Wire,
    pub cfg: NativeConfig,
    /// Held through an Anthropic create and its record, engine-wide, one lock per request
    /// count (striped; see `submit`).
    pub anthropic_creates: CreateLocks,
}

impl Native {
    /// Native mode's tools, if the engine runs in it.
    pub fn of(ctx: &Ctx) -> Option<Self> {
        let ProviderMode::Upstream(up) = &ctx.cfg.provider else { return None };
        if up.mode != UpstreamMode::Native {
            return None;
        }
        let client = ctx.provider.http_client()?;
        Some(Self {
            store: ctx.store.clone(),
            wire: Wire { client, cfg: up.clone() },
            cfg: up.native.clone(),
            anthropic_creates: ctx.anthropic_creates.clone(),
        })
    }

    /// The first (shortest) wait between polls; it doubles up to `poll_interval`.
    pub fn first_wait(&self) -> Duration {
        let max = self.cfg.poll_interval;
        (max / 16).clamp(Duration::from_millis(10), Duration::from_secs(5)).min(max)
    }
}

/// Stores the plan unless it is stored already.
async fn ensure_plan(ctx: &Ctx, n: &Native, row: &BatchRow) -> Result<(), String> {
    if n.store.native_planned(&row.id).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let started = now_ms();
    let (store, id, input) = (n.store.clone(), row.id.clone(), ctx.store.content_path(&row.input_file_id));
    let (cfg, sampling, max_line) =
        (n.cfg.clone(), ctx.cfg.anthropic_sampling.clone(), ctx.cfg.limits.max_line_bytes as usize);
    tokio::task::spawn_blocking(move || {
        let plan = plan::make_plan(&store, &id, &input, &cfg, &sampling, max_line)
            .map_err(|e| format!("cannot plan the upstream batches: {e}"))?;
        // Lines settled without a provider (refused by the translation) are recorded first;
        // recording them again after a crash changes nothing (the first result wins).
        if !plan.settled.is_empty() {
            store.insert_results(&plan.settled).map_err(|e| e.to_string())?;
        }
        store.save_plan(&id, &plan.chunks, &plan.lines).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    fault::timing("plan", &row.id, started);
    pause_at("after_plan");
    Ok(())
}

fn pending(c: &ChunkRow) -> bool {
    matches!(c.state, ChunkState::Planned | ChunkState::Uploaded | ChunkState::Creating)
}

/// Merges every ended chunk (each in its own blocking transaction).
async fn merge_ended(n: &Native, chunks: &mut [ChunkRow], expiring: bool) -> Result<bool, String> {
    let mut any = false;
    for c in chunks.iter_mut().filter(|c| c.state == ChunkState::Ended) {
        let (store, chunk) = (n.store.clone(), c.clone());
        let started = now_ms();
        tokio::task::spawn_blocking(move || {
            let dir = store.native_dir(&chunk.batch_id);
            merge::merge(&store, &chunk, &dir, expiring)?;
            // Its files are in the results now.
            for kind in ["req", "out", "err", "res"] {
                let _ = std::fs::remove_file(dir.join(format!("chunk-{}.{kind}", chunk.chunk)));
            }
            Ok::<_, String>(())
        })
        .await
        .map_err(|e| e.to_string())??;
        c.state = ChunkState::Merged;
        fault::timing("merge", &c.batch_id, started);
        any = true;
    }
    Ok(any)
}

/// Every chunk is merged: the line map and the chunk files are no longer needed.
fn tidy(n: &Native, batch_id: &str) -> Result<(), String> {
    n.store.drop_native_lines(batch_id).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(n.store.native_dir(batch_id));
    Ok(())
}

/// Runs an `in_progress` batch's chunks until every one is merged (`Done`), the batch is
/// halted (a cancel, an engine stop) or its deadline passes.
pub async fn run(ctx: &Arc<Ctx>, row: &BatchRow, halt: &CancellationToken) -> Result<End, String> {
    let Some(n) = Native::of(ctx) else { return Err("native mode is not configured".into()) };
    ensure_plan(ctx, &n, row).await?;
    let mut wait = n.first_wait();
    loop {
        if halt.is_cancelled() {
            return Ok(End::Halted);
        }
        if now_ms() >= row.deadline_ms {
            return Ok(End::Expired);
        }
        let mut chunks = n.store.chunks(&row.id).map_err(|e| e.to_string())?;
        let mut asked: Option<Duration> = None;
        // Chunks go up one at a time: at most one create of a batch is ever in doubt.
        'submit: for c in chunks.iter_mut().filter(|c| pending(c)) {
            while pending(c) {
                let step = tokio::select! {
                    biased;
                    _ = halt.cancelled() => return Ok(End::Halted),
                    s = submit::advance(&n, c) => s?,
                };
                if let Some(w) = step {
                    asked = Some(w);
                    break 'submit;
                }
            }
        }
        let polled = tokio::select! {
            biased;
            _ = halt.cancelled() => return Ok(End::Halted),
            p = poll::poll(&n, &mut chunks) => p?,
        };
        merge_ended(&n, &mut chunks, false).await?;
        poll::delete_inputs(&n, &mut chunks).await?;
        if chunks.iter().all(|c| c.state.is_done()) {
            tidy(&n, &row.id)?;
            return Ok(End::Done);
        }
        if chunks.iter().any(|c| c.state == ChunkState::Submitted) {
            pause_at("polling");
        }
        wait = if polled.changed { n.first_wait() } else { (wait * 2).min(n.cfg.poll_interval) };
        if let Some(w) = asked.into_iter().chain(polled.wait).max() {
            wait = wait.max(w);
        }
        let until_deadline = Duration::from_millis((row.deadline_ms - now_ms()).max(0) as u64);
        tokio::select! {
            _ = halt.cancelled() => return Ok(End::Halted),
            _ = tokio::time::sleep(wait.min(until_deadline)) => {}
        }
    }
}

/// A cancel or an expiry: every upstream chunk is cancelled (chunks never created are
/// skipped), and the partial results of each are merged once it ends. False if the engine
/// stopped first (the next start carries on from the store). `expiring`: our deadline passed
/// (rather than a cancel).
pub async fn wind_down(
    ctx: &Arc<Ctx>,
    row: &BatchRow,
    stop: &CancellationToken,
    expiring: bool,
) -> Result<bool, String> {
    let Some(n) = Native::of(ctx) else { return Ok(true) };
    if !n.store.native_planned(&row.id).map_err(|e| e.to_string())? {
        return Ok(true);
    }
    let mut wait = n.first_wait();
    loop {
        if stop.is_cancelled() {
            return Ok(false);
        }
        let mut chunks = n.store.chunks(&row.id).map_err(|e| e.to_string())?;
        let mut asked = None;
        for c in chunks.iter_mut().filter(|c| pending(c)) {
            if let Some(w) = submit::settle_unsent(&n, c).await? {
                asked = Some(w);
            }
        }
        poll::cancel_all(&n, &mut chunks).await?;
        let polled = poll::poll(&n, &mut chunks).await?;
        merge_ended(&n, &mut chunks, expiring).await?;
        poll::delete_inputs(&n, &mut chunks).await?;
        if chunks.iter().all(|c| c.state.is_done()) {
            tidy(&n, &row.id)?;
            return Ok(true);
        }
        wait = if polled.changed { n.first_wait() } else { (wait * 2).min(n.cfg.poll_interval) };
        if let Some(w) = asked.into_iter().chain(polled.wait).max() {
            wait = wait.max(w);
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(false),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
