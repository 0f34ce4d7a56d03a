//! Validating a batch file: every problem, with its line and field, in one streaming pass.
//!
//! A reader thread cuts the input into blocks of whole lines, workers check blocks in
//! parallel (`block.rs`, `rules.rs`), and the caller's thread merges the results in order,
//! doing the file-level checks (duplicate ids, limits, one url). Memory stays bounded: a
//! fixed number of blocks is in flight, and over-long lines are never held.

pub mod block;
pub mod issue;
pub mod report;
pub mod rules;
pub mod scan;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use crate::jsonl::blocks::{for_each_line, is_blank, Block, BlockReader, Chunk, DEFAULT_BLOCK_SIZE};
use crate::limits::Limits;
use crate::model::DEFAULT_PROVIDERS;
use block::{check_block, too_large, BlockResult, IdHasher};
pub use issue::{Code, Issue};
pub use report::Report;

/// How to validate: limits and the providers accepted.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: Limits,
    pub providers: Vec<String>,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    pub block_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            providers: DEFAULT_PROVIDERS.iter().map(|s| s.to_string()).collect(),
            threads: 0,
            block_size: DEFAULT_BLOCK_SIZE,
        }
    }
}

#[derive(Debug)]
pub enum ValidateError {
    Io(io::Error),
    Cancelled,
}

impl std::fmt::Display for ValidateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "could not read the batch file: {e}"),
            Self::Cancelled => f.write_str("validation was cancelled"),
        }
    }
}

impl std::error::Error for ValidateError {}

impl From<io::Error> for ValidateError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// What a worker hands back: the checked block, or a skipped over-long line.
enum Checked {
    Block { data: Block, result: BlockResult },
    LongLine { bytes: u64, newline: bool },
}

/// Validates everything `src` yields. `cancel` is polled between blocks.
pub fn validate_reader<R: Read + Send>(src: R, opts: &Options, cancel: &AtomicBool) -> Result<Report, ValidateError> {
    validate_source(src, None, opts, cancel)
}

/// `validate_reader`, told the source's size when it is known (to size the id table once).
fn validate_source<R: Read + Send>(
    src: R,
    size_hint: Option<u64>,
    opts: &Options,
    cancel: &AtomicBool,
) -> Result<Report, ValidateError> {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let ids = IdHasher::new();
    let max_line = opts.limits.max_line_bytes;
    let check = |chunk: Chunk, first: bool| match chunk {
        Chunk::Lines(data) => {
            let result = check_block(&data, first, max_line, &opts.providers, &ids);
            Checked::Block { data, result }
        }
        Chunk::LongLine { bytes, newline } => Checked::LongLine { bytes, newline },
    };
    let mut reader = BlockReader::new(src, opts.block_size, max_line.min(usize::MAX as u64) as usize);
    let mut merge = Merge::new(opts, size_hint);

    if threads <= 1 {
        let mut first = true;
        while let Some(chunk) = reader.next_chunk()? {
            if cancel.load(Ordering::Relaxed) {
                return Err(ValidateError::Cancelled);
            }
            if let Some(block) = merge.add(check(chunk, first)) {
                reader.recycle(block);
            }
            first = false;
        }
        return Ok(merge.finish(reader.bytes_read));
    }

    // Parallel: reader thread -> workers -> this thread. `tokens` bounds the blocks in
    // flight (read but not yet merged), which bounds memory whatever the file size; a
    // token carries a merged block's buffer back to the reader for reuse.
    let in_flight = threads * 2;
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Chunk)>(in_flight);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<(u64, Checked)>();
    let (token_tx, token_rx) = mpsc::sync_channel::<Option<Block>>(in_flight);
    for _ in 0..in_flight {
        let _ = token_tx.send(None);
    }
    std::thread::scope(|scope| {
        let reading = scope.spawn(move || -> Result<u64, ValidateError> {
            let mut seq = 0;
            while let Some(chunk) = reader.next_chunk()? {
                if cancel.load(Ordering::Relaxed) {
                    return Err(ValidateError::Cancelled);
                }
                match token_rx.recv() {
                    Ok(Some(block)) => reader.recycle(block),
                    Ok(None) => {}
                    Err(_) => return Err(ValidateError::Cancelled),
                }
                if work_tx.send((seq, chunk)).is_err() {
                    return Err(ValidateError::Cancelled);
                }
                seq += 1;
            }
            Ok(reader.bytes_read)
        });
        for _ in 0..threads {
            let (work_rx, done_tx, check) = (&work_rx, done_tx.clone(), &check);
            scope.spawn(move || loop {
                let next = work_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((seq, chunk))) = next else { return };
                if done_tx.send((seq, check(chunk, seq == 0))).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for (seq, checked) in done_rx.iter() {
            pending.insert(seq, checked);
            while let Some(checked) = pending.remove(&next) {
                let block = merge.add(checked);
                next += 1;
                let _ = token_tx.send(block);
            }
        }
        drop(token_tx);
        let bytes = reading.join().unwrap_or(Err(ValidateError::Cancelled))?;
        Ok(merge.finish(bytes))
    })
}

/// Validates a file on disk.
pub fn validate_path(path: &std::path::Path, opts: &Options, cancel: &AtomicBool) -> Result<Report, ValidateError> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata().ok().map(|m| m.len());
    validate_source(file, size, opts, cancel)
}

