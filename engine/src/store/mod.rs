//! Durable state: SQLite (files, batches, per-line results) in the data directory, and
//! file contents beside it in `files/`.
//!
//! Two connections in WAL mode: one writes, one reads, so status reads never wait behind
//! the results writer's transactions.

mod batches;
mod files;
mod native;
mod providers;
mod results;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use batches::{BatchRow, CancelRefused, Idempotent, Page, Status};
pub use files::FileRow;
pub use native::{ChunkRow, ChunkState, MergeSink, PlannedLine};
pub use providers::{ProviderCounts, Usage};
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

impl StoreError {
    /// The disk (or the user's quota) is full: the write may succeed once space is freed.
    pub fn is_full(&self) -> bool {
        match self {
            Self::Sql(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            Self::Io(e) => is_full(e),
            _ => false,
        }
    }
}

fn simulated_full() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device (simulated)")
}

/// ENOSPC or EDQUOT (Linux), whatever `ErrorKind` the standard library files them under.
pub fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28 | 122))
}

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
    request_hash TEXT,
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
-- A rowid table (not WITHOUT ROWID): its rows are large (a whole answer) and arrive in no
-- order (native mode merges shuffled upstream results), and appending them to the rowid
-- tree with a small key index costs a third of inserting them into a tree keyed by line.
CREATE TABLE IF NOT EXISTS results (
    batch_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (batch_id, line)
);
";

pub struct Store {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    db_path: PathBuf,
    files_dir: PathBuf,
    /// Held (an OS file lock) while the store is open: one engine per data directory.
    lock: std::fs::File,
    /// Fault injection for tests: while set, database writes / content-file writes fail
    /// as on a full disk.
    simulated_full_database: AtomicBool,
    simulated_full_files: AtomicBool,
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
        writer.execute_batch(providers::SCHEMA)?;
        writer.execute_batch(native::SCHEMA)?;
        migrate(&writer)?;
        let reader = Connection::open(&db)?;
        reader.execute_batch("PRAGMA busy_timeout=10000;")?;
        let store = Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            db_path: db,
            files_dir,
            lock,
            simulated_full_database: AtomicBool::new(false),
            simulated_full_files: AtomicBool::new(false),
        };
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

    /// Where native mode keeps a batch's chunk files (requests sent, results downloaded).
    pub fn native_dir(&self, batch_id: &str) -> PathBuf {
        self.files_dir.join("native").join(batch_id)
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

    /// The connection that writes; every database write goes through here.
    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        if self.simulated_full_database.load(Ordering::Relaxed) {
            return Err(StoreError::Io(simulated_full()));
        }
        // A poisoned lock means a panic mid-call; SQLite rolled the transaction back.
        Ok(self.writer.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fault injection for tests: while `database` (`files`) is set, database writes
    /// (content-file writes: uploads, result files) fail as on a full disk.
    pub fn simulate_full_disk(&self, database: bool, files: bool) {
        self.simulated_full_database.store(database, Ordering::Relaxed);
        self.simulated_full_files.store(files, Ordering::Relaxed);
    }

    /// Called before writing content files: fails while a full disk is simulated for
    /// them, and is a no-op otherwise (the real write then reports any real error).
    pub fn check_space(&self) -> std::io::Result<()> {
        if self.simulated_full_files.load(Ordering::Relaxed) {
            return Err(simulated_full());
        }
        Ok(())
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Brings a data directory made by an earlier version up to the schema above.
fn migrate(conn: &Connection) -> Result<()> {
    let has_request_hash: bool =
        conn.query_row("SELECT COUNT(*) FROM pragma_table_info('batches') WHERE name = 'request_hash'", [], |r| {
            r.get(0)
        })?;
    if !has_request_hash {
        // Batches made before it have no hash: a reused key then answers them as before.
        conn.execute_batch("ALTER TABLE batches ADD COLUMN request_hash TEXT")?;
    }
    Ok(())
}

/// A page of a cursor-paginated listing, newest first.
pub(crate) fn page_bounds(limit: Option<u32>) -> u32 {
    limit.unwrap_or(20).clamp(1, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory from before `request_hash` opens; its keyed batches still replay.
    #[test]
    fn an_older_database_gains_the_request_hash_column() {
        let dir = tempfile::tempdir().unwrap();
        {
            let old = Connection::open(dir.path().join("engine.sqlite3")).unwrap();
            old.execute_batch(&SCHEMA.replace("    request_hash TEXT,\n", "")).unwrap();
            old.execute(
                "INSERT INTO batches (id, owner, idempotency_key, endpoint, input_file_id, completion_window, status,
                    deadline_ms, created_at) VALUES ('fr_batch-old', 'o', 'k', '/v1/embeddings', 'file-x', '24h', 'completed', 0, 0)",
                [],
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        match store.batch_by_idempotency_key("o", "k", "any-hash").unwrap() {
            Some(Idempotent::Same(row)) => assert_eq!(row.id, "fr_batch-old"),
            other => panic!("{other:?}"),
        }
        drop(store);
        // Opening again (the column now there) is fine too.
        Store::open(dir.path()).unwrap();
    }
}
