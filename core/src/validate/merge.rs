//! The file-level checks, fed with the checked blocks in file order: duplicate custom_ids,
//! the request and byte limits, one url per file, and the issues kept (the earliest by line).

use std::collections::{BinaryHeap, HashMap};

use super::block::{self, too_large, BlockResult};
use super::issue::{self, Code, Issue};
use super::report::{self, Report};
use super::Options;
use crate::jsonl::blocks::{for_each_line, is_blank, Block, Chunk, Limit};

/// The file-level state, fed with block results in file order.
pub struct Merge<'o> {
    opts: &'o Options,
    report: Report,
    seen_ids: HashMap<u128, u64, IdentityHash>,
    url_runs: Vec<block::UrlRun>,
    first_url: Option<String>,
    bytes: u64,
    over_requests: bool,
    over_bytes: bool,
    /// The earliest issues so far, the latest on top, so it is the one dropped.
    kept: BinaryHeap<Kept>,
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
    pub fn new(opts: &'o Options, size_hint: Option<u64>) -> Self {
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

    /// Merges a checked chunk (its block's result, if it held lines), handing back its
    /// buffer for reuse.
    pub fn add(&mut self, chunk: Chunk, result: Option<BlockResult>) -> Option<Block> {
        let base = self.report.num_lines; // lines before this chunk
        let limits = &self.opts.limits;
        match (chunk, result) {
            (Chunk::Stopped { limit, partial }, _) => {
                // Only the byte limit stops a validation (over-long lines are skipped). The
                // line it cuts is not checked: the limit is its problem, and its length if
                // that is over too.
                debug_assert_eq!(limit, Limit::FileBytes);
                let line = base + 1;
                if partial > 0 {
                    self.report.num_lines += 1;
                    self.report.num_requests += 1;
                    self.bytes += partial;
                }
                if partial > limits.max_line_bytes {
                    let message = format!(
                        "line is over the {}-byte limit per line ({partial} bytes read before the file limit)",
                        limits.max_line_bytes
                    );
                    self.push(Issue { line, path: None, code: Code::LineTooLarge, message });
                }
                if !self.over_bytes {
                    self.over_bytes = true;
                    self.push(file_too_large(line, limits.max_bytes));
                }
                self.check_limits(None);
                None
            }
            (Chunk::LongLine { bytes, newline }, _) => {
                self.report.num_lines += 1;
                self.report.num_requests += 1;
                self.bytes += bytes + u64::from(newline);
                self.push(too_large(base + 1, bytes, limits.max_line_bytes));
                self.check_limits(None);
                None
            }
            (Chunk::Lines(data), result) => {
                let result = result.unwrap_or_default();
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
            self.push(file_too_large(line, limits.max_bytes));
        }
    }

    pub fn finish(mut self, bytes_read: u64) -> Report {
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

/// The byte limit, passed at `line`: reading stops there, so nothing after it is checked.
fn file_too_large(line: u64, max_bytes: u64) -> Issue {
    let message = format!("the file passes the {max_bytes}-byte limit at this line; nothing after it is read");
    Issue { line, path: None, code: Code::FileTooLarge, message }
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