/// Validates bytes in memory.
pub fn validate_bytes(data: &[u8], opts: &Options) -> Report {
    // Reading from a slice cannot fail and nothing cancels it.
    validate_source(data, Some(data.len() as u64), opts, &AtomicBool::new(false)).unwrap_or_default()
}

/// The file-level state, fed with block results in file order.
struct Merge<'o> {
    opts: &'o Options,
    report: Report,
    seen_ids: HashMap<u128, u64, IdentityHash>,
    url_runs: Vec<block::UrlRun>,
    first_url: Option<String>,
    bytes: u64,
    over_requests: bool,
    over_bytes: bool,
    /// The earliest issues so far, the latest on top, so it is the one dropped.
    kept: std::collections::BinaryHeap<Kept>,
    arrived: u64,
    /// The source's size, if known: with the first block, it gives the number of ids to
    /// expect, so `seen_ids` is sized once instead of rehashing as it grows.
    size_hint: Option<u64>,
}

/// Most ids `seen_ids` reserves room for up front (32 bytes each).
const MAX_RESERVED_IDS: u64 = 1 << 22;

/// An issue ordered by (line, arrival).
struct Kept {
    line: u64,
    arrived: u64,
    issue: Issue,
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        (self.line, self.arrived) == (other.line, other.arrived)
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.line, self.arrived).cmp(&(other.line, other.arrived))
    }
}

impl<'o> Merge<'o> {
    fn new(opts: &'o Options, size_hint: Option<u64>) -> Self {
        Self {
            opts,
            report: Report::default(),
            seen_ids: HashMap::default(),
            url_runs: Vec::new(),
            first_url: None,
            bytes: 0,
            over_requests: false,
            over_bytes: false,
            kept: Default::default(),
            arrived: 0,
            size_hint,
        }
    }

    /// Counts every issue; keeps the `max_issues` earliest by line (issues do not arrive in
    /// line order: duplicates and url mismatches are found later than a block's own).
    fn push(&mut self, issue: Issue) {
        *self.report.issue_counts.entry(issue.code).or_default() += 1;
        let cap = self.opts.limits.max_issues as usize;
        if cap == 0 {
            return;
        }
        self.arrived += 1;
        let entry = Kept { line: issue.line, arrived: self.arrived, issue };
        if self.kept.len() < cap {
            self.kept.push(entry);
        } else if self.kept.peek().is_some_and(|last| entry < *last) {
            self.kept.pop();
            self.kept.push(entry);
        }
    }

