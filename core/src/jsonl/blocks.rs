//! Splits a byte stream into blocks of whole lines with bounded memory.
//!
//! A block is about `block_size` bytes ending at a newline, so workers can check blocks in
//! parallel. A line longer than `max_line` is never held: it is skipped as it streams past
//! and reported as `Chunk::LongLine`. Bytes pass through as they are (a byte-order mark
//! included: `strip_bom` drops it from the first line, so it still counts as file bytes).
//!
//! Past its limits a reader stops instead of reading on: after `max_bytes` bytes of a source
//! (`with_max_bytes`), and, for readers that cannot skip a line (`stop_at_long_lines`), at
//! a line over `max_line`. Either way it ends with `Chunk::Stopped`, having held at most
//! `max_line` bytes of a line: an endless source (`/dev/zero`, a FIFO) ends too.
//!
//! Buffers are reused: a checked block goes back to the reader (`recycle`), which reads the
//! next bytes straight into it, so the steady state allocates, zeroes and faults in nothing.

use std::io::{self, Read};
use std::ops::Deref;

pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
/// The UTF-8 byte-order mark, which may start a file (and is not part of its first line).
pub const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Spare buffers the reader keeps at most (more are freed).
const MAX_SPARE: usize = 8;
/// Most room reserved at once for a line longer than a block (beyond it, the buffer grows
/// by doubling).
const MAX_RESERVED_LINE: usize = 256 << 20;

/// The first line of a file without its UTF-8 byte-order mark, if it has one.
pub fn strip_bom(first_line: &[u8]) -> &[u8] {
    first_line.strip_prefix(BOM).unwrap_or(first_line)
}

/// Whole lines, in a buffer that can go back to the reader once checked. Derefs to the
/// lines' bytes.
pub struct Block {
    /// Always initialised up to its `len()`; only `..len` holds this block's bytes.
    buf: Vec<u8>,
    len: usize,
}

impl Block {
    pub fn new(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        Self { buf: bytes, len }
    }
}

impl Deref for Block {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Block").field(&&self[..]).finish()
    }
}

impl PartialEq for Block {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..]
    }
}
impl Eq for Block {}

#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Whole lines; the last one may lack its newline only at the end of the stream.
    Lines(Block),
    /// One line over the limit, skipped unread; `bytes` excludes its newline, which
    /// `newline` says was there (the last line of a file may lack one).
    LongLine { bytes: u64, newline: bool },
    /// Reading stopped at a limit, `partial` bytes into a line that is cut short there (its
    /// start included; 0 when the limit fell at a line's end). Nothing more comes.
    Stopped { limit: Limit, partial: u64 },
}

/// The limit a reader stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The source holds more than `max_bytes` bytes.
    FileBytes,
    /// A line is longer than `max_line` (and the reader does not skip such lines).
    LineBytes,
}

pub struct BlockReader<R> {
    src: R,
    /// The bytes read and not yet handed out are `buf[..filled]`; `buf` is initialised
    /// over its whole `len()`, so reading into it needs no zeroing.
    buf: Vec<u8>,
    filled: usize,
    spare: Vec<Vec<u8>>,
    block_size: usize,
    max_line: usize,
    eof: bool,
    /// Most bytes read from the source: one more says it is over (`u64::MAX`: no limit).
    max_bytes: u64,
    /// The source passed `max_bytes` (reading ended there).
    over: bool,
    /// Skip over-long lines (`Chunk::LongLine`) rather than stop at them.
    skip_long_lines: bool,
    /// `Chunk::Stopped` was handed out: nothing more comes.
    stopped: bool,
    /// Bytes read from the source so far (BOM included).
    pub bytes_read: u64,
}

