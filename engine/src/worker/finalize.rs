//! Ending a batch: the recorded results become the output file (2xx) and the error file
//! (everything else, plus one line for each request that never ran when the batch was
//! cancelled or expired). Files are written aside and registered with the final state in
//! one transaction, so a crash here just means finalizing again.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use fastrouter_batch_core::jsonl::blocks::{
    count_lines, for_each_line, is_blank, strip_bom, BlockReader, Chunk, DEFAULT_BLOCK_SIZE,
};

use super::lines::not_run_line;
use super::Ctx;
use crate::ids::{new_id, now_secs, FILE_PREFIX};
use crate::providers::LineRequest;
use crate::store::{BatchRow, FileRow, Status, Store};

pub async fn finalize(ctx: &Ctx, row: &BatchRow, to: Status) -> Result<(), String> {
    ctx.writer.flush(&row.id).await?;
    let (store, row, max_line) = (ctx.store.clone(), row.clone(), ctx.cfg.limits.max_line_bytes as usize);
    tokio::task::spawn_blocking(move || write_files(&store, &row, to, max_line)).await.map_err(|e| e.to_string())?
}

/// Why lines without a result did not run. A batch cancelled before it started (still
/// validating) ran nothing and lists nothing, like the hosted service: its counts stay 0.
/// A completed batch has a result for every line; should one be missing all the same (a
/// result lost to a storage error, a bug), the line is listed rather than left out.
fn not_run_reason(store: &Store, row: &BatchRow, to: Status) -> Result<Option<(&'static str, &'static str)>, String> {
    if row.in_progress_at.is_none() {
        return Ok(None);
    }
    Ok(match to {
        Status::Expired => {
            Some(("batch_expired", "This request could not be executed before the completion window expired."))
        }
        Status::Cancelled => {
            Some(("batch_cancelled", "This request was not executed because the batch was cancelled."))
        }
        Status::Completed => {
            let now = store.batch(&row.id).map_err(|e| e.to_string())?;
            now.filter(|b| b.completed + b.failed < b.total)
                .map(|_| ("request_not_run", "This request was not executed: its result was lost. Submit it again."))
        }
        _ => None,
    })
}

fn write_files(store: &Store, row: &BatchRow, to: Status, max_line: usize) -> Result<(), String> {
    let from = [row.status];
    let out = Output::new(store, "output");
    let err = Output::new(store, "error");
    let (mut out, mut err) = (out.map_err(|e| e.to_string())?, err.map_err(|e| e.to_string())?);
    store.for_each_result(&row.id, true, |l| out.push(l)).map_err(|e| e.to_string())?;
    store.for_each_result(&row.id, false, |l| err.push(l)).map_err(|e| e.to_string())?;
    let mut unrun = 0;
    if let Some((code, message)) = not_run_reason(store, row, to)? {
        let done: HashSet<u64> = store.done_lines(&row.id).map_err(|e| e.to_string())?.into_iter().collect();
        let input = store.content_path(&row.input_file_id);
        for_each_unrun(&input, max_line, &done, |custom_id| {
            unrun += 1;
            err.push(&not_run_line(custom_id, code, message).to_string())
        })
        .map_err(|e| format!("cannot read the input file: {e}"))?;
    }
    let output = out.register(store, row, "output").map_err(|e| e.to_string())?;
    let error = err.register(store, row, "error").map_err(|e| e.to_string())?;
    let finished =
        store.finish(&row.id, &from, to, output.as_ref(), error.as_ref(), unrun).map_err(|e| e.to_string())?;
    if !finished {
        // The state moved meanwhile (a cancel beat an expiry, say): these files belong
        // to no batch. The run loop finalizes again from the new state.
        for f in output.iter().chain(error.iter()) {
            let _ = std::fs::remove_file(store.content_path(&f.id));
        }
    }
    Ok(())
}

/// Calls `f` with the custom_id of each request line that has no result.
fn for_each_unrun(
    path: &Path,
    max_line: usize,
    done: &HashSet<u64>,
    mut f: impl FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut reader = BlockReader::new(File::open(path)?, DEFAULT_BLOCK_SIZE, max_line);
    let mut line_no = 0u64;
    while let Some(chunk) = reader.next_chunk()? {
        let Chunk::Lines(block) = chunk else {
            line_no += 1;
            continue;
        };
        let mut result = Ok(());
        for_each_line(&block, |i, line| {
            let n = line_no + i as u64 + 1;
            let line = if n == 1 { strip_bom(line) } else { line };
            if result.is_ok() && !is_blank(line) && !done.contains(&n) {
                let id = LineRequest::parse(line).map(|r| r.custom_id).unwrap_or_default();
                result = f(&id);
            }
        });
        result?;
        line_no += count_lines(&block);
    }
    Ok(())
}

/// A result file being written aside.
struct Output {
    temp: PathBuf,
    file: BufWriter<File>,
    lines: u64,
    bytes: u64,
}

impl Output {
    fn new(store: &Store, label: &str) -> std::io::Result<Self> {
        let temp = store.temp_path(label);
        let file = BufWriter::with_capacity(1 << 20, File::create(&temp)?);
        Ok(Self { temp, file, lines: 0, bytes: 0 })
    }

    fn push(&mut self, line: &str) -> std::io::Result<()> {
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")?;
        self.lines += 1;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Moves the file into place under a new file id; an empty file is dropped.
    fn register(self, store: &Store, row: &BatchRow, label: &str) -> std::io::Result<Option<FileRow>> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        if self.lines == 0 {
            drop(file);
            std::fs::remove_file(&self.temp)?;
            return Ok(None);
        }
        file.sync_all()?;
        let id = new_id(FILE_PREFIX);
        std::fs::rename(&self.temp, store.content_path(&id))?;
        Ok(Some(FileRow {
            id,
            owner: row.owner.clone(),
            filename: format!("{}_{label}.jsonl", row.id),
            purpose: "batch_output".into(),
            bytes: self.bytes,
            num_rows: self.lines,
            created_at: now_secs(),
        }))
    }
}
