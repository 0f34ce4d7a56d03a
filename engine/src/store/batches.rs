//! Batch records and their state machine:
//! validating → in_progress → finalizing → completed, or failed / expired /
//! cancelling → cancelled. Each state's timestamp is set as it is entered.

use rusqlite::{params, OptionalExtension, Row};
use serde_json::{json, Value};

use std::collections::BTreeMap;

use super::files::{insert_file, FileRow};
use super::providers::{set_totals, Usage};
use super::{page_bounds, Result, Store};
use crate::ids::now_secs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Validating,
    InProgress,
    Finalizing,
    Completed,
    Failed,
    Expired,
    Cancelling,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::InProgress => "in_progress",
            Self::Finalizing => "finalizing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Cancelling => "cancelling",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "validating" => Self::Validating,
            "in_progress" => Self::InProgress,
            "finalizing" => Self::Finalizing,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            "cancelling" => Self::Cancelling,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Expired | Self::Cancelled)
    }

    /// The timestamp column set when this state is entered.
    fn entered_at_column(self) -> &'static str {
        match self {
            Self::Validating => "created_at",
            Self::InProgress => "in_progress_at",
            Self::Finalizing => "finalizing_at",
            Self::Completed => "completed_at",
            Self::Failed => "failed_at",
            Self::Expired => "expired_at",
            Self::Cancelling => "cancelling_at",
            Self::Cancelled => "cancelled_at",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub id: String,
    pub owner: String,
    pub endpoint: String,
    pub input_file_id: String,
    pub completion_window: String,
    pub status: Status,
    pub metadata: Option<Value>,
    pub errors: Option<Value>,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
    /// When the batch expires, in ms (the wire's `expires_at` is in seconds).
    pub deadline_ms: i64,
    pub created_at: i64,
    pub in_progress_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub finalizing_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub expired_at: Option<i64>,
    pub cancelling_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    /// Tokens its answers reported so far (summed over its providers).
    pub usage: Usage,
    /// Native mode: what the upstream batches not yet merged report done so far (shown in
    /// `request_counts`; the results themselves arrive when each chunk is merged).
    pub live: (u64, u64),
}

fn json_column(r: &Row<'_>, name: &str) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = r.get(name)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

impl BatchRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let status: String = r.get("status")?;
        Ok(Self {
            id: r.get("id")?,
            owner: r.get("owner")?,
            endpoint: r.get("endpoint")?,
            input_file_id: r.get("input_file_id")?,
            completion_window: r.get("completion_window")?,
            status: Status::parse(&status).unwrap_or(Status::Failed),
            metadata: json_column(r, "metadata")?,
            errors: json_column(r, "errors")?,
            output_file_id: r.get("output_file_id")?,
            error_file_id: r.get("error_file_id")?,
            total: r.get::<_, i64>("total")? as u64,
            completed: r.get::<_, i64>("completed")? as u64,
            failed: r.get::<_, i64>("failed")? as u64,
            deadline_ms: r.get("deadline_ms")?,
            created_at: r.get("created_at")?,
            in_progress_at: r.get("in_progress_at")?,
            expires_at: r.get("expires_at")?,
            finalizing_at: r.get("finalizing_at")?,
            completed_at: r.get("completed_at")?,
            failed_at: r.get("failed_at")?,
            expired_at: r.get("expired_at")?,
            cancelling_at: r.get("cancelling_at")?,
            cancelled_at: r.get("cancelled_at")?,
            usage: Usage::from_columns(r)?,
            live: (
                r.get::<_, Option<i64>>("live_completed")?.unwrap_or(0).max(0) as u64,
                r.get::<_, Option<i64>>("live_failed")?.unwrap_or(0).max(0) as u64,
            ),
        })
    }

    /// The wire form: OpenAI's batch object plus FastRouter's `batch_id`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "batch_id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": self.errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status.as_str(),
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.in_progress_at,
            "expires_at": self.expires_at,
            "finalizing_at": self.finalizing_at,
            "completed_at": self.completed_at,
            "failed_at": self.failed_at,
            "expired_at": self.expired_at,
            "cancelling_at": self.cancelling_at,
            "cancelled_at": self.cancelled_at,
            "request_counts": {
                "total": self.total,
                "completed": self.completed + self.live.0,
                "failed": self.failed + self.live.1,
            },
            "metadata": self.metadata,
            "usage": self.usage.to_json(),
        })
    }
}

