//! Polling the submitted chunks: one list call per provider when several chunks run (a
//! GET each for those the list did not show), counts followed live, and a chunk's results
//! downloaded as soon as its upstream batch ends (they expire upstream).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::submit::status_of;
use super::wire::{Api, CallError};
use super::Native;
use crate::store::{ChunkRow, ChunkState};

/// Pages of the list read per poll before falling back to one GET per chunk.
const MAX_LIST_PAGES: usize = 3;

/// What a round of polling saw.
#[derive(Default)]
pub struct Polled {
    /// Some chunk's status or counts moved (the backoff starts over).
    pub changed: bool,
    /// The provider asked us to wait (429) this long.
    pub wait: Option<Duration>,
}

fn is_terminal(api: Api, status: &str) -> bool {
    match api {
        Api::OpenAi => matches!(status, "completed" | "failed" | "expired" | "cancelled"),
        Api::Anthropic => status == "ended",
    }
}

pub fn batch_path(api: Api, id: &str) -> String {
    match api {
        Api::OpenAi => format!("/v1/batches/{id}"),
        Api::Anthropic => format!("/v1/messages/batches/{id}"),
    }
}

/// Polls every submitted chunk once.
pub async fn poll(n: &Native, chunks: &mut [ChunkRow]) -> Result<Polled, String> {
    let mut out = Polled::default();
    for api in [Api::OpenAi, Api::Anthropic] {
        let mine: Vec<usize> = (0..chunks.len())
            .filter(|&i| chunks[i].state == ChunkState::Submitted && Api::of(&chunks[i].provider) == api)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut listed: HashMap<String, Value> = HashMap::new();
        if mine.len() > 1 {
            match list(n, api, mine.len()).await {
                Ok(l) => listed = l,
                Err(CallError::RateLimited(w)) => {
                    out.wait = Some(w.unwrap_or_else(|| n.first_wait()));
                    return Ok(out);
                }
                Err(_) => {}
            }
        }
        for i in mine {
            let c = &mut chunks[i];
            let Some(id) = c.upstream_id.clone() else { continue };
            let batch = match listed.remove(&id) {
                Some(b) => b,
                None => match n.wire.get(api, &batch_path(api, &id)).await {
                    Ok(b) => b,
                    Err(CallError::RateLimited(w)) => {
                        out.wait = Some(w.unwrap_or_else(|| n.first_wait()));
                        return Ok(out);
                    }
                    Err(e) => {
                        eprintln!("fastrouter-batch engine: batch {}: polling {id}: {e}", c.batch_id);
                        continue;
                    }
                },
            };
            out.changed |= apply(n, c, api, &batch).await?;
        }
    }
    Ok(out)
}

/// The provider's newest batches by id (enough pages to likely hold `wanted` of ours).
async fn list(n: &Native, api: Api, wanted: usize) -> Result<HashMap<String, Value>, CallError> {
    let mut found = HashMap::new();
    let mut after: Option<String> = None;
    let limit = match api {
        Api::OpenAi => 100,
        Api::Anthropic => 1000,
    };
    for _ in 0..MAX_LIST_PAGES {
        let path = match (api, &after) {
            (Api::OpenAi, None) => format!("/v1/batches?limit={limit}"),
            (Api::OpenAi, Some(a)) => format!("/v1/batches?limit={limit}&after={a}"),
            (Api::Anthropic, None) => format!("/v1/messages/batches?limit={limit}"),
            (Api::Anthropic, Some(a)) => format!("/v1/messages/batches?limit={limit}&after_id={a}"),
        };
        let page = n.wire.get(api, &path).await?;
        let data = page.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        for b in &data {
            if let Some(id) = b.get("id").and_then(Value::as_str) {
                found.insert(id.to_owned(), b.clone());
            }
        }
        let more = page.get("has_more").and_then(Value::as_bool).unwrap_or(false);
        after = data.last().and_then(|b| b.get("id")).and_then(Value::as_str).map(str::to_owned);
        if !more || after.is_none() || found.len() >= wanted.max(limit) {
            break;
        }
    }
    Ok(found)
}

