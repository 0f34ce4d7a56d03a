//! Native mode's journal: each batch's plan (chunks and which input line each upstream
//! custom_id stands for) and every chunk's progress through the provider's batch API.
//! Every step that touches a provider is recorded before (intent) and after (its id), so a
//! restart at any point finds what was done and never creates an upstream batch twice.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Row};
use serde_json::{json, Value};

use super::providers::{add_tally, Usage};
use super::{Result, ResultRow, Store};
use crate::ids::now_ms;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS native_plans (
    batch_id TEXT PRIMARY KEY,
    planned_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS native_chunks (
    batch_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    provider TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    n_requests INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    state TEXT NOT NULL,
    upload_intent_at INTEGER,
    input_file_id TEXT,
    create_intent_at INTEGER,
    upstream_id TEXT,
    upstream_status TEXT,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    output_file_id TEXT,
    error_file_id TEXT,
    results_url TEXT,
    errors TEXT,
    cancel_sent INTEGER NOT NULL DEFAULT 0,
    input_deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, chunk)
) WITHOUT ROWID;
-- Creates in doubt, looked up before every Anthropic create (native::submit).
CREATE INDEX IF NOT EXISTS native_chunks_creating ON native_chunks (provider, n_requests) WHERE state = 'creating';
CREATE TABLE IF NOT EXISTS native_lines (
    batch_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    upstream_cid TEXT NOT NULL,
    line INTEGER NOT NULL,
    custom_id TEXT,
    PRIMARY KEY (batch_id, chunk, upstream_cid)
) WITHOUT ROWID;
";

/// Where a chunk is in its life. Each state is durable before the next provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    /// Its request file is written; nothing sent yet (OpenAI: maybe an upload in flight).
    Planned,
    /// OpenAI: the input file is uploaded (`input_file_id`).
    Uploaded,
    /// A create was (maybe) sent: before creating again, look upstream for it.
    Creating,
    /// The upstream batch exists (`upstream_id`) and is being polled.
    Submitted,
    /// The upstream batch ended and its results are downloaded.
    Ended,
    /// Its results are in the batch's results (one transaction with this state).
    Merged,
    /// Never created (the batch was cancelled or expired first): its lines did not run.
    Skipped,
}

impl ChunkState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Uploaded => "uploaded",
            Self::Creating => "creating",
            Self::Submitted => "submitted",
            Self::Ended => "ended",
            Self::Merged => "merged",
            Self::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "planned" => Self::Planned,
            "uploaded" => Self::Uploaded,
            "creating" => Self::Creating,
            "submitted" => Self::Submitted,
            "ended" => Self::Ended,
            "merged" => Self::Merged,
            _ => Self::Skipped,
        }
    }

    /// Nothing more will happen upstream or here.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Merged | Self::Skipped)
    }
}

/// One chunk: one upstream batch's worth of a batch's lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    pub batch_id: String,
    pub chunk: u32,
    /// `openai` (every OpenAI-compatible line) or `anthropic`.
    pub provider: String,
    pub endpoint: String,
    /// The upstream model (OpenAI: one per file); empty for Anthropic chunks.
    pub model: String,
    /// Names the chunk upstream: OpenAI file name and `metadata.fr_chunk`, Anthropic
    /// surrogate custom_id prefix.
    pub key: String,
    pub n_requests: u64,
    pub bytes: u64,
    pub state: ChunkState,
    /// When the upload / create was (about to be) sent, in ms.
    pub upload_intent_at: Option<i64>,
    pub input_file_id: Option<String>,
    pub create_intent_at: Option<i64>,
    pub upstream_id: Option<String>,
    /// The provider's own status word (`in_progress`, `canceling`, `completed`...).
    pub upstream_status: Option<String>,
    /// Live counts as the provider reports them (OpenAI while running, Anthropic at the end).
    pub completed: u64,
    pub failed: u64,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    pub results_url: Option<String>,
    /// Why the upstream batch failed as a whole (`errors.data[0]`: code and message).
    pub errors: Option<Value>,
    pub cancel_sent: bool,
    pub input_deleted: bool,
}

impl ChunkRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let state: String = r.get("state")?;
        let errors: Option<String> = r.get("errors")?;
        Ok(Self {
            batch_id: r.get("batch_id")?,
            chunk: r.get("chunk")?,
            provider: r.get("provider")?,
            endpoint: r.get("endpoint")?,
            model: r.get("model")?,
            key: r.get("key")?,
            n_requests: r.get::<_, i64>("n_requests")? as u64,
            bytes: r.get::<_, i64>("bytes")? as u64,
            state: ChunkState::parse(&state),
            upload_intent_at: r.get("upload_intent_at")?,
            input_file_id: r.get("input_file_id")?,
            create_intent_at: r.get("create_intent_at")?,
            upstream_id: r.get("upstream_id")?,
            upstream_status: r.get("upstream_status")?,
            completed: r.get::<_, i64>("completed")? as u64,
            failed: r.get::<_, i64>("failed")? as u64,
            output_file_id: r.get("output_file_id")?,
            error_file_id: r.get("error_file_id")?,
            results_url: r.get("results_url")?,
            errors: errors.and_then(|e| serde_json::from_str(&e).ok()),
            cancel_sent: r.get("cancel_sent")?,
            input_deleted: r.get("input_deleted")?,
        })
    }

    /// The dashboard's row (`upstream_batches` of the batch object).
    pub fn to_json(&self) -> Value {
        json!({
            "provider": self.provider,
            "chunk": self.chunk,
            "model": (!self.model.is_empty()).then_some(&self.model),
            "id": self.upstream_id,
            "status": self.upstream_status.as_deref().unwrap_or(self.state.as_str()),
            "state": self.state.as_str(),
            "request_counts": {"total": self.n_requests, "completed": self.completed, "failed": self.failed},
        })
    }
}

