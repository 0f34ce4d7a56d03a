//! Each batch's progress and token usage per provider: the dashboard's breakdown, the
//! batch's `usage`, and the queue depth `/metrics` reports. Kept in `batch_providers`, in
//! the same transactions as the batch's own counts, so both always agree and survive a
//! restart. Unlike per-line results, these rows stay once the batch is finished.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Transaction};
use serde_json::{json, Value};

use super::{Result, ResultRow, Store};

/// Tokens reported by the providers' answers (OpenAI's `usage` names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    /// What an OpenAI-shaped answer body reports: a chat completion's prompt and
    /// completion tokens (and their cached / reasoning details), an embedding list's prompt
    /// tokens. Nothing for a body without `usage` (most errors).
    pub fn of_body(body: &Value) -> Self {
        let usage = &body["usage"];
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        Self {
            input_tokens: n(&usage["prompt_tokens"]),
            cached_tokens: n(&usage["prompt_tokens_details"]["cached_tokens"]),
            output_tokens: n(&usage["completion_tokens"]),
            reasoning_tokens: n(&usage["completion_tokens_details"]["reasoning_tokens"]),
        }
    }

    pub fn add(&mut self, other: &Self) {
        self.input_tokens += other.input_tokens;
        self.cached_tokens += other.cached_tokens;
        self.output_tokens += other.output_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
    }

    /// The wire form: OpenAI's `BatchUsage`.
    pub fn to_json(&self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        })
    }

    /// Read from the `usage_*` columns a batch query adds (sums over its providers).
    pub(super) fn from_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let n = |name: &str| r.get::<_, Option<i64>>(name).map(|v| v.unwrap_or(0).max(0) as u64);
        Ok(Self {
            input_tokens: n("usage_input")?,
            cached_tokens: n("usage_cached")?,
            output_tokens: n("usage_output")?,
            reasoning_tokens: n("usage_reasoning")?,
        })
    }
}

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batch_providers (
    batch_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, provider)
) WITHOUT ROWID;
";

/// One provider's share of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCounts {
    pub provider: String,
    /// Requests of this provider in the input file.
    pub total: u64,
    pub completed: u64,
    /// Lines that got an error answer (or none after their retries). Lines never run
    /// (the batch was cancelled or expired first) are `total - completed - failed` once
    /// the batch is finished; the batch's own `failed` counts them too.
    pub failed: u64,
    pub usage: Usage,
}

impl ProviderCounts {
    pub fn to_json(&self) -> Value {
        json!({
            "provider": self.provider,
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "usage": self.usage.to_json(),
        })
    }
}

/// Records how many requests each provider has in a batch (as validation counted them).
pub(super) fn set_totals(tx: &Transaction<'_>, batch_id: &str, totals: &BTreeMap<String, u64>) -> Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO batch_providers (batch_id, provider, total) VALUES (?1, ?2, ?3)
         ON CONFLICT (batch_id, provider) DO UPDATE SET total = excluded.total",
    )?;
    for (provider, total) in totals {
        upsert.execute(params![batch_id, provider, *total as i64])?;
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    completed: i64,
    failed: i64,
    usage: Usage,
}

/// Adds newly recorded results to their providers' counts and usage.
pub(super) fn add_results<'a>(tx: &Transaction<'_>, recorded: impl Iterator<Item = &'a ResultRow>) -> Result<()> {
    let mut tallies: HashMap<(&str, &str), Tally> = HashMap::new();
    for r in recorded {
        let t = tallies.entry((&r.batch_id, &r.provider)).or_default();
        if r.ok {
            t.completed += 1;
        } else {
            t.failed += 1;
        }
        t.usage.add(&r.usage);
    }
    for ((batch_id, provider), t) in tallies {
        add_tally(tx, batch_id, provider, t.completed, t.failed, &t.usage)?;
    }
    Ok(())
}

/// Adds one provider's newly recorded results to a batch's breakdown.
pub(super) fn add_tally(
    tx: &Transaction<'_>,
    batch_id: &str,
    provider: &str,
    completed: i64,
    failed: i64,
    u: &Usage,
) -> Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO batch_providers (batch_id, provider, completed, failed, input_tokens, cached_tokens,
            output_tokens, reasoning_tokens) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (batch_id, provider) DO UPDATE SET completed = completed + excluded.completed,
            failed = failed + excluded.failed, input_tokens = input_tokens + excluded.input_tokens,
            cached_tokens = cached_tokens + excluded.cached_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens",
    )?;
    upsert.execute(params![
        batch_id,
        provider,
        completed,
        failed,
        u.input_tokens as i64,
        u.cached_tokens as i64,
        u.output_tokens as i64,
        u.reasoning_tokens as i64
    ])?;
    Ok(())
}

impl Store {
    /// A batch's providers, by name. Empty while it is validating (or if it failed validation).
    pub fn provider_counts(&self, batch_id: &str) -> Result<Vec<ProviderCounts>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT provider, total, completed, failed, input_tokens, cached_tokens, output_tokens, reasoning_tokens
             FROM batch_providers WHERE batch_id = ?1 ORDER BY provider",
        )?;
        let rows = stmt.query_map(params![batch_id], |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok(ProviderCounts {
                provider: r.get(0)?,
                total: n(1)?,
                completed: n(2)?,
                failed: n(3)?,
                usage: Usage {
                    input_tokens: n(4)?,
                    cached_tokens: n(5)?,
                    output_tokens: n(6)?,
                    reasoning_tokens: n(7)?,
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Lines of running batches still without a result, per provider (every owner's).
    pub fn pending_by_provider(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT p.provider, SUM(MAX(p.total - p.completed - p.failed, 0)) FROM batch_providers p
             JOIN batches b ON b.id = p.batch_id WHERE b.status = 'in_progress'
             GROUP BY p.provider ORDER BY p.provider",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// How many batches are in each status (every owner's).
    pub fn batches_by_status(&self) -> Result<Vec<(String, u64)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM batches GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