/// One page of a listing plus whether more follow.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// Why a cancel was refused.
#[derive(Debug)]
pub enum CancelRefused {
    NotFound,
    Finished(Status),
}

/// Every column, plus the batch's usage: sums over its providers (`Usage::from_columns`).
const SELECT: &str = "SELECT *,
    (SELECT SUM(input_tokens) FROM batch_providers p WHERE p.batch_id = batches.id) AS usage_input,
    (SELECT SUM(cached_tokens) FROM batch_providers p WHERE p.batch_id = batches.id) AS usage_cached,
    (SELECT SUM(output_tokens) FROM batch_providers p WHERE p.batch_id = batches.id) AS usage_output,
    (SELECT SUM(reasoning_tokens) FROM batch_providers p WHERE p.batch_id = batches.id) AS usage_reasoning,
    (SELECT SUM(completed) FROM native_chunks c WHERE c.batch_id = batches.id
        AND c.state NOT IN ('merged', 'skipped')) AS live_completed,
    (SELECT SUM(failed) FROM native_chunks c WHERE c.batch_id = batches.id
        AND c.state NOT IN ('merged', 'skipped')) AS live_failed
    FROM batches";

/// What an `Idempotency-Key` found: the batch it made, made from the same request or not.
#[derive(Debug)]
pub enum Idempotent {
    Same(BatchRow),
    Different(BatchRow),
}

/// The key's batch, if this owner has one, judged against the request's hash (a batch
/// recorded without one, by an earlier version, counts as the same request).
fn by_key(conn: &rusqlite::Connection, owner: &str, key: &str, hash: &str) -> Result<Option<Idempotent>> {
    let found = conn
        .query_row(&format!("{SELECT} WHERE owner = ?1 AND idempotency_key = ?2"), params![owner, key], |r| {
            Ok((BatchRow::from_row(r)?, r.get::<_, Option<String>>("request_hash")?))
        })
        .optional()?;
    Ok(found.map(|(row, stored)| match stored {
        Some(stored) if stored != hash => Idempotent::Different(row),
        _ => Idempotent::Same(row),
    }))
}

impl Store {
    /// The batch an `Idempotency-Key` (with the hash of its request) already made, if any.
    pub fn batch_by_idempotency_key(&self, owner: &str, key: &str, hash: &str) -> Result<Option<Idempotent>> {
        by_key(&self.reader(), owner, key, hash)
    }

