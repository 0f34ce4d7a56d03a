//! Durable state: SQLite (files, batches, per-line results) in the data directory, and
//! file contents beside it in `files/`.
//!
//! Two connections in WAL mode: one writes, one reads, so status reads never wait behind
//! the results writer's transactions.

mod batches;
mod files;
mod results;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use batches::{BatchRow, CancelRefused, Page, Status};
pub use files::FileRow;
pub use results::ResultRow;

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug)]
pub enum StoreError {
    Sql(rusqlite::Error),
    Io(std::io::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sql(e) => write!(f, "engine database error: {e}"),
            Self::Io(e) => write!(f, "engine storage error: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    num_rows INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    idempotency_key TEXT,
    endpoint TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT,
    errors TEXT,
    output_file_id TEXT,
    error_file_id TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    deadline_ms INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    in_progress_at INTEGER,
    expires_at INTEGER,
    finalizing_at INTEGER,
    completed_at INTEGER,
    failed_at INTEGER,
    expired_at INTEGER,
    cancelling_at INTEGER,
    cancelled_at INTEGER,
    UNIQUE (owner, idempotency_key)
);
CREATE TABLE IF NOT EXISTS results (
    batch_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (batch_id, line)
) WITHOUT ROWID;
";

pub struct Store {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    db_path: PathBuf,
    files_dir: PathBuf,
    /// Held (an OS file lock) while the store is open: one engine per data directory.
    lock: std::fs::File,
}

impl Store {
    /// Opens (or creates) the state in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let files_dir = dir.join("files");
        std::fs::create_dir_all(&files_dir)?;
        // A second engine on the same directory would reclaim the first one's files in
        // progress and run its batches twice: refuse it.
        let lock =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("engine.lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::ResourceBusy,
                    "another engine is using this data directory (stop it first, or use another data_dir)",
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let db = dir.join("engine.sqlite3");
        let writer = Connection::open(&db)?;
        // NORMAL in WAL mode: a committed transaction survives a process kill (SIGKILL),
        // only an OS crash may lose the last ones. That is the durability promised.
        writer.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;")?;
        writer.execute_batch(SCHEMA)?;
        let reader = Connection::open(&db)?;
        reader.execute_batch("PRAGMA busy_timeout=10000;")?;
        let store = Self { writer: Mutex::new(writer), reader: Mutex::new(reader), db_path: db, files_dir, lock };
        store.remove_partial_files()?;
        store.remove_orphan_files()?;
        Ok(store)
    }

    /// Gives up the data directory's lock (the engine stopped): the next engine may open it.
    pub fn release(&self) {
        let _ = self.lock.unlock();
    }

    /// Where a file's content lives.
    pub fn content_path(&self, file_id: &str) -> PathBuf {
        self.files_dir.join(format!("{file_id}.jsonl"))
    }

    /// A temporary path in the files directory (same filesystem, so renames are atomic).
    pub fn temp_path(&self, label: &str) -> PathBuf {
        self.files_dir.join(format!(".partial-{}-{label}", crate::ids::new_id("")))
    }

    /// Uploads or outputs cut short by a crash: never registered, so never visible.
    fn remove_partial_files(&self) -> Result<()> {
        for entry in std::fs::read_dir(&self.files_dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(".partial-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// A connection of its own, for long reads (finalizing) that must not hold up others.
    fn own_reader(&self) -> Result<Connection> {
        let conn = Connection::open(&self.db_path)?;
        conn.execute_batch("PRAGMA busy_timeout=10000;")?;
        Ok(conn)
    }

    /// Content files no record owns: a crash between moving a finished upload or result
    /// file into place and recording it. Nothing can reach them; reclaim the space.
    fn remove_orphan_files(&self) -> Result<()> {
        let known: std::collections::HashSet<String> = {
            let conn = self.reader();
            let mut stmt = conn.prepare("SELECT id FROM files")?;
            let ids = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<_>>()?;
            ids
        };
        for entry in std::fs::read_dir(&self.files_dir)? {
            let path = entry?.path();
            let id = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jsonl"));
            if let Some(id) = id {
                if id.starts_with(crate::ids::FILE_PREFIX) && !known.contains(id) {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(())
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A poisoned lock means a panic mid-call; SQLite rolled the transaction back.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A page of a cursor-paginated listing, newest first.
pub(crate) fn page_bounds(limit: Option<u32>) -> u32 {
    limit.unwrap_or(20).clamp(1, 100)
}
