//! Submission without double billing. Neither provider has an idempotency key for batch
//! creation, so every create is journaled: the intent (state `creating`, its time) is
//! stored before the call and the upstream id after it. A create whose outcome is unknown
//! (no reply, a 5xx, or a crash between the call and the record) is never simply sent
//! again: the provider's batches are searched for it first (OpenAI: `metadata.fr_chunk`
//! or the input file; Anthropic: created after the intent with the chunk's request count,
//! not owned by another chunk), the oldest match adopted and any extra duplicate cancelled.
//!
//! Anthropic's batches carry nothing of ours (no metadata, no input file), so two of our
//! chunks in doubt at once with the same request count could each take the other's batch.
//! So at most one Anthropic create of a given request count is in doubt per engine: creates
//! (and recoveries) hold an engine-wide lock for that count from intent to record (taken
//! without waiting: a chunk that finds it held tries again later, so its batch goes on
//! polling), and none starts while another chunk of that count in a running batch is still
//! `creating` (its own next step settles it first), unless that doubt is older than
//! `DOUBT_BLOCKS_MS` (its provider's list keeps failing: other batches go on).

use std::time::Duration;

use serde_json::{json, Value};

use super::fault::pause_at;
use super::wire::{parse_rfc3339_ms, Api, CallError};
use super::Native;
use crate::ids::now_ms;
use crate::store::{ChunkRow, ChunkState};

/// How far back (before its intent) an upstream batch may have been stamped and still be ours.
const CLOCK_SKEW_MS: i64 = 60_000;
/// Pages of the provider's batch list searched when recovering a create.
const MAX_RECOVERY_PAGES: usize = 50;
/// How long another chunk's create in doubt holds back creates of the same request count.
const DOUBT_BLOCKS_MS: i64 = 15 * 60_000;

/// Moves a chunk that is not yet submitted one step on. `Ok(Some(wait))`: try again after
/// `wait` (rate limited, upstream unreachable).
pub async fn advance(n: &Native, c: &mut ChunkRow) -> Result<Option<Duration>, String> {
    let api = Api::of(&c.provider);
    let _one_at_a_time = match (c.state, api) {
        (ChunkState::Planned | ChunkState::Creating, Api::Anthropic) => {
            let Some(held) = create_lock(n, c) else { return Ok(Some(n.first_wait())) };
            let since = now_ms() - DOUBT_BLOCKS_MS;
            let waiting = n.store.other_create_in_doubt(c, since).map_err(|e| e.to_string())?;
            if waiting && c.state == ChunkState::Planned {
                return Ok(Some(n.first_wait()));
            }
            Some(held)
        }
        _ => None,
    };
    match (c.state, api) {
        (ChunkState::Planned, Api::OpenAi) => upload(n, c).await,
        (ChunkState::Planned, Api::Anthropic) | (ChunkState::Uploaded, _) => create(n, c).await,
        (ChunkState::Creating, _) => recover_or_create(n, c).await,
        _ => Ok(None),
    }
}

/// The engine-wide lock of creates of `c`'s request count, if free now.
fn create_lock(n: &Native, c: &ChunkRow) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    let stripe = (c.n_requests % n.anthropic_creates.len() as u64) as usize;
    n.anthropic_creates[stripe].clone().try_lock_owned().ok()
}

fn save(n: &Native, c: &ChunkRow) -> Result<(), String> {
    n.store.save_chunk(c).map_err(|e| e.to_string())
}

/// The chunk cannot run upstream at all (refused): every line goes to the error file with
/// the provider's code and message.
fn refuse(n: &Native, c: &mut ChunkRow, code: &str, message: &str) -> Result<Option<Duration>, String> {
    c.errors = Some(json!({"code": code, "message": message}));
    c.upstream_status = Some("failed".into());
    c.state = ChunkState::Ended;
    save(n, c)?;
    Ok(None)
}

async fn upload(n: &Native, c: &mut ChunkRow) -> Result<Option<Duration>, String> {
    // An upload lost to a crash costs only storage (OpenAI expires it); it is sent again.
    let started = now_ms();
    c.upload_intent_at = Some(started);
    save(n, c)?;
    let path = super::plan::request_path(&n.store, &c.batch_id, c.chunk);
    match n.wire.upload(&path, &format!("{}.jsonl", c.key)).await {
        Ok(file) => {
            let Some(id) = file.get("id").and_then(Value::as_str) else {
                return Ok(Some(n.first_wait()));
            };
            c.input_file_id = Some(id.to_owned());
            c.state = ChunkState::Uploaded;
            save(n, c)?;
            super::fault::timing("upload", &c.batch_id, started);
            pause_at("after_upload");
            Ok(None)
        }
        Err(CallError::RateLimited(w)) => Ok(Some(w.unwrap_or_else(|| n.first_wait()))),
        Err(CallError::Unknown(m)) => {
            eprintln!("fastrouter-batch engine: batch {}: upload of chunk {}: {m}; trying again", c.batch_id, c.chunk);
            Ok(Some(n.first_wait()))
        }
        Err(CallError::Refused { code, message, .. }) => refuse(n, c, &code, &message),
    }
}

