//! File records. Content lives at `Store::content_path(id)`.

use rusqlite::{params, OptionalExtension, Row};
use serde_json::{json, Value};

use super::{page_bounds, Page, Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub id: String,
    pub owner: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: u64,
    pub num_rows: u64,
    pub created_at: i64,
}

impl FileRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            owner: r.get("owner")?,
            filename: r.get("filename")?,
            purpose: r.get("purpose")?,
            bytes: r.get::<_, i64>("bytes")? as u64,
            num_rows: r.get::<_, i64>("num_rows")? as u64,
            created_at: r.get("created_at")?,
        })
    }

    /// The wire form (OpenAI's file object plus FastRouter's `file_id` and `num_rows`).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "file_id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "num_rows": self.num_rows,
            "status": "processed",
            "status_details": null,
        })
    }
}

const COLUMNS: &str = "id, owner, filename, purpose, bytes, num_rows, created_at";

impl Store {
    pub fn insert_file(&self, f: &FileRow) -> Result<()> {
        insert_file(&self.writer(), f)
    }

    pub fn get_file(&self, owner: &str, id: &str) -> Result<Option<FileRow>> {
        let conn = self.reader();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM files WHERE id = ?1 AND owner = ?2"),
                params![id, owner],
                FileRow::from_row,
            )
            .optional()?;
        Ok(row)
    }

    /// Files newest first, after the cursor `after` (a file id), optionally of one purpose.
    pub fn list_files(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: Option<u32>,
        purpose: Option<&str>,
    ) -> Result<Page<FileRow>> {
        let limit = page_bounds(limit);
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM files WHERE owner = ?1
               AND (?2 IS NULL OR seq < (SELECT seq FROM files WHERE id = ?2 AND owner = ?1))
               AND (?3 IS NULL OR purpose = ?3)
             ORDER BY seq DESC LIMIT ?4"
        ))?;
        let mut items = stmt
            .query_map(params![owner, after, purpose, limit + 1], FileRow::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let has_more = items.len() > limit as usize;
        items.truncate(limit as usize);
        Ok(Page { items, has_more })
    }

    /// The active batch (not yet finished) reading this file, if any.
    pub fn batch_using_file(&self, owner: &str, file_id: &str) -> Result<Option<String>> {
        let conn = self.reader();
        Ok(conn
            .query_row(
                "SELECT id FROM batches WHERE owner = ?1 AND input_file_id = ?2
                   AND status IN ('validating', 'in_progress', 'finalizing', 'cancelling') LIMIT 1",
                params![owner, file_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Forgets the record, then removes the content. Returns false if there was none.
    pub fn delete_file(&self, owner: &str, id: &str) -> Result<bool> {
        let n = self.writer().execute("DELETE FROM files WHERE id = ?1 AND owner = ?2", params![id, owner])?;
        if n > 0 {
            let _ = std::fs::remove_file(self.content_path(id));
        }
        Ok(n > 0)
    }
}

pub(super) fn insert_file(conn: &rusqlite::Connection, f: &FileRow) -> Result<()> {
    conn.execute(
        &format!("INSERT INTO files ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![f.id, f.owner, f.filename, f.purpose, f.bytes as i64, f.num_rows as i64, f.created_at],
    )?;
    Ok(())
}