/// One upstream custom_id of a plan: the input line it stands for, and the original
/// custom_id when the upstream one is a surrogate.
#[derive(Debug, Clone)]
pub struct PlannedLine {
    pub chunk: u32,
    pub upstream_cid: String,
    pub line: u64,
    pub custom_id: Option<String>,
}

/// Inserts results inside a chunk's merge transaction, looking up each upstream custom_id.
pub struct MergeSink<'a> {
    lookup: rusqlite::CachedStatement<'a>,
    insert: rusqlite::CachedStatement<'a>,
    batch_id: String,
    chunk: u32,
    /// Per provider: (completed, failed, usage) of the results recorded so far.
    tallies: HashMap<String, (i64, i64, Usage)>,
}

impl MergeSink<'_> {
    /// The input line and original custom_id behind an upstream custom_id of this chunk.
    pub fn resolve(&mut self, upstream_cid: &str) -> Result<Option<(u64, String)>> {
        let found = self
            .lookup
            .query_row(params![self.batch_id, self.chunk, upstream_cid], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<String>>(1)?))
            })
            .optional()?;
        Ok(found.map(|(line, original)| (line, original.unwrap_or_else(|| upstream_cid.to_owned()))))
    }

    /// Records one line's result; a line that already has one keeps it (first wins).
    pub fn put(&mut self, row: &ResultRow) -> Result<()> {
        if self.insert.execute(params![row.batch_id, row.line as i64, row.ok, row.data])? == 1 {
            let t = self.tallies.entry(row.provider.clone()).or_default();
            if row.ok {
                t.0 += 1;
            } else {
                t.1 += 1;
            }
            t.2.add(&row.usage);
        }
        Ok(())
    }
}

const CHUNK_SELECT: &str = "SELECT * FROM native_chunks";

impl Store {
    /// Whether a batch's plan is stored.
    pub fn native_planned(&self, batch_id: &str) -> Result<bool> {
        let conn = self.reader();
        let n: i64 =
            conn.query_row("SELECT COUNT(*) FROM native_plans WHERE batch_id = ?1", params![batch_id], |r| r.get(0))?;
        Ok(n > 0)
    }

