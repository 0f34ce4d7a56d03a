//! Splits a byte stream into blocks of whole lines with bounded memory.
//!
//! A block is about `block_size` bytes ending at a newline, so workers can check blocks in
//! parallel. A line longer than `max_line` is never held: it is skipped as it streams past
//! and reported as `Chunk::LongLine`. Bytes pass through as they are (a byte-order mark
//! included: `strip_bom` drops it from the first line, so it still counts as file bytes).

use std::io::{self, Read};

pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The first line of a file without its UTF-8 byte-order mark, if it has one.
pub fn strip_bom(first_line: &[u8]) -> &[u8] {
    first_line.strip_prefix(BOM).unwrap_or(first_line)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Whole lines; the last one may lack its newline only at the end of the stream.
    Lines(Vec<u8>),
    /// One line over the limit, skipped unread; `bytes` excludes its newline, which
    /// `newline` says was there (the last line of a file may lack one).
    LongLine { bytes: u64, newline: bool },
}

pub struct BlockReader<R> {
    src: R,
    carry: Vec<u8>,
    block_size: usize,
    max_line: usize,
    eof: bool,
    /// Bytes read from the source so far (BOM included).
    pub bytes_read: u64,
}

impl<R: Read> BlockReader<R> {
    pub fn new(src: R, block_size: usize, max_line: usize) -> Self {
        Self {
            src,
            carry: Vec::new(),
            block_size: block_size.max(1),
            max_line: max_line.max(1),
            eof: false,
            bytes_read: 0,
        }
    }

    /// Reads until `carry` holds `target` bytes or the stream ends.
    fn fill(&mut self, target: usize) -> io::Result<()> {
        while self.carry.len() < target && !self.eof {
            let len = self.carry.len();
            let want = target - len;
            self.carry.resize(len + want, 0);
            let n = loop {
                match self.src.read(&mut self.carry[len..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.carry.truncate(len);
                    return Err(e);
                }
            };
            self.carry.truncate(len + n);
            self.bytes_read += n as u64;
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// Skips the rest of an over-long line whose first `seen` bytes were dropped.
    fn skip_long_line(&mut self, mut seen: u64) -> io::Result<Chunk> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.carry) {
                seen += i as u64;
                self.carry.drain(..=i);
                return Ok(Chunk::LongLine { bytes: seen, newline: true });
            }
            seen += self.carry.len() as u64;
            self.carry.clear();
            if self.eof {
                return Ok(Chunk::LongLine { bytes: seen, newline: false });
            }
            self.fill(self.block_size)?;
        }
    }

    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        self.fill(self.block_size)?;
        loop {
            if self.carry.is_empty() && self.eof {
                return Ok(None);
            }
            if let Some(i) = memchr::memrchr(b'\n', &self.carry) {
                let rest = self.carry.split_off(i + 1);
                return Ok(Some(Chunk::Lines(std::mem::replace(&mut self.carry, rest))));
            }
            // No newline in sight: one partial line fills the buffer.
            if self.carry.len() > self.max_line {
                let seen = self.carry.len() as u64;
                self.carry.clear();
                return self.skip_long_line(seen).map(Some);
            }
            if self.eof {
                return Ok(Some(Chunk::Lines(std::mem::take(&mut self.carry))));
            }
            // A line longer than a block but within the limit: read on until its end.
            let target = (self.carry.len() * 2).min(self.max_line + 1).max(self.carry.len() + 1);
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

    #[test]
    fn counts_lines_like_for_each_line() {
        for b in [&b""[..], b"a", b"a\n", b"a\nb", b"\n\n"] {
            let mut n = 0;
            for_each_line(b, |_, _| n += 1);
            assert_eq!(count_lines(b), n);
        }
    }
}