/// Journals the intent, then creates.
async fn create(n: &Native, c: &mut ChunkRow) -> Result<Option<Duration>, String> {
    let before = c.state;
    c.state = ChunkState::Creating;
    c.create_intent_at = Some(now_ms());
    save(n, c)?;
    let sent = match Api::of(&c.provider) {
        Api::OpenAi => {
            let body = json!({
                "input_file_id": c.input_file_id,
                "endpoint": c.endpoint,
                "completion_window": "24h",
                "metadata": {"fr_batch": c.batch_id, "fr_chunk": c.key},
            });
            n.wire.post(Api::OpenAi, "/v1/batches", Some(&body)).await
        }
        Api::Anthropic => {
            let path = super::plan::request_path(&n.store, &c.batch_id, c.chunk);
            n.wire.post_file(Api::Anthropic, "/v1/messages/batches", &path).await
        }
    };
    match sent {
        Ok(batch) => {
            // A crash here (created upstream, not yet recorded) is what recovery is for.
            pause_at("after_create");
            adopt(n, c, &batch)
        }
        Err(CallError::RateLimited(w)) => {
            // 429: nothing was created.
            c.state = before;
            save(n, c)?;
            Ok(Some(w.unwrap_or_else(|| n.first_wait())))
        }
        Err(CallError::Refused { message, .. })
            if Api::of(&c.provider) == Api::OpenAi && message.to_ascii_lowercase().contains("find file") =>
        {
            // The upload is not visible yet (a known race): nothing was created.
            c.state = before;
            save(n, c)?;
            Ok(Some(Duration::from_millis(500).min(n.cfg.poll_interval)))
        }
        Err(CallError::Refused { code, message, .. }) => refuse(n, c, &code, &message),
        Err(CallError::Unknown(m)) => {
            // It may exist upstream: stay `creating`; the next step looks for it first.
            eprintln!(
                "fastrouter-batch engine: batch {}: create of chunk {}: {m}; looking for it upstream before creating again",
                c.batch_id, c.chunk
            );
            Ok(Some(n.first_wait()))
        }
    }
}

fn adopt(n: &Native, c: &mut ChunkRow, batch: &Value) -> Result<Option<Duration>, String> {
    let Some(id) = batch.get("id").and_then(Value::as_str) else {
        return Err(format!("the provider's create reply has no id: {batch}"));
    };
    c.upstream_id = Some(id.to_owned());
    c.upstream_status = status_of(batch);
    c.state = ChunkState::Submitted;
    save(n, c)?;
    Ok(None)
}

pub fn status_of(batch: &Value) -> Option<String> {
    batch.get("status").or_else(|| batch.get("processing_status")).and_then(Value::as_str).map(str::to_owned)
}

/// A chunk left `creating`: adopt what was created, or create if nothing was.
async fn recover_or_create(n: &Native, c: &mut ChunkRow) -> Result<Option<Duration>, String> {
    let found = match find(n, c).await {
        Ok(found) => found,
        Err(CallError::RateLimited(w)) => return Ok(Some(w.unwrap_or_else(|| n.first_wait()))),
        Err(e) => {
            eprintln!("fastrouter-batch engine: batch {}: looking for chunk {} upstream: {e}", c.batch_id, c.chunk);
            return Ok(Some(n.first_wait()));
        }
    };
    let Some((oldest, extras)) = found.split_first() else {
        // Nothing was created: now creating is safe.
        c.state = if c.input_file_id.is_some() { ChunkState::Uploaded } else { ChunkState::Planned };
        return create(n, c).await;
    };
    for extra in extras {
        if let Some(id) = extra.get("id").and_then(Value::as_str) {
            eprintln!("fastrouter-batch engine: batch {}: cancelling duplicate upstream batch {id}", c.batch_id);
            let path = match Api::of(&c.provider) {
                Api::OpenAi => format!("/v1/batches/{id}/cancel"),
                Api::Anthropic => format!("/v1/messages/batches/{id}/cancel"),
            };
            let _ = n.wire.post(Api::of(&c.provider), &path, None).await;
        }
    }
    adopt(n, c, oldest)
}

/// Created-at of a listed batch, in ms.
fn created_ms(api: Api, b: &Value) -> Option<i64> {
    match api {
        Api::OpenAi => b.get("created_at").and_then(Value::as_i64).map(|s| s * 1000),
        Api::Anthropic => b.get("created_at").and_then(Value::as_str).and_then(parse_rfc3339_ms),
    }
}