    /// Stores a whole plan in one transaction (nothing if one is stored already).
    pub fn save_plan(&self, batch_id: &str, chunks: &[ChunkRow], lines: &[PlannedLine]) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO native_plans (batch_id, planned_at) VALUES (?1, ?2)",
            params![batch_id, now_ms()],
        )?;
        if n == 0 {
            return Ok(());
        }
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO native_chunks (batch_id, chunk, provider, endpoint, model, key, n_requests, bytes, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for c in chunks {
                insert.execute(params![
                    batch_id,
                    c.chunk,
                    c.provider,
                    c.endpoint,
                    c.model,
                    c.key,
                    c.n_requests as i64,
                    c.bytes as i64,
                    c.state.as_str()
                ])?;
            }
            let mut insert = tx.prepare_cached(
                "INSERT INTO native_lines (batch_id, chunk, upstream_cid, line, custom_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for l in lines {
                insert.execute(params![batch_id, l.chunk, l.upstream_cid, l.line as i64, l.custom_id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A batch's chunks, in plan order.
    pub fn chunks(&self, batch_id: &str) -> Result<Vec<ChunkRow>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!("{CHUNK_SELECT} WHERE batch_id = ?1 ORDER BY chunk"))?;
        let rows = stmt.query_map(params![batch_id], ChunkRow::from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Persists a chunk's progress (every column that changes after planning).
    pub fn save_chunk(&self, c: &ChunkRow) -> Result<()> {
        self.writer()?.execute(
            "UPDATE native_chunks SET state = ?3, upload_intent_at = ?4, input_file_id = ?5, create_intent_at = ?6,
                upstream_id = ?7, upstream_status = ?8, completed = ?9, failed = ?10, output_file_id = ?11,
                error_file_id = ?12, results_url = ?13, errors = ?14, cancel_sent = ?15, input_deleted = ?16
             WHERE batch_id = ?1 AND chunk = ?2",
            params![
                c.batch_id,
                c.chunk,
                c.state.as_str(),
                c.upload_intent_at,
                c.input_file_id,
                c.create_intent_at,
                c.upstream_id,
                c.upstream_status,
                c.completed as i64,
                c.failed as i64,
                c.output_file_id,
                c.error_file_id,
                c.results_url,
                c.errors.as_ref().map(Value::to_string),
                c.cancel_sent,
                c.input_deleted,
            ],
        )?;
        Ok(())
    }

    /// Another chunk like `c` (its provider and request count, of a batch still running)
    /// whose create is in doubt since `since` (ms) or later: created upstream or not, its
    /// upstream id unknown.
    pub fn other_create_in_doubt(&self, c: &ChunkRow, since: i64) -> Result<bool> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM native_chunks c JOIN batches b ON b.id = c.batch_id
             WHERE c.state = 'creating' AND c.provider = ?1 AND c.n_requests = ?2
             AND NOT (c.batch_id = ?3 AND c.chunk = ?4) AND c.create_intent_at >= ?5
             AND b.status IN ('in_progress', 'cancelling'))",
        )?;
        let n = c.n_requests as i64;
        Ok(stmt.query_row(params![c.provider, n, c.batch_id, c.chunk, since], |r| r.get::<_, bool>(0))?)
    }

    /// Upstream batch ids some chunk (of any batch) already owns: recovery never adopts them.
    pub fn claimed_upstream_ids(&self, provider: &str) -> Result<std::collections::HashSet<String>> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached("SELECT upstream_id FROM native_chunks WHERE provider = ?1 AND upstream_id IS NOT NULL")?;
        let ids = stmt.query_map(params![provider], |r| r.get::<_, String>(0))?;
        Ok(ids.collect::<rusqlite::Result<_>>()?)
    }

    /// A chunk's line map: upstream custom_id → (input line, original custom_id if it differs).
    pub fn chunk_map(&self, batch_id: &str, chunk: u32) -> Result<HashMap<String, (u64, Option<String>)>> {
        let conn = self.own_reader()?;
        let mut stmt =
            conn.prepare("SELECT upstream_cid, line, custom_id FROM native_lines WHERE batch_id = ?1 AND chunk = ?2")?;
        let rows = stmt.query_map(params![batch_id, chunk], |r| {
            Ok((r.get::<_, String>(0)?, (r.get::<_, i64>(1)? as u64, r.get::<_, Option<String>>(2)?)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets a finished plan's line map (its chunks stay, for the batch page).
    pub fn drop_native_lines(&self, batch_id: &str) -> Result<()> {
        self.writer()?.execute("DELETE FROM native_lines WHERE batch_id = ?1", params![batch_id])?;
        Ok(())
    }

    /// Calls `f` with each planned line of a chunk: (input line, original custom_id).
    pub fn for_each_chunk_line(
        &self,
        batch_id: &str,
        chunk: u32,
        mut f: impl FnMut(u64, &str) -> Result<()>,
    ) -> Result<()> {
        let conn = self.own_reader()?;
        let mut stmt = conn.prepare(
            "SELECT line, COALESCE(custom_id, upstream_cid) FROM native_lines WHERE batch_id = ?1 AND chunk = ?2
             ORDER BY line",
        )?;
        let mut rows = stmt.query(params![batch_id, chunk])?;
        while let Some(r) = rows.next()? {
            f(r.get::<_, i64>(0)? as u64, &r.get::<_, String>(1)?)?;
        }
        Ok(())
    }

    /// Merges one chunk: `fill` puts its results through the sink, and the chunk is marked
    /// merged in the same transaction, so a crash mid-merge leaves nothing half done (the
    /// merge then runs again from the start) and a finished merge never runs twice.
    pub fn merge_chunk(&self, c: &ChunkRow, fill: impl FnOnce(&mut MergeSink<'_>) -> Result<()>) -> Result<bool> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let state: Option<String> = tx
            .query_row(
                "SELECT state FROM native_chunks WHERE batch_id = ?1 AND chunk = ?2",
                params![c.batch_id, c.chunk],
                |r| r.get(0),
            )
            .optional()?;
        if state.as_deref() != Some(ChunkState::Ended.as_str()) {
            return Ok(false);
        }
        let tallies = {
            let mut sink = MergeSink {
                lookup: tx.prepare_cached(
                    "SELECT line, custom_id FROM native_lines WHERE batch_id = ?1 AND chunk = ?2 AND upstream_cid = ?3",
                )?,
                insert: tx.prepare_cached(
                    "INSERT OR IGNORE INTO results (batch_id, line, ok, data) VALUES (?1, ?2, ?3, ?4)",
                )?,
                batch_id: c.batch_id.clone(),
                chunk: c.chunk,
                tallies: HashMap::new(),
            };
            fill(&mut sink)?;
            sink.tallies
        };
        for (provider, (completed, failed, usage)) in tallies {
            tx.execute(
                "UPDATE batches SET completed = completed + ?1, failed = failed + ?2 WHERE id = ?3",
                params![completed, failed, c.batch_id],
            )?;
            add_tally(&tx, &c.batch_id, &provider, completed, failed, &usage)?;
        }
        tx.execute(
            "UPDATE native_chunks SET state = 'merged' WHERE batch_id = ?1 AND chunk = ?2",
            params![c.batch_id, c.chunk],
        )?;
        tx.commit()?;
        Ok(true)
    }
}