impl<R: Read> BlockReader<R> {
    pub fn new(src: R, block_size: usize, max_line: usize) -> Self {
        Self {
            src,
            buf: Vec::new(),
            filled: 0,
            spare: Vec::new(),
            block_size: block_size.max(1),
            max_line: max_line.max(1),
            eof: false,
            max_bytes: u64::MAX,
            over: false,
            skip_long_lines: true,
            stopped: false,
            bytes_read: 0,
        }
    }

    /// Reads at most `max_bytes` bytes (and one more, to know the source passes them); a
    /// longer source ends with `Chunk::Stopped { limit: Limit::FileBytes, .. }`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Ends at the first line over `max_line` (`Chunk::Stopped { limit: Limit::LineBytes,
    /// .. }`) instead of skipping it: for readers to whom such a line is an error, so an
    /// endless line is not read to its end.
    pub fn stop_at_long_lines(mut self) -> Self {
        self.skip_long_lines = false;
        self
    }

    /// Hands out `Chunk::Stopped`: the source ends here.
    fn stop(&mut self, limit: Limit, partial: u64) -> Chunk {
        self.stopped = true;
        self.filled = 0;
        Chunk::Stopped { limit, partial }
    }

    /// Gives a checked block's buffer back for reuse. Buffers grown far past the block size
    /// (by a long line) are freed instead, so memory stays bounded.
    pub fn recycle(&mut self, block: Block) {
        let buf = block.buf;
        if self.spare.len() < MAX_SPARE && buf.len() >= self.block_size && buf.len() <= 4 * self.block_size {
            self.spare.push(buf);
        }
    }

    /// Reads until `buf` holds `target` bytes or the stream ends.
    fn fill(&mut self, target: usize) -> io::Result<()> {
        if self.buf.len() < target {
            if target > self.buf.capacity() && target > self.block_size {
                // A line longer than a block: room for the longest allowed at once. That is
                // address space only (pages are touched as bytes arrive), and the line then
                // grows without copies, nor freed buffers left behind in the allocator (which
                // growing by doubling leaves: three times the line's size in all).
                let room = (self.max_line.saturating_add(1)).min(MAX_RESERVED_LINE).max(target);
                self.buf.reserve_exact(room - self.buf.len());
            }
            // Zeroed once per buffer; a recycled buffer is already initialised.
            self.buf.resize(target, 0);
        }
        while self.filled < target && !self.eof {
            // One byte past `max_bytes` is read: it says the source is over.
            let allowed = self.max_bytes.saturating_add(1).saturating_sub(self.bytes_read);
            if allowed == 0 {
                (self.over, self.eof) = (true, true);
                break;
            }
            let end = target.min(self.filled.saturating_add(usize::try_from(allowed).unwrap_or(usize::MAX)));
            let n = loop {
                match self.src.read(&mut self.buf[self.filled..end]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = n?;
            self.filled += n;
            self.bytes_read += n as u64;
            if n == 0 {
                self.eof = true;
            }
            if self.bytes_read > self.max_bytes {
                (self.over, self.eof) = (true, true);
            }
        }
        Ok(())
    }

    /// Skips the rest of an over-long line whose first `seen` bytes were dropped.
    fn skip_long_line(&mut self, mut seen: u64) -> io::Result<Chunk> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[..self.filled]) {
                seen += i as u64;
                self.buf.copy_within(i + 1..self.filled, 0);
                self.filled -= i + 1;
                return Ok(Chunk::LongLine { bytes: seen, newline: true });
            }
            seen += self.filled as u64;
            self.filled = 0;
            if self.eof && self.over {
                return Ok(self.stop(Limit::FileBytes, seen));
            }
            if self.eof {
                return Ok(Chunk::LongLine { bytes: seen, newline: false });
            }
            self.fill(self.block_size)?;
        }
    }

    /// Hands out `buf[..end]` as a block; the bytes after it move to a fresh buffer.
    fn cut(&mut self, end: usize) -> Block {
        let rest = self.filled - end;
        let mut next = self.spare.pop().unwrap_or_default();
        let want = self.block_size.max(rest);
        if next.len() < want {
            next.resize(want, 0);
        }
        next[..rest].copy_from_slice(&self.buf[end..self.filled]);
        self.filled = rest;
        Block { buf: std::mem::replace(&mut self.buf, next), len: end }
    }

    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if self.stopped {
            return Ok(None);
        }
        self.fill(self.block_size)?;
        loop {
            if self.filled == 0 && self.eof {
                return Ok(self.over.then(|| self.stop(Limit::FileBytes, 0)));
            }
            if let Some(i) = memchr::memrchr(b'\n', &self.buf[..self.filled]) {
                return Ok(Some(Chunk::Lines(self.cut(i + 1))));
            }
            // No newline in sight: one partial line fills the buffer.
            if self.filled > self.max_line {
                let seen = self.filled as u64;
                if !self.skip_long_lines {
                    return Ok(Some(self.stop(Limit::LineBytes, seen)));
                }
                self.filled = 0;
                return self.skip_long_line(seen).map(Some);
            }
            if self.eof && self.over {
                // The last line was cut by the limit: it is not handed out as a line.
                let partial = self.filled as u64;
                return Ok(Some(self.stop(Limit::FileBytes, partial)));
            }
            if self.eof {
                let end = self.filled;
                return Ok(Some(Chunk::Lines(self.cut(end))));
            }
            // A line longer than a block but within the limit: read on until its end.
            let target = (self.filled * 2).min(self.max_line + 1).max(self.filled + 1);
            self.fill(target)?;
        }
    }
}

