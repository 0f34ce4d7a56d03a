//! Validating a batch file: every problem, with its line and field, in one streaming pass.
//!
//! The input goes through the JSONL pipeline (`jsonl::pipeline`): workers check blocks of
//! lines in parallel (`block.rs`, `rules.rs`), and the caller's thread merges the results in
//! order, doing the file-level checks (`merge.rs`: duplicate ids, limits, one url). Memory
//! stays bounded: a fixed number of blocks is in flight, and over-long lines are never held.
//! Reading stops past `max_bytes` (`file_too_large`), so an endless source ends too.
//!
//! An input of one block or less is checked on the caller's thread (`runs_inline`): the
//! pipeline parallelises over blocks, so it has nothing to gain there, and starting its
//! threads would cost far more than checking a few lines.

pub mod block;
pub mod issue;
mod merge;
pub mod report;
pub mod rules;

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::jsonl::blocks::{Chunk, DEFAULT_BLOCK_SIZE};
use crate::jsonl::pipeline::{self, Next, Piece, Pipeline, Work};
use crate::limits::Limits;
use crate::model::DEFAULT_PROVIDERS;
use crate::translate::SamplingTable;
use block::{check_block, BlockResult, IdHasher};
pub use issue::{Code, Issue};
use merge::Merge;
pub use report::Report;

/// How to validate: limits, the providers accepted, and which Anthropic models take which
/// sampling parameters.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: Limits,
    pub providers: Vec<String>,
    pub sampling: SamplingTable,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    pub block_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            providers: DEFAULT_PROVIDERS.iter().map(|s| s.to_string()).collect(),
            sampling: SamplingTable::default(),
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

/// Checks each block of lines on the pipeline's workers (an over-long line needs no check:
/// the merge reports it).
struct Checker<'o> {
    max_line: u64,
    providers: &'o [String],
    sampling: &'o SamplingTable,
    ids: IdHasher,
}

impl Work for Checker<'_> {
    type Output = Option<BlockResult>;

    fn work(&self, piece: &Piece) -> Option<BlockResult> {
        match &piece.chunk {
            Chunk::Lines(data) => {
                Some(check_block(data, piece.first, self.max_line, self.providers, self.sampling, &self.ids))
            }
            Chunk::LongLine { .. } | Chunk::Stopped { .. } => None,
        }
    }
}

/// How often a running validation looks at its cancel flag.
const CANCEL_TICK: Duration = Duration::from_millis(50);

/// Whether an input of `size` bytes (None: unknown, a pipe or a device) is validated on the
/// caller's thread, without the pipeline's threads: when it fits in one block.
pub fn runs_inline(size: Option<u64>, opts: &Options) -> bool {
    size.is_some_and(|size| size <= opts.block_size as u64)
}

/// The cores this process may use, asked once: the answer reads cgroup files (a dozen
/// system calls), more than validating a line costs.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
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
    let inline = runs_inline(size_hint, opts);
    let threads = match opts.threads {
        _ if inline => 1,
        0 => cores(),
        n => n,
    };
    let inline = inline || threads <= 1;
    let max_line = opts.limits.max_line_bytes;
    let checker = Checker { max_line, providers: &opts.providers, sampling: &opts.sampling, ids: IdHasher::new() };
    let block_size = match size_hint {
        // One buffer the input's size (plus the byte that finds its end), not a whole block.
        Some(size) if inline => opts.block_size.min(usize::try_from(size).unwrap_or(usize::MAX).saturating_add(1)),
        _ => opts.block_size,
    };
    let pipeline_opts = pipeline::Options {
        block_size,
        max_line: max_line.min(usize::MAX as u64) as usize,
        // Everything on the caller's thread, or the workers.
        workers: if inline { 0 } else { threads },
        in_flight: threads * 2,
        max_bytes: opts.limits.max_bytes,
        skip_long_lines: true,
    };
    let mut merge = Merge::new(opts, size_hint);
    std::thread::scope(|scope| {
        let mut blocks = Pipeline::start(scope, vec![src], &checker, pipeline_opts);
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(ValidateError::Cancelled);
            }
            match blocks.next(CANCEL_TICK) {
                Next::Piece(piece, result) => {
                    if let Some(block) = merge.add(piece.chunk, result) {
                        blocks.recycle(block);
                    }
                }
                Next::Pending => {}
                Next::Done { bytes } => return Ok(merge.finish(bytes)),
                Next::Failed { error, .. } => return Err(ValidateError::Io(error)),
            }
        }
    })
}

/// Validates a file on disk.
pub fn validate_path(path: &std::path::Path, opts: &Options, cancel: &AtomicBool) -> Result<Report, ValidateError> {
    let file = std::fs::File::open(path)?;
    // A size only for a regular file: a FIFO's or a device's says nothing of what comes.
    let size = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    validate_source(file, size, opts, cancel)
}

/// Validates bytes in memory; `cancel` is polled between blocks.
pub fn validate_slice(data: &[u8], opts: &Options, cancel: &AtomicBool) -> Result<Report, ValidateError> {
    validate_source(data, Some(data.len() as u64), opts, cancel)
}

/// Validates bytes in memory.
pub fn validate_bytes(data: &[u8], opts: &Options) -> Report {
    // Reading from a slice cannot fail and nothing cancels it.
    validate_slice(data, opts, &AtomicBool::new(false)).unwrap_or_default()
}