    /// Records a new batch, unless `idempotency` (key, request hash) names one this owner
    /// already made: then that one is returned instead (`Err`), nothing new made.
    pub fn insert_batch(
        &self,
        b: &BatchRow,
        idempotency: Option<(&str, &str)>,
    ) -> Result<std::result::Result<BatchRow, Idempotent>> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        if let Some((key, hash)) = idempotency {
            if let Some(existing) = by_key(&tx, &b.owner, key, hash)? {
                return Ok(Err(existing));
            }
        }
        tx.execute(
            "INSERT INTO batches (id, owner, idempotency_key, request_hash, endpoint, input_file_id,
                completion_window, status, metadata, deadline_ms, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                b.id,
                b.owner,
                idempotency.map(|(key, _)| key),
                idempotency.map(|(_, hash)| hash),
                b.endpoint,
                b.input_file_id,
                b.completion_window,
                b.status.as_str(),
                b.metadata.as_ref().map(Value::to_string),
                b.deadline_ms,
                b.created_at,
                b.expires_at,
            ],
        )?;
        tx.commit()?;
        Ok(Ok(b.clone()))
    }

    pub fn get_batch(&self, owner: &str, id: &str) -> Result<Option<BatchRow>> {
        let conn = self.reader();
        Ok(conn
            .query_row(&format!("{SELECT} WHERE id = ?1 AND owner = ?2"), params![id, owner], BatchRow::from_row)
            .optional()?)
    }

    /// A batch whoever owns it (the engine's own view).
    pub fn batch(&self, id: &str) -> Result<Option<BatchRow>> {
        let conn = self.reader();
        Ok(conn.query_row(&format!("{SELECT} WHERE id = ?1"), params![id], BatchRow::from_row).optional()?)
    }

    pub fn list_batches(&self, owner: &str, after: Option<&str>, limit: Option<u32>) -> Result<Page<BatchRow>> {
        let limit = page_bounds(limit);
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "{SELECT} WHERE owner = ?1
               AND (?2 IS NULL OR seq < (SELECT seq FROM batches WHERE id = ?2 AND owner = ?1))
             ORDER BY seq DESC LIMIT ?3"
        ))?;
        let mut items = stmt
            .query_map(params![owner, after, limit + 1], BatchRow::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let has_more = items.len() > limit as usize;
        items.truncate(limit as usize);
        Ok(Page { items, has_more })
    }

    /// Batches that were running when the engine last stopped.
    pub fn unfinished_batches(&self) -> Result<Vec<String>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT id FROM batches WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling')
             ORDER BY seq",
        )?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// Moves a batch from one of `from` to `to`, stamping `to`'s time. False if the
    /// batch was no longer in one of `from` (a cancel got there first, say).
    pub fn transition(&self, id: &str, from: &[Status], to: Status) -> Result<bool> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let sql = format!(
            "UPDATE batches SET status = ?1, {col} = ?2 WHERE id = ?3 AND status IN (SELECT value FROM json_each(?4))",
            col = to.entered_at_column()
        );
        let n = self
            .writer()?
            .execute(&sql, params![to.as_str(), now_secs(), id, serde_json::to_string(&from).unwrap_or_default()])?;
        Ok(n == 1)
    }

    /// validating → in_progress, recording how many requests the file holds, in all and
    /// per provider.
    pub fn start_progress(&self, id: &str, total: u64, per_provider: &BTreeMap<String, u64>) -> Result<bool> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE batches SET status = 'in_progress', in_progress_at = ?1, total = ?2
             WHERE id = ?3 AND status = 'validating'",
            params![now_secs(), total as i64, id],
        )?;
        if n == 1 {
            set_totals(&tx, id, per_provider)?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// validating → failed, with the reasons (`errors.data`).
    pub fn fail_validation(&self, id: &str, errors: &Value) -> Result<bool> {
        let n = self.writer()?.execute(
            "UPDATE batches SET status = 'failed', failed_at = ?1, errors = ?2 WHERE id = ?3 AND status = 'validating'",
            params![now_secs(), errors.to_string(), id],
        )?;
        Ok(n == 1)
    }

    /// Asks a running batch to stop. Returns the batch as it now is.
    pub fn request_cancel(&self, owner: &str, id: &str) -> Result<std::result::Result<BatchRow, CancelRefused>> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let Some(row) = tx
            .query_row(&format!("{SELECT} WHERE id = ?1 AND owner = ?2"), params![id, owner], BatchRow::from_row)
            .optional()?
        else {
            return Ok(Err(CancelRefused::NotFound));
        };
        match row.status {
            Status::Validating | Status::InProgress => {
                tx.execute(
                    "UPDATE batches SET status = 'cancelling', cancelling_at = ?1 WHERE id = ?2",
                    params![now_secs(), id],
                )?;
            }
            Status::Cancelling | Status::Cancelled => {}
            other => return Ok(Err(CancelRefused::Finished(other))),
        }
        let row = tx.query_row(&format!("{SELECT} WHERE id = ?1"), params![id], BatchRow::from_row)?;
        tx.commit()?;
        Ok(Ok(row))
    }

    /// Ends a batch in one transaction: registers its output and error files, sets the
    /// final state, counts the `unrun` lines as failed and drops the per-line results
    /// the files now hold.
    pub fn finish(
        &self,
        id: &str,
        from: &[Status],
        to: Status,
        output: Option<&FileRow>,
        error: Option<&FileRow>,
        unrun: u64,
    ) -> Result<bool> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let n = tx.execute(
            &format!(
                "UPDATE batches SET status = ?1, {col} = ?2, output_file_id = ?3, error_file_id = ?4,
                    failed = failed + ?7
                 WHERE id = ?5 AND status IN (SELECT value FROM json_each(?6))",
                col = to.entered_at_column()
            ),
            params![
                to.as_str(),
                now_secs(),
                output.map(|f| f.id.as_str()),
                error.map(|f| f.id.as_str()),
                id,
                serde_json::to_string(&from).unwrap_or_default(),
                unrun as i64,
            ],
        )?;
        if n == 0 {
            return Ok(false);
        }
        for f in [output, error].into_iter().flatten() {
            insert_file(&tx, f)?;
        }
        tx.execute("DELETE FROM results WHERE batch_id = ?1", params![id])?;
        tx.commit()?;
        Ok(true)
    }
}