/// Calls `f(index, line)` for each line of a block, without its `\n` or `\r\n`.
pub fn for_each_line(block: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut start = 0;
    let mut index = 0;
    for nl in memchr::memchr_iter(b'\n', block) {
        f(index, strip_cr(&block[start..nl]));
        index += 1;
        start = nl + 1;
    }
    if start < block.len() {
        f(index, strip_cr(&block[start..]));
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Number of lines `for_each_line` visits.
pub fn count_lines(block: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', block).count() as u64;
    newlines + u64::from(!block.is_empty() && !block.ends_with(b"\n"))
}

/// A line that holds no request: empty or only whitespace.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &[u8], block: usize, max_line: usize) -> Vec<Chunk> {
        let mut r = BlockReader::new(data, block, max_line);
        let mut out = vec![];
        while let Some(c) = r.next_chunk().unwrap() {
            out.push(c);
        }
        out
    }

    fn lines_of(chunks: &[Chunk]) -> Vec<String> {
        let mut out = vec![];
        for c in chunks {
            match c {
                Chunk::Lines(b) => for_each_line(b, |_, l| out.push(String::from_utf8_lossy(l).into())),
                Chunk::LongLine { bytes, newline } => out.push(format!("<long {bytes} {newline}>")),
                Chunk::Stopped { limit, partial } => out.push(format!("<stopped {limit:?} {partial}>")),
            }
        }
        out
    }

    #[test]
    fn splits_on_line_boundaries_whatever_the_block_size() {
        let data = b"\xEF\xBB\xBFa\r\nbb\n\nccc\ndddd";
        for block in 1..12 {
            let c = chunks(data, block, 100);
            assert_eq!(lines_of(&c), ["\u{feff}a", "bb", "", "ccc", "dddd"], "block {block}");
        }
    }

    #[test]
    fn recycled_buffers_give_the_same_lines() {
        let mut data = b"\xEF\xBB\xBFa\r\nbb\n\nccc\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 300));
        data.extend(b"\nafter\n");
        data.extend(std::iter::repeat_n(b'y', 50));
        for block in 1..40 {
            let plain = lines_of(&chunks(&data, block, 100));
            let mut r = BlockReader::new(&data[..], block, 100);
            let mut out = vec![];
            while let Some(c) = r.next_chunk().unwrap() {
                out.extend(lines_of(std::slice::from_ref(&c)));
                if let Chunk::Lines(b) = c {
                    r.recycle(b); // stale bytes past the block's end must never show
                }
            }
            assert_eq!(out, plain, "block {block}");
        }
    }

    #[test]
    fn long_lines_are_skipped_not_held() {
        let mut data = b"ok\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 10_000));
        data.extend(b"\nafter\n");
        data.extend(std::iter::repeat_n(b'y', 500));
        for block in [16, 64, 4096] {
            let c = chunks(&data, block, 100);
            assert_eq!(lines_of(&c), ["ok", "<long 10000 true>", "after", "<long 500 false>"], "block {block}");
        }
    }

    /// Every chunk of an endless or capped source, described; panics past 1,000 chunks.
    fn describe(mut r: BlockReader<impl Read>) -> Vec<String> {
        let mut out = vec![];
        while let Some(c) = r.next_chunk().unwrap() {
            out.push(match c {
                Chunk::Lines(b) => format!("lines {}", count_lines(&b)),
                Chunk::LongLine { bytes, newline } => format!("<long {bytes} {newline}>"),
                Chunk::Stopped { limit, partial } => format!("stopped {limit:?} {partial}"),
            });
            assert!(out.len() < 1000, "no end: {out:?}");
        }
        out
    }

    #[test]
    fn an_endless_source_stops_at_max_bytes_skipping_or_not() {
        // /dev/zero: one endless line. Skipped up to the byte limit, or stopped at the line's.
        let zeros = BlockReader::new(io::repeat(0), 64, 100).with_max_bytes(10_000);
        assert_eq!(describe(zeros), ["stopped FileBytes 10001"]);
        let zeros = BlockReader::new(io::repeat(0), 64, 100).with_max_bytes(10_000).stop_at_long_lines();
        assert_eq!(describe(zeros), ["stopped LineBytes 101"]);
        // Endless short lines: whole lines up to the limit, then the line it cuts.
        let r = BlockReader::new(io::repeat(b'\n'), 64, 100).with_max_bytes(1000);
        let got = describe(r);
        assert_eq!(got.last().unwrap(), "stopped FileBytes 0");
        let lines: u64 = got.iter().filter_map(|c| c.strip_prefix("lines ")?.parse::<u64>().ok()).sum();
        assert_eq!(lines, 1001);
    }

    #[test]
    fn max_bytes_is_inclusive_and_cuts_the_crossing_line() {
        let data = b"aaaa\nbbbb\ncccc\n";
        let lines =
            |got: &[String]| -> u64 { got.iter().filter_map(|c| c.strip_prefix("lines ")?.parse::<u64>().ok()).sum() };
        for block in [1, 4, 64] {
            let r = |max| describe(BlockReader::new(&data[..], block, 100).with_max_bytes(max));
            let whole = r(15);
            assert_eq!((lines(&whole), whole.iter().any(|c| c.starts_with("stopped"))), (3, false), "block {block}");
            // The 15th byte ends line 3: its line is whole, then the stop.
            let got = r(14);
            assert_eq!((lines(&got), got.last().unwrap().as_str()), (3, "stopped FileBytes 0"), "block {block}");
            // The 13th byte starts line 3: cut there, after 3 of its bytes.
            let got = r(12);
            assert_eq!((lines(&got), got.last().unwrap().as_str()), (2, "stopped FileBytes 3"), "block {block}");
            let mut r = BlockReader::new(&data[..], block, 100).with_max_bytes(12);
            while r.next_chunk().unwrap().is_some() {}
            assert_eq!(r.bytes_read, 13, "block {block}");
        }
    }

    #[test]
    fn counts_lines_like_for_each_line() {
        for b in [&b""[..], b"a", b"a\n", b"a\nb", b"\n\n"] {
            let mut n = 0;
            for_each_line(b, |_, _| n += 1);
            assert_eq!(count_lines(b), n);
        }
    }
}