/// Takes in a batch object; on its end, downloads the results and marks the chunk ended.
/// Whether anything moved.
async fn apply(n: &Native, c: &mut ChunkRow, api: Api, batch: &Value) -> Result<bool, String> {
    let status = status_of(batch);
    let counts = batch.get("request_counts").cloned().unwrap_or(Value::Null);
    let n_of = |k: &str| counts.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (completed, failed) = match api {
        Api::OpenAi => (n_of("completed"), n_of("failed")),
        // Anthropic's counts stay 0 until the batch ends.
        Api::Anthropic => (n_of("succeeded"), n_of("errored") + n_of("canceled") + n_of("expired")),
    };
    let changed = status != c.upstream_status || completed != c.completed || failed != c.failed;
    c.upstream_status = status.clone();
    c.completed = completed;
    c.failed = failed;
    let ended = status.as_deref().is_some_and(|s| is_terminal(api, s));
    if !ended {
        if changed {
            n.store.save_chunk(c).map_err(|e| e.to_string())?;
        }
        return Ok(changed);
    }
    let str_of = |k: &str| batch.get(k).and_then(Value::as_str).map(str::to_owned);
    c.output_file_id = str_of("output_file_id");
    c.error_file_id = str_of("error_file_id");
    c.results_url = str_of("results_url");
    if api == Api::OpenAi && status.as_deref() == Some("failed") {
        let first = batch.pointer("/errors/data/0").cloned().unwrap_or(Value::Null);
        let code = first.get("code").and_then(Value::as_str).unwrap_or("batch_failed");
        let message = first.get("message").and_then(Value::as_str).unwrap_or("The upstream batch failed.");
        c.errors = Some(json!({"code": code, "message": message}));
    }
    let started = crate::ids::now_ms();
    if let Err(e) = download(n, c, api).await {
        // Tried again at the next poll; the counts are kept meanwhile.
        eprintln!("fastrouter-batch engine: batch {}: downloading chunk {} results: {e}", c.batch_id, c.chunk);
        n.store.save_chunk(c).map_err(|e| e.to_string())?;
        return Ok(changed);
    }
    c.state = ChunkState::Ended;
    n.store.save_chunk(c).map_err(|e| e.to_string())?;
    super::fault::timing("download", &c.batch_id, started);
    Ok(true)
}

pub fn result_path(n: &Native, c: &ChunkRow, kind: &str) -> std::path::PathBuf {
    n.store.native_dir(&c.batch_id).join(format!("chunk-{}.{kind}", c.chunk))
}

async fn download(n: &Native, c: &ChunkRow, api: Api) -> Result<(), CallError> {
    match api {
        Api::OpenAi => {
            for (file, kind) in [(&c.output_file_id, "out"), (&c.error_file_id, "err")] {
                if let Some(id) = file {
                    n.wire.download(api, &format!("/v1/files/{id}/content"), &result_path(n, c, kind)).await?;
                }
            }
        }
        Api::Anthropic => {
            let url = match (&c.results_url, &c.upstream_id) {
                (Some(u), _) => u.clone(),
                (None, Some(id)) => format!("/v1/messages/batches/{id}/results"),
                (None, None) => return Ok(()),
            };
            n.wire.download(api, &url, &result_path(n, c, "res")).await?;
        }
    }
    Ok(())
}

/// Asks upstream to cancel every running chunk (once each).
pub async fn cancel_all(n: &Native, chunks: &mut [ChunkRow]) -> Result<(), String> {
    for c in chunks.iter_mut().filter(|c| c.state == ChunkState::Submitted && !c.cancel_sent) {
        let api = Api::of(&c.provider);
        let Some(id) = c.upstream_id.clone() else { continue };
        match n.wire.post(api, &format!("{}/cancel", batch_path(api, &id)), None).await {
            // 409 (already ended) and the like: nothing left to cancel.
            Ok(_) | Err(CallError::Refused { .. }) => {
                c.cancel_sent = true;
                n.store.save_chunk(c).map_err(|e| e.to_string())?;
            }
            Err(e) => eprintln!("fastrouter-batch engine: batch {}: cancelling {id}: {e}; trying again", c.batch_id),
        }
    }
    Ok(())
}

/// Deletes the uploaded input files of ended chunks (hygiene; failures are retried later).
pub async fn delete_inputs(n: &Native, chunks: &mut [ChunkRow]) -> Result<(), String> {
    if !n.cfg.delete_input_files {
        return Ok(());
    }
    for c in chunks.iter_mut() {
        let ended = matches!(c.state, ChunkState::Ended | ChunkState::Merged | ChunkState::Skipped);
        let Some(id) = c.input_file_id.clone().filter(|_| ended && !c.input_deleted) else { continue };
        match n.wire.delete(Api::OpenAi, &format!("/v1/files/{id}")).await {
            Ok(_) | Err(CallError::Refused { .. }) => {
                c.input_deleted = true;
                n.store.save_chunk(c).map_err(|e| e.to_string())?;
            }
            Err(_) => {}
        }
    }
    Ok(())
}
