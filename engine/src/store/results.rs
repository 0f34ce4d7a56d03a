//! Per-line results: the durable progress of a running batch. A line's result is
//! recorded once (the first write wins), in the same transaction that counts it, so a
//! restart resumes exactly the lines that have none.

use std::collections::HashMap;

use rusqlite::params;

use super::providers::{add_results, Usage};
use super::{Result, Store};

#[derive(Debug, Clone)]
pub struct ResultRow {
    pub batch_id: String,
    /// The 1-based line of the input file.
    pub line: u64,
    /// Goes to the output file (2xx) rather than the error file.
    pub ok: bool,
    /// The output or error-file line, JSON without its newline.
    pub data: String,
    /// The line's `provider` (its share of the batch's per-provider counts).
    pub provider: String,
    /// Tokens its answer reports.
    pub usage: Usage,
}

impl Store {
    /// Records results in one transaction and updates the batches' request counts.
    pub fn insert_results(&self, rows: &[ResultRow]) -> Result<()> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let mut counts: HashMap<&str, (i64, i64)> = HashMap::new();
        let mut recorded = Vec::with_capacity(rows.len());
        {
            let mut insert =
                tx.prepare_cached("INSERT OR IGNORE INTO results (batch_id, line, ok, data) VALUES (?1, ?2, ?3, ?4)")?;
            for r in rows {
                if insert.execute(params![r.batch_id, r.line as i64, r.ok, r.data])? == 1 {
                    recorded.push(r);
                    let c = counts.entry(&r.batch_id).or_default();
                    if r.ok {
                        c.0 += 1;
                    } else {
                        c.1 += 1;
                    }
                }
            }
            let mut update =
                tx.prepare_cached("UPDATE batches SET completed = completed + ?1, failed = failed + ?2 WHERE id = ?3")?;
            for (id, (ok, failed)) in counts {
                update.execute(params![ok, failed, id])?;
            }
        }
        add_results(&tx, recorded.into_iter())?;
        tx.commit()?;
        Ok(())
    }

    /// The lines of a batch that already have a result.
    pub fn done_lines(&self, batch_id: &str) -> Result<Vec<u64>> {
        let conn = self.own_reader()?;
        let mut stmt = conn.prepare("SELECT line FROM results WHERE batch_id = ?1")?;
        let lines = stmt
            .query_map(params![batch_id], |r| r.get::<_, i64>(0))?
            .map(|l| l.map(|l| l as u64))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(lines)
    }

    /// Calls `f` with each recorded result line of one kind (output or error), in input order.
    pub fn for_each_result(
        &self,
        batch_id: &str,
        ok: bool,
        mut f: impl FnMut(&str) -> std::io::Result<()>,
    ) -> Result<()> {
        let conn = self.own_reader()?;
        let mut stmt = conn.prepare("SELECT data FROM results WHERE batch_id = ?1 AND ok = ?2 ORDER BY line")?;
        let mut rows = stmt.query(params![batch_id, ok])?;
        while let Some(row) = rows.next()? {
            let data: String = row.get(0)?;
            f(&data)?;
        }
        Ok(())
    }
}