/// The upstream batches that are this chunk's, oldest first.
async fn find(n: &Native, c: &ChunkRow) -> Result<Vec<Value>, CallError> {
    let api = Api::of(&c.provider);
    let since = c.create_intent_at.unwrap_or(0) - CLOCK_SKEW_MS;
    let claimed = n.store.claimed_upstream_ids(&c.provider).map_err(|e| CallError::Unknown(e.to_string()))?;
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_RECOVERY_PAGES {
        let path = match (api, &after) {
            (Api::OpenAi, None) => "/v1/batches?limit=100".to_owned(),
            (Api::OpenAi, Some(a)) => format!("/v1/batches?limit=100&after={a}"),
            (Api::Anthropic, None) => "/v1/messages/batches?limit=100".to_owned(),
            (Api::Anthropic, Some(a)) => format!("/v1/messages/batches?limit=100&after_id={a}"),
        };
        let page = n.wire.get(api, &path).await?;
        let data = page.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut older = false;
        for b in &data {
            let id = b.get("id").and_then(Value::as_str).unwrap_or_default();
            let created = created_ms(api, b).unwrap_or(i64::MAX);
            older |= created < since;
            if claimed.contains(id) && c.upstream_id.as_deref() != Some(id) {
                continue;
            }
            let ours = match api {
                Api::OpenAi => {
                    b.pointer("/metadata/fr_chunk").and_then(Value::as_str) == Some(c.key.as_str())
                        || (c.input_file_id.is_some()
                            && b.get("input_file_id").and_then(Value::as_str) == c.input_file_id.as_deref())
                }
                Api::Anthropic => {
                    // Time, count and "not owned by another chunk" is all that can be checked
                    // here. A MessageBatch (list or retrieve) carries no metadata, no input file
                    // and no custom_ids: those appear only in its results, which exist once it
                    // has ended, and reading them would mean downloading a whole candidate (up
                    // to 256 MB) per recovery. Our custom_ids are also the user's own unless
                    // Anthropic would refuse them (plan.rs), so they tag no chunk in general.
                    // What the ids do give is a net at merge: a result whose custom_id is not
                    // one of this chunk's is ignored there, and a chunk line missing from the
                    // results is reported `request_not_run`, so a wrong adoption cannot put
                    // another chunk's answers under our lines.
                    let total: u64 = b
                        .get("request_counts")
                        .and_then(Value::as_object)
                        .map(|m| m.values().filter_map(Value::as_u64).sum())
                        .unwrap_or(0);
                    created >= since && total == c.n_requests
                }
            };
            if ours {
                found.push(b.clone());
            }
        }
        let more = page.get("has_more").and_then(Value::as_bool).unwrap_or(false);
        let last = data.last().and_then(|b| b.get("id")).and_then(Value::as_str).map(str::to_owned);
        // Lists are newest first: once past the intent (less the skew), nothing older is ours.
        if !more || older || last.is_none() {
            break;
        }
        after = last;
    }
    // Lists are newest first and OpenAI stamps whole seconds, so a duplicate made in the same
    // second ties: reversed list order (a stable sort keeps it) puts the older of a tie first.
    found.reverse();
    found.sort_by_key(|b| created_ms(api, b).unwrap_or(0));
    Ok(found)
}

/// Winding down (cancel, expiry): a chunk never created is skipped; one whose create is
/// in doubt is looked for upstream and adopted (then cancelled with the others) or skipped.
pub async fn settle_unsent(n: &Native, c: &mut ChunkRow) -> Result<Option<Duration>, String> {
    if c.state == ChunkState::Creating {
        // Not while another chunk's create is between its call and its record: that
        // batch would look unowned here.
        let _one_at_a_time = match Api::of(&c.provider) {
            Api::Anthropic => match create_lock(n, c) {
                Some(held) => Some(held),
                None => return Ok(Some(n.first_wait())),
            },
            Api::OpenAi => None,
        };
        match find(n, c).await {
            Ok(found) => {
                if let Some((oldest, extras)) = found.split_first() {
                    for extra in extras.iter().filter_map(|b| b.get("id").and_then(Value::as_str)) {
                        let api = Api::of(&c.provider);
                        let _ =
                            n.wire.post(api, &format!("{}/cancel", super::poll::batch_path(api, extra)), None).await;
                    }
                    return adopt(n, c, oldest);
                }
            }
            Err(CallError::RateLimited(w)) => return Ok(Some(w.unwrap_or_else(|| n.first_wait()))),
            Err(_) => return Ok(Some(n.first_wait())),
        }
    }
    c.state = ChunkState::Skipped;
    save(n, c)?;
    Ok(None)
}
