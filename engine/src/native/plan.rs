//! Planning: a batch's lines split into chunks, one upstream batch each, their request
//! files written in the provider's format, and the plan stored before any provider call.
//!
//! OpenAI chunks hold one endpoint and one upstream model each (OpenAI's rule), lines in
//! OpenAI's batch format with the bare model name. Anthropic chunks hold any models, each
//! line `{custom_id, params}` through the shared translation; custom_ids Anthropic would
//! refuse become surrogates tagged with the chunk (mapped back on merge).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use fastrouter_batch_core::jsonl::blocks::{count_lines, for_each_line, is_blank, strip_bom, BlockReader, Chunk};
use fastrouter_batch_core::translate::{self, SamplingTable};
use serde_json::{json, Value};

use crate::config::NativeConfig;
use crate::providers::{upstream_model, LineRequest};
use crate::store::{ChunkRow, ChunkState, PlannedLine, ResultRow, Store, Usage};
use crate::worker::result_line_for;

/// What a plan is made of: its chunks, its lines, and the results of lines settled without
/// any provider call (a body the Anthropic translation refuses).
pub struct Plan {
    pub chunks: Vec<ChunkRow>,
    pub lines: Vec<PlannedLine>,
    pub settled: Vec<ResultRow>,
}

/// The request file of a chunk.
pub fn request_path(store: &Store, batch_id: &str, chunk: u32) -> PathBuf {
    store.native_dir(batch_id).join(format!("chunk-{chunk}.req"))
}

/// Whether Anthropic takes this custom_id as it is.
pub fn anthropic_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A short tag of the batch for surrogate ids (its id's last 8 characters).
fn batch_tag(batch_id: &str) -> String {
    let alnum: String = batch_id.chars().filter(char::is_ascii_alphanumeric).collect();
    alnum[alnum.len().saturating_sub(8)..].to_owned()
}

/// A chunk being written.
struct Open {
    row: ChunkRow,
    out: BufWriter<File>,
    anthropic: bool,
}

impl Open {
    fn finish(mut self) -> std::io::Result<ChunkRow> {
        if self.anthropic {
            self.out.write_all(b"]}")?;
            self.row.bytes += 2;
        }
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(self.row)
    }
}

/// The group a line goes in: provider, endpoint, upstream model (Anthropic: one group).
type Group = (String, String, String);

/// Builds and writes the plan of a batch (its request files written and synced; the
/// caller stores it).
pub fn make_plan(
    store: &Store,
    batch_id: &str,
    input: &Path,
    cfg: &NativeConfig,
    sampling: &SamplingTable,
    max_line: usize,
) -> std::io::Result<Plan> {
    let dir = store.native_dir(batch_id);
    // A plan cut short by a crash was never stored: start it again from nothing.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let tag = batch_tag(batch_id);
    let mut open: HashMap<Group, Open> = HashMap::new();
    let mut plan = Plan { chunks: Vec::new(), lines: Vec::new(), settled: Vec::new() };
    let mut next_chunk = 0u32;
    let mut reader = BlockReader::new(File::open(input)?, 1 << 20, max_line);
    let mut line_no = 0u64;
    let mut failure: Option<std::io::Error> = None;
    while let Some(piece) = reader.next_chunk()? {
        let Chunk::Lines(block) = piece else {
            line_no += 1;
            continue;
        };
        let base = line_no;
        for_each_line(&block, |i, line| {
            if failure.is_some() {
                return;
            }
            let n = base + i as u64 + 1;
            let line = if n == 1 { strip_bom(line) } else { line };
            if is_blank(line) {
                return;
            }
            let mut ctx = Add { store, batch_id, cfg, sampling, tag: &tag, open: &mut open, plan: &mut plan };
            if let Err(e) = ctx.add(n, line, &mut next_chunk) {
                failure = Some(e);
            }
        });
        if let Some(e) = failure.take() {
            return Err(e);
        }
        line_no += count_lines(&block);
    }
    for (_, o) in open {
        plan.chunks.push(o.finish()?);
    }
    plan.chunks.sort_by_key(|c| c.chunk);
    Ok(plan)
}

struct Add<'a> {
    store: &'a Store,
    batch_id: &'a str,
    cfg: &'a NativeConfig,
    sampling: &'a SamplingTable,
    tag: &'a str,
    open: &'a mut HashMap<Group, Open>,
    plan: &'a mut Plan,
}