    /// Merges a checked chunk, handing back its buffer for reuse.
    fn add(&mut self, checked: Checked) -> Option<Block> {
        let base = self.report.num_lines; // lines before this chunk
        let limits = &self.opts.limits;
        match checked {
            Checked::LongLine { bytes, newline } => {
                self.report.num_lines += 1;
                self.report.num_requests += 1;
                self.bytes += bytes + u64::from(newline);
                self.push(too_large(base + 1, bytes, limits.max_line_bytes));
                self.check_limits(None);
                None
            }
            Checked::Block { data, result } => {
                self.report.num_lines += result.lines;
                self.report.num_requests += result.requests;
                self.bytes += data.len() as u64;
                if let Some(size) = self.size_hint.take().filter(|_| !data.is_empty()) {
                    // Ids per byte in this block, times the file's bytes, with some slack.
                    let expected = (size as u128 * result.ids.len() as u128 / data.len() as u128) as u64;
                    let expected = (expected + expected / 8).min(MAX_RESERVED_IDS);
                    self.seen_ids.reserve(expected as usize);
                }
                let BlockResult { issues, ids, id_text, url_runs, providers, models, urls, .. } = result;
                for mut issue in issues {
                    issue.line += base + 1;
                    self.push(issue);
                }
                for seen in &ids {
                    let line = base + 1 + u64::from(seen.line);
                    if let Some(&first) = self.seen_ids.get(&seen.hash) {
                        let id = issue::quote(block::id_of(&id_text, seen));
                        self.push(Issue {
                            line,
                            path: Some("custom_id".into()),
                            code: Code::DuplicateCustomId,
                            message: format!("{id} is used on line {first} and again on line {line}"),
                        });
                    } else {
                        self.seen_ids.insert(seen.hash, line);
                    }
                }
                for (map, into) in [
                    (&providers, &mut self.report.providers),
                    (&models, &mut self.report.models),
                    (&urls, &mut self.report.urls),
                ] {
                    for (k, v) in map.iter() {
                        *into.entry(k.clone()).or_default() += v;
                    }
                }
                for mut run in url_runs {
                    if self.first_url.is_none() {
                        self.first_url = Some(run.url.clone());
                    }
                    run.first += (base + 1) as u32;
                    run.last += (base + 1) as u32;
                    self.url_runs.push(run);
                }
                self.check_limits(Some((&data, base)));
                Some(data)
            }
        }
    }

    /// Reports the request and byte limits once each, at the line that crosses them.
    fn check_limits(&mut self, block: Option<(&[u8], u64)>) {
        let limits = &self.opts.limits;
        if !self.over_requests && self.report.num_requests > limits.max_requests {
            self.over_requests = true;
            // Find the line holding request number max_requests + 1.
            let before = self.report.num_requests;
            let line = block.map_or(self.report.num_lines, |(data, base)| {
                let in_block = nonblank_lines(data);
                let want = (limits.max_requests + 1) - (before - in_block.len() as u64);
                base + 1 + in_block[(want - 1) as usize]
            });
            let message = format!(
                "a batch holds at most {} requests; this is request {}",
                limits.max_requests,
                limits.max_requests + 1
            );
            self.push(Issue { line, path: None, code: Code::TooManyRequests, message });
        }
        if !self.over_bytes && self.bytes > limits.max_bytes {
            self.over_bytes = true;
            let line = block.map_or(self.report.num_lines, |(data, base)| {
                let before = self.bytes - data.len() as u64;
                let offset = (limits.max_bytes - before) as usize; // the first byte over
                base + 1 + memchr::memchr_iter(b'\n', &data[..offset.min(data.len())]).count() as u64
            });
            let message = format!("the file passes the {}-byte limit at this line", limits.max_bytes);
            self.push(Issue { line, path: None, code: Code::FileTooLarge, message });
        }
    }

    fn finish(mut self, bytes_read: u64) -> Report {
        self.report.total_bytes = bytes_read;
        // One url per file: the most common one (the first line's on a tie) is the file's.
        let file_url = report::majority(&self.report.urls, self.first_url.as_deref()).map(str::to_owned);
        if let Some(file_url) = &file_url {
            let odd: Vec<_> = self.url_runs.iter().filter(|r| &r.url != file_url).collect();
            let mut extra = vec![];
            for run in odd {
                for line in run.first..=run.last {
                    extra.push(Issue {
                        line: u64::from(line),
                        path: Some("url".into()),
                        code: Code::UrlMismatch,
                        message: format!(
                            "{} differs from the file's url {:?}: every line of a batch uses the same url",
                            issue::quote(&run.url),
                            file_url
                        ),
                    });
                }
            }
            for issue in extra {
                self.push(issue);
            }
        }
        self.report.url = file_url;
        self.report.issues = self.kept.into_sorted_vec().into_iter().map(|k| k.issue).collect();
        self.report
    }
}

/// Block-relative (0-based) numbers of the block's non-blank lines.
fn nonblank_lines(data: &[u8]) -> Vec<u64> {
    let mut out = vec![];
    for_each_line(data, |i, line| {
        if !is_blank(line) {
            out.push(i as u64);
        }
    });
    out
}

/// The keys are already uniform hashes: use their low bits as they are.
#[derive(Default, Clone, Copy)]
struct IdentityHash;

impl std::hash::BuildHasher for IdentityHash {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}
