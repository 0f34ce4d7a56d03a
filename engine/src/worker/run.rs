//! One batch's life, driven from its stored status so that a restart at any point
//! continues where the last process stopped.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use fastrouter_batch_core::validate::{validate_path, Options};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::dispatch::{dispatch, End};
use super::finalize::finalize;
use super::health::Backoff;
use super::Ctx;
use crate::ids::now_ms;
use crate::store::{BatchRow, Status};

/// How many validation problems a failed batch lists in `errors.data`.
const MAX_LISTED_ERRORS: usize = 1000;

/// Runs the batch to its end. Storage trouble (a full disk, a locked database) never fails
/// a batch, since it may pass: the failed step is tried again with backoff until it works,
/// the batch showing why meanwhile, or until the engine stops (then it resumes from its
/// last durable state on the next start).
pub async fn run_batch(ctx: &Arc<Ctx>, id: &str, halt: &CancellationToken, shutdown: &CancellationToken) {
    let mut backoff = Backoff::default();
    loop {
        let Err(e) = step_until_done(ctx, id, halt, shutdown).await else { break };
        ctx.health.batch_failed(id, &e);
        if !backoff.wait(shutdown).await {
            break;
        }
    }
    ctx.health.batch_recovered(id);
}

async fn step_until_done(
    ctx: &Arc<Ctx>,
    id: &str,
    halt: &CancellationToken,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    // Dispatch rounds that ended with every line sent yet fewer results than requests.
    let mut short_rounds = 0;
    let native = crate::native::Native::of(ctx).is_some();
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let Some(row) = ctx.store.batch(id).map_err(|e| e.to_string())? else { return Ok(()) };
        match row.status {
            Status::Validating => validate(ctx, &row).await?,
            Status::InProgress if now_ms() >= row.deadline_ms => {
                // Native mode: the upstream chunks are cancelled and their partial results kept.
                if !crate::native::wind_down(ctx, &row, shutdown, true).await? {
                    return Ok(());
                }
                finalize(ctx, &row, Status::Expired).await?;
            }
            // Halted but not cancelled (cannot normally happen): never spin.
            Status::InProgress if halt.is_cancelled() => return Ok(()),
            Status::InProgress if native => match crate::native::run(ctx, &row, halt).await? {
                // Lines no upstream file mentions are listed as not run by finalizing.
                End::Done => {
                    ctx.store.transition(id, &[Status::InProgress], Status::Finalizing).map_err(|e| e.to_string())?;
                }
                End::Halted | End::Expired => {}
            },
            Status::InProgress => match dispatch(ctx, &row, halt).await? {
                End::Done => {
                    let now = ctx.store.batch(id).map_err(|e| e.to_string())?;
                    if now.is_some_and(|b| b.completed + b.failed < b.total) && short_rounds == 0 {
                        // A result went missing (cannot normally happen): run those lines
                        // again once; finalizing lists any still missing as not run.
                        eprintln!("fastrouter-batch engine: batch {id}: results missing after dispatch; running those lines again");
                        short_rounds += 1;
                        continue;
                    }
                    ctx.store.transition(id, &[Status::InProgress], Status::Finalizing).map_err(|e| e.to_string())?;
                }
                // Re-read: a cancel left `cancelling`, an expiry is seen by the deadline check.
                End::Halted | End::Expired => {}
            },
            Status::Finalizing => finalize(ctx, &row, Status::Completed).await?,
            Status::Cancelling => {
                if !crate::native::wind_down(ctx, &row, shutdown, false).await? {
                    return Ok(());
                }
                finalize(ctx, &row, Status::Cancelled).await?;
            }
            Status::Completed | Status::Failed | Status::Expired | Status::Cancelled => return Ok(()),
        }
        // That step went through: whatever held the batch up before has passed.
        ctx.health.batch_recovered(id);
    }
}

/// validating → in_progress, or failed with the problems found (line, code, message).
async fn validate(ctx: &Ctx, row: &BatchRow) -> Result<(), String> {
    let path = ctx.store.content_path(&row.input_file_id);
    let opts =
        Options { limits: ctx.cfg.limits.clone(), sampling: ctx.cfg.anthropic_sampling.clone(), ..Options::default() };
    let report = tokio::task::spawn_blocking(move || validate_path(&path, &opts, &AtomicBool::new(false)))
        .await
        .map_err(|e| e.to_string())?;
    let mut errors: Vec<Value> = Vec::new();
    match report {
        Err(e) => errors.push(error_entry("file_unreadable", None, None, &e.to_string())),
        Ok(report) => {
            for issue in report.issues.iter().take(MAX_LISTED_ERRORS) {
                errors.push(error_entry(issue.code.as_str(), Some(issue.line), issue.path.as_deref(), &issue.message));
            }
            let more = report.total_issues().saturating_sub(errors.len() as u64);
            if more > 0 {
                errors.push(error_entry("too_many_errors", None, None, &format!("... and {more} more problems")));
            }
            if report.num_requests == 0 {
                errors.push(error_entry("empty_file", None, None, "the input file holds no requests"));
            }
            if let Some(url) = report.url.as_deref().filter(|u| *u != row.endpoint) {
                errors.push(error_entry(
                    "mismatched_endpoint",
                    None,
                    Some("endpoint"),
                    &format!("the batch's endpoint is {} but the file's requests use {url}", row.endpoint),
                ));
            }
            if errors.is_empty() {
                ctx.store.start_progress(&row.id, report.num_requests, &report.providers).map_err(|e| e.to_string())?;
                return Ok(());
            }
        }
    }
    let errors = json!({"object": "list", "data": errors});
    ctx.store.fail_validation(&row.id, &errors).map_err(|e| e.to_string())?;
    Ok(())
}

fn error_entry(code: &str, line: Option<u64>, param: Option<&str>, message: &str) -> Value {
    json!({"code": code, "line": line, "param": param.filter(|p| !p.is_empty()), "message": message})
}