impl Add<'_> {
    fn add(&mut self, line_no: u64, line: &[u8], next_chunk: &mut u32) -> std::io::Result<()> {
        let req = match LineRequest::parse(line) {
            Ok(r) => r,
            Err(e) => {
                // Validation passed, so only a file changed on disk gets here.
                self.settle(line_no, "", "", 400, invalid(&format!("line {line_no}: {e}")));
                return Ok(());
            }
        };
        let anthropic = req.provider == "anthropic";
        let (group, item) = if anthropic {
            let params = match translate::to_anthropic(&req.body, self.sampling) {
                Ok(p) => p,
                Err(refusals) => {
                    let body = translate::refusal_error(&refusals);
                    self.settle(line_no, &req.custom_id, &req.provider, 400, body);
                    return Ok(());
                }
            };
            (("anthropic".to_owned(), req.url.clone(), String::new()), Value::Object(params))
        } else {
            let mut body = req.body.clone();
            let model = match body.get("model") {
                Some(Value::String(m)) => upstream_model(m, &req.provider).to_owned(),
                _ => String::new(),
            };
            body.insert("model".into(), Value::String(model.clone()));
            ((req.provider.clone(), req.url.clone(), model), Value::Object(body))
        };
        let (max_requests, max_bytes) = if anthropic {
            (self.cfg.anthropic_max_requests, self.cfg.anthropic_max_bytes)
        } else {
            (self.cfg.openai_max_requests, self.cfg.openai_max_bytes)
        };
        // The line as it will be written once its chunk (and so any surrogate) is known.
        let render = |chunk: u32| -> (String, Option<String>, Vec<u8>) {
            if anthropic {
                let (cid, original) = if anthropic_id_ok(&req.custom_id) {
                    (req.custom_id.clone(), None)
                } else {
                    (format!("fr{}c{chunk}_{line_no}", self.tag), Some(req.custom_id.clone()))
                };
                let bytes = serde_json::to_vec(&json!({"custom_id": cid, "params": item})).unwrap_or_default();
                (cid, original, bytes)
            } else {
                let mut bytes = serde_json::to_vec(
                    &json!({"custom_id": req.custom_id, "method": "POST", "url": req.url, "body": item}),
                )
                .unwrap_or_default();
                bytes.push(b'\n');
                (req.custom_id.clone(), None, bytes)
            }
        };
        let fits = |o: &Open, len: usize| {
            o.row.n_requests < max_requests as u64 && o.row.bytes + (len as u64) < max_bytes.max(1)
        };
        let probe = self.open.get(&group).map(|o| o.row.chunk);
        let mut rendered = render(probe.unwrap_or(*next_chunk));
        let full = self.open.get(&group).is_some_and(|o| !fits(o, rendered.2.len()) && o.row.n_requests > 0);
        if full {
            if let Some(o) = self.open.remove(&group) {
                self.plan.chunks.push(o.finish()?);
            }
        }
        if !self.open.contains_key(&group) {
            let chunk = *next_chunk;
            *next_chunk += 1;
            if probe != Some(chunk) {
                rendered = render(chunk);
            }
            let path = request_path(self.store, self.batch_id, chunk);
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            let mut bytes = 0;
            if anthropic {
                out.write_all(b"{\"requests\":[")?;
                bytes = 13;
            }
            let row = ChunkRow {
                batch_id: self.batch_id.to_owned(),
                chunk,
                provider: group.0.clone(),
                endpoint: group.1.clone(),
                model: group.2.clone(),
                key: format!("{}-c{chunk}", self.batch_id),
                n_requests: 0,
                bytes,
                state: ChunkState::Planned,
                upload_intent_at: None,
                input_file_id: None,
                create_intent_at: None,
                upstream_id: None,
                upstream_status: None,
                completed: 0,
                failed: 0,
                output_file_id: None,
                error_file_id: None,
                results_url: None,
                errors: None,
                cancel_sent: false,
                input_deleted: false,
            };
            self.open.insert(group.clone(), Open { row, out, anthropic });
        }
        let Some(o) = self.open.get_mut(&group) else { return Ok(()) };
        let (cid, original, bytes) = rendered;
        if anthropic && o.row.n_requests > 0 {
            o.out.write_all(b",")?;
            o.row.bytes += 1;
        }
        o.out.write_all(&bytes)?;
        o.row.bytes += bytes.len() as u64;
        o.row.n_requests += 1;
        self.plan.lines.push(PlannedLine { chunk: o.row.chunk, upstream_cid: cid, line: line_no, custom_id: original });
        Ok(())
    }

    /// A line answered here, without a provider call.
    fn settle(&mut self, line: u64, custom_id: &str, provider: &str, status: u16, body: Value) {
        let (ok, data) = result_line_for(custom_id, status, body, None);
        self.plan.settled.push(ResultRow {
            batch_id: self.batch_id.to_owned(),
            line,
            ok,
            data,
            provider: provider.to_owned(),
            usage: Usage::default(),
        });
    }
}

fn invalid(message: &str) -> Value {
    crate::providers::error_body(message, "invalid_request_error", Value::String("invalid_request".into()))
}
