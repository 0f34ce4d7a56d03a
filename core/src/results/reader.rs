//! Streaming output and error files through the JSONL pipeline (`jsonl::pipeline`) into
//! compact records: workers parse blocks of lines (`line::parse_line`), the caller takes the
//! parsed blocks back in file order. Memory is bounded by the blocks in flight; the caller
//! decides what to keep. Each [`Record`] says where its line stands in its file, so the
//! whole line can be read back when asked for (`read_line_at`).
//!
//! A source past `max_bytes`, or a line past `max_line`, stops the reading with an error
//! naming the line (`file_too_large`, `line_too_large`) as soon as it is seen: an endless
//! source (`/dev/zero`, a FIFO) is never read to its end, nor a 300 MB line held.

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::line::{parse_line, Usage};
use crate::jsonl::blocks::{for_each_line, is_blank, strip_bom, Chunk, Limit, BOM};
use crate::jsonl::pipeline::{self, Piece, Pipeline, Work};

/// Bytes per block handed to a worker: small, so few are in flight at once.
pub const BLOCK_SIZE: usize = 128 * 1024;
/// Longest line read (a chat answer or an embedding is far shorter).
pub const DEFAULT_MAX_LINE: usize = 64 << 20;
/// Most bytes read from one file: 8 GiB, room for 50,000 answers (a batch's most) of
/// 160 KiB each, far more than real output files hold.
pub const DEFAULT_MAX_BYTES: u64 = 8 << 30;
/// Parsed blocks kept for reuse at most (more than are ever in flight).
const MAX_POOLED: usize = 32;

/// A piece of text in a block's `strings`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub len: u32,
}

/// One line, decoded, its strings in its block's `strings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based line number in its file.
    pub line: u64,
    /// Where the line starts in its file (after a byte-order mark) and its length without
    /// the line ending: what to read back to get the whole line.
    pub offset: u64,
    pub len: u32,
    pub custom_id: Span,
    pub ok: bool,
    pub status_code: Option<u16>,
    pub text: Option<Span>,
    pub model: Option<Span>,
    pub usage: Option<Usage>,
    /// Some exactly when `ok` is false (its code and message may each be absent).
    pub error: Option<(Option<Span>, Option<Span>)>,
}

/// The records of one block of lines, in line order.
#[derive(Debug, Default)]
pub struct ParsedBlock {
    /// Index of the source in the list given to [`ResultReader::read`].
    pub source: usize,
    /// Lines in the block (blank ones included).
    pub lines: u64,
    pub strings: String,
    pub records: Vec<Record>,
}

impl ParsedBlock {
    #[inline]
    pub fn str(&self, span: Span) -> &str {
        &self.strings[span.start as usize..(span.start + span.len) as usize]
    }

    fn put(&mut self, text: &str) -> Span {
        let span = Span { start: self.strings.len() as u32, len: text.len() as u32 };
        self.strings.push_str(text);
        span
    }
}

/// Where lines come from: an open file (read from its start) or bytes in memory.
#[derive(Clone)]
pub enum Input {
    File(Arc<File>),
    Bytes(Arc<[u8]>),
}

/// A line that cannot be read as a result, or a source that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub source: usize,
    /// 1-based; None for a problem with the whole source (an I/O error).
    pub line: Option<u64>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ReaderOptions {
    pub block_size: usize,
    pub max_line: usize,
    /// Most bytes read from each source.
    pub max_bytes: u64,
    /// Worker threads parsing blocks (at least 1; the caller's thread helps too).
    pub workers: usize,
    /// Read only the custom_ids (of request files).
    pub ids_only: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        // The caller's thread has its own work (making Python objects, on one core): one
        // worker per other core, two at most (more only add memory in flight).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            block_size: BLOCK_SIZE,
            max_line: DEFAULT_MAX_LINE,
            max_bytes: DEFAULT_MAX_BYTES,
            workers: (cores - 1).clamp(1, 2),
            ids_only: false,
        }
    }
}

/// What [`ResultReader::next`] gives.
#[derive(Debug)]
pub enum Next {
    /// The next block's records, in file order (blocks without a line are skipped).
    Block(ParsedBlock),
    /// Nothing yet (the timeout passed): ask again.
    Pending,
    /// Every source was read.
    Done,
    /// Reading stopped at this problem; nothing more comes.
    Failed(ReadError),
}

impl Input {
    fn into_read(self) -> Box<dyn Read + Send> {
        match self {
            Input::File(f) => Box::new(FileRead(f)),
            Input::Bytes(b) => Box::new(Cursor::new(b)),
        }
    }
}

struct FileRead(Arc<File>);

impl Read for FileRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

/// Hands back the parsed blocks of its sources in order, numbering their lines per source.
pub struct ResultReader<'a> {
    blocks: Pipeline<'a, Box<dyn Read + Send>, Parser>,
    parser: &'a Parser,
    finished: bool,
    /// The source of the last block handed out and the lines before the next one (workers
    /// number lines within their block; blocks come here in order).
    source: usize,
    lines_before: u64,
}

impl ResultReader<'_> {
    /// Reads `inputs` in order on background threads while `consume` takes the parsed
    /// blocks; the threads end with it.
    pub fn read<T>(inputs: Vec<Input>, opts: ReaderOptions, consume: impl FnOnce(&mut ResultReader<'_>) -> T) -> T {
        let parser = Parser {
            ids_only: opts.ids_only,
            max_line: opts.max_line,
            max_bytes: opts.max_bytes,
            pool: Mutex::new(Vec::new()),
        };
        let workers = opts.workers.max(1);
        let pipeline_opts = pipeline::Options {
            block_size: opts.block_size,
            max_line: opts.max_line,
            workers,
            in_flight: workers + 2,
            max_bytes: opts.max_bytes,
            // An over-long line is an error here: stop at it rather than read it to its end.
            skip_long_lines: false,
        };
        let sources = inputs.into_iter().map(Input::into_read).collect();
        std::thread::scope(|scope| {
            let blocks = Pipeline::start(scope, sources, &parser, pipeline_opts);
            let mut reader = ResultReader { blocks, parser: &parser, finished: false, source: 0, lines_before: 0 };
            consume(&mut reader)
        })
    }

    /// Reads everything, in order (for tests and small inputs).
    pub fn collect(inputs: Vec<Input>, opts: ReaderOptions) -> Result<Vec<ParsedBlock>, ReadError> {
        Self::read(inputs, opts, |reader| {
            let mut out = vec![];
            loop {
                let wait = if reader.help() { Duration::ZERO } else { Duration::from_secs(3600) };
                match reader.next(wait) {
                    Next::Block(b) => out.push(b),
                    Next::Pending => {}
                    Next::Done => return Ok(out),
                    Next::Failed(e) => return Err(e),
                }
            }
        })
    }

    /// Gives a block back once its records are used: the workers refill its buffers, so
    /// reading allocates (and leaves behind in the allocator) no more than the blocks in
    /// flight.
    pub fn recycle(&self, mut block: ParsedBlock) {
        block.strings.clear();
        block.records.clear();
        if let Ok(mut pool) = self.parser.pool.lock() {
            if pool.len() < MAX_POOLED {
                pool.push(block);
            }
        }
    }

    /// Parses, on this thread, a block no worker has taken yet, if there is one: a caller
    /// about to wait for the next block can help instead. Says whether it did.
    pub fn help(&mut self) -> bool {
        !self.finished && self.blocks.help()
    }

    /// The next block in order, waiting at most `timeout` for it.
    pub fn next(&mut self, timeout: Duration) -> Next {
        if self.finished {
            return Next::Done;
        }
        let (source, result, at_end) = match self.blocks.next(timeout) {
            pipeline::Next::Pending => return Next::Pending,
            pipeline::Next::Done { .. } => {
                self.finished = true;
                return Next::Done;
            }
            pipeline::Next::Failed { source, error } => {
                self.stop();
                return Next::Failed(ReadError { source, line: None, message: format!("cannot read: {error}") });
            }
            pipeline::Next::Piece(piece, result) => {
                // A stop at a line's end is on the line before (the one just read).
                let at_end = matches!(piece.chunk, Chunk::Stopped { partial: 0, .. });
                if let Chunk::Lines(block) = piece.chunk {
                    self.blocks.recycle(block);
                }
                (piece.source, result, at_end)
            }
        };
        if source != self.source {
            (self.source, self.lines_before) = (source, 0);
        }
        match result {
            Ok(mut block) => {
                let base = self.lines_before + 1;
                block.records.iter_mut().for_each(|r| r.line += base);
                self.lines_before += block.lines;
                Next::Block(block)
            }
            Err(mut e) => {
                if let Some(line) = e.line.as_mut() {
                    *line = (*line + self.lines_before + 1 - u64::from(at_end)).max(1);
                }
                self.stop();
                Next::Failed(e)
            }
        }
    }

    fn stop(&mut self) {
        self.finished = true;
        self.blocks.stop();
    }
}

/// Parses the blocks on the pipeline's workers, into blocks from a pool the caller refills.
struct Parser {
    ids_only: bool,
    max_line: usize,
    max_bytes: u64,
    pool: Mutex<Vec<ParsedBlock>>,
}

impl Work for Parser {
    type Output = Result<ParsedBlock, ReadError>;

    fn work(&self, piece: &Piece) -> Self::Output {
        let source = piece.source;
        match &piece.chunk {
            Chunk::Lines(block) => {
                let out = self.pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_default();
                // A panic (a bug) is reported as an error instead of killing the thread.
                catch_unwind(AssertUnwindSafe(|| parse_block(piece, block, out, self))).unwrap_or_else(|_| {
                    Err(ReadError { source, line: None, message: "internal error while reading".into() })
                })
            }
            // Line 0 after the blocks before: `next` makes it the line number.
            Chunk::LongLine { bytes, .. } => Err(ReadError {
                source,
                line: Some(0),
                message: format!(
                    "the line is {bytes} bytes long, over the {}-byte limit per line [line_too_large]",
                    self.max_line
                ),
            }),
            Chunk::Stopped { limit: Limit::LineBytes, .. } => {
                Err(ReadError { source, line: Some(0), message: self.line_too_large() })
            }
            Chunk::Stopped { limit: Limit::FileBytes, .. } => Err(ReadError {
                source,
                line: Some(0),
                message: format!(
                    "the file passes the {}-byte limit here; reading stopped [file_too_large]",
                    self.max_bytes
                ),
            }),
        }
    }
}

impl Parser {
    fn line_too_large(&self) -> String {
        format!("the line is over the {}-byte limit per line [line_too_large]", self.max_line)
    }
}

fn parse_block(w: &Piece, bytes: &[u8], mut out: ParsedBlock, parser: &Parser) -> Result<ParsedBlock, ReadError> {
    let ids_only = parser.ids_only;
    let text = match simdutf8::basic::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            let bad = simdutf8::compat::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), |_| 0);
            let line = memchr::memchr_iter(b'\n', &bytes[..bad]).count() as u64;
            return Err(ReadError { source: w.source, line: Some(line), message: "invalid UTF-8".into() });
        }
    };
    out.source = w.source;
    out.strings.reserve(if ids_only { 4096 } else { bytes.len() / 2 });
    out.records.reserve(bytes.len() / 512 + 1);
    let mut error = None;
    out.lines = 0;
    for_each_line(bytes, |i, raw| {
        out.lines += 1;
        if error.is_some() || is_blank(raw) {
            return;
        }
        // A line shorter than a block but over the limit: the same error as a longer one.
        if raw.len() > parser.max_line {
            error = Some(ReadError { source: w.source, line: Some(i as u64), message: parser.line_too_large() });
            return;
        }
        let mut start = raw.as_ptr() as usize - bytes.as_ptr() as usize;
        let mut len = raw.len();
        if w.first && i == 0 {
            let rest = strip_bom(raw);
            if rest.len() < len {
                (start, len) = (start + BOM.len(), rest.len());
                if is_blank(rest) {
                    return;
                }
            }
        }
        // Lines end at ASCII bytes (`\n`, `\r`) and a BOM is a whole character, so both
        // ends are char boundaries.
        let line = &text[start..start + len];
        let number = i as u64; // in the block: `next` makes it the line number in the file
        match parse_line(line, ids_only) {
            Ok(l) => {
                let custom_id = out.put(&l.custom_id);
                let text = l.text.as_deref().map(|t| out.put(t));
                let model = l.model.as_deref().map(|m| out.put(m));
                let error = l
                    .error
                    .as_ref()
                    .map(|e| (e.code.as_deref().map(|c| out.put(c)), e.message.as_deref().map(|m| out.put(m))));
                out.records.push(Record {
                    line: number,
                    offset: w.offset + start as u64,
                    len: line.len() as u32,
                    custom_id,
                    ok: l.ok,
                    status_code: l.status_code,
                    text,
                    model,
                    usage: l.usage,
                    error,
                });
            }
            Err(message) => error = Some(ReadError { source: w.source, line: Some(number), message }),
        }
    });
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Reads whole lines back from a file: `body` is decoded on demand from here.
pub fn read_line_at(file: &File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len as usize];
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(&mut buf, offset)?;
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            let n = file.seek_read(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        use std::io::{Seek, SeekFrom};
        let mut f = file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut buf)?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::ok_line;

    /// custom_id, line, offset, length, text.
    type Row = (String, u64, u64, u32, Option<String>);

    fn read(data: &[u8], block: usize, workers: usize) -> Result<Vec<Row>, ReadError> {
        let opts = ReaderOptions { block_size: block, max_line: 1 << 20, workers, ..Default::default() };
        let blocks = ResultReader::collect(vec![Input::Bytes(data.into())], opts)?;
        let mut out = vec![];
        for b in &blocks {
            for r in &b.records {
                out.push((b.str(r.custom_id).to_owned(), r.line, r.offset, r.len, r.text.map(|t| b.str(t).to_owned())));
            }
        }
        Ok(out)
    }

    #[test]
    fn streams_in_order_whatever_the_block_size() {
        let mut data = "\u{feff}".to_string();
        let mut want = vec![];
        for i in 0..300 {
            let line = ok_line(&format!("id-{i}"), &format!("\"text {i}\""));
            let offset = data.len() as u64;
            data.push_str(&line);
            want.push((format!("id-{i}"), offset, line.len() as u32, Some(format!("text {i}"))));
            data.push_str(if i % 7 == 0 { "\r\n\n" } else { "\n" });
        }
        for block in [1, 100, 1000, 4096, 1 << 20] {
            for workers in [1, 3] {
                let got = read(data.as_bytes(), block, workers).unwrap();
                let got: Vec<_> = got.into_iter().map(|(id, _, off, len, t)| (id, off, len, t)).collect();
                assert_eq!(got, want, "block {block} workers {workers}");
            }
        }
        // Offsets point at the line itself (after the BOM): what body reads back.
        let got = read(data.as_bytes(), 64, 2).unwrap();
        let (_, line, off, len, _) = &got[5];
        let back = &data.as_bytes()[*off as usize..*off as usize + *len as usize];
        assert!(std::str::from_utf8(back).unwrap().starts_with("{\"id\""));
        assert_eq!(*line, 7); // blank lines after line 1 count
    }

    #[test]
    fn errors_name_the_line() {
        let good = ok_line("a", "\"x\"");
        let data = format!("{good}\n\n{good}\n{{not json}}\n{good}\n");
        for block in [10, 1 << 16] {
            let e = read(data.as_bytes(), block, 2).unwrap_err();
            assert_eq!(e.line, Some(4), "{e:?}");
            assert!(e.message.contains("invalid JSON"), "{e:?}");
        }
        let truncated = format!("{good}\n{}", &good[..good.len() - 5]);
        let e = read(truncated.as_bytes(), 1 << 16, 1).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("truncated"), "{e:?}");
        let mut bad_utf8 = format!("{good}\n{good}\n").into_bytes();
        bad_utf8.extend(b"{\"custom_id\":\"\xff\"}\n");
        let e = read(&bad_utf8, 1 << 16, 1).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (Some(3), "invalid UTF-8"));
    }

    #[test]
    fn long_lines_and_empty_sources() {
        assert!(read(b"", 1024, 2).unwrap().is_empty());
        assert!(read(b"\n \n\r\n", 1024, 2).unwrap().is_empty());
        let long = format!("{}\n", ok_line("a", &format!("\"{}\"", "x".repeat(2 << 20))));
        let e = read(long.as_bytes(), 1024, 1).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("over the 1048576-byte limit per line [line_too_large]"), "{e:?}");
        let after = format!("{}\n\n{long}", ok_line("b", "\"y\""));
        for block in [64, 1024, 1 << 16] {
            assert_eq!(read(after.as_bytes(), block, 2).unwrap_err().line, Some(3), "block {block}");
        }
    }

    #[test]
    fn past_the_limits_reading_stops_naming_the_line() {
        let line = ok_line("a", "\"x\"") + "\n";
        let data = line.repeat(10);
        let opts = |max_bytes| ReaderOptions { block_size: 64, max_bytes, ..Default::default() };
        let read = |max| ResultReader::collect(vec![Input::Bytes(data.as_bytes().into())], opts(max));
        assert!(read(data.len() as u64).is_ok());
        // One byte over: the last line's newline; a line's worth less: line 10 is cut.
        for (max, at) in [(data.len() - 1, 10), (data.len() - line.len(), 10), (3 * line.len() + 5, 4)] {
            let e = read(max as u64).unwrap_err();
            assert_eq!(e.line, Some(at), "{e:?}");
            assert!(e.message.ends_with("limit here; reading stopped [file_too_large]"), "{e:?}");
        }
        // A line over the line limit inside a block, or longer than a block.
        for block_size in [64, 1 << 16] {
            let opts = ReaderOptions { block_size, max_line: line.len() - 2, ..Default::default() };
            let e = ResultReader::collect(vec![Input::Bytes(data.as_bytes().into())], opts).unwrap_err();
            assert_eq!(e.line, Some(1), "{e:?}");
            assert!(e.message.ends_with("[line_too_large]"), "{e:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_device_stops_at_the_line_limit() {
        // /dev/zero is one endless line: never read past the line limit.
        let zero = Arc::new(File::open("/dev/zero").unwrap());
        let opts = ReaderOptions { max_line: 1 << 20, ..Default::default() };
        let e = ResultReader::collect(vec![Input::File(zero)], opts).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("over the 1048576-byte limit per line [line_too_large]"), "{e:?}");
    }

    #[test]
    fn several_sources_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, format!("{}\n{}", ok_line("f1", "\"a\""), ok_line("f2", "\"b\""))).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let inputs =
            vec![Input::File(file.clone()), Input::Bytes(format!("{}\n", ok_line("b1", "\"c\"")).as_bytes().into())];
        let blocks = ResultReader::collect(inputs, ReaderOptions::default()).unwrap();
        let ids: Vec<(usize, &str)> =
            blocks.iter().flat_map(|b| b.records.iter().map(move |r| (b.source, b.str(r.custom_id)))).collect();
        assert_eq!(ids, [(0, "f1"), (0, "f2"), (1, "b1")]);
        let r = blocks.iter().flat_map(|b| b.records.iter().filter(|r| b.str(r.custom_id) == "f2")).next().unwrap();
        let back = read_line_at(&file, r.offset, r.len).unwrap();
        assert_eq!(back, ok_line("f2", "\"b\"").as_bytes());
        let e = ResultReader::collect(vec![Input::Bytes(b"{}\n"[..].into())], ReaderOptions::default()).unwrap_err();
        assert_eq!((e.source, e.line), (0, Some(1)));
        // Lines are numbered per source.
        let first: Arc<[u8]> =
            format!("{}\n{}\n{}\n", ok_line("a", "1"), ok_line("b", "2"), ok_line("c", "3")).as_bytes().into();
        let second: Arc<[u8]> = format!("{}\n{{\n", ok_line("d", "4")).as_bytes().into();
        for block_size in [16, 1 << 16] {
            let opts = ReaderOptions { block_size, ..Default::default() };
            let blocks =
                ResultReader::collect(vec![Input::Bytes(first.clone()), Input::Bytes(first.clone())], opts.clone())
                    .unwrap();
            let lines: Vec<(usize, u64)> =
                blocks.iter().flat_map(|b| b.records.iter().map(move |r| (b.source, r.line))).collect();
            assert_eq!(lines, [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]);
            let e = ResultReader::collect(vec![Input::Bytes(first.clone()), Input::Bytes(second.clone())], opts)
                .unwrap_err();
            assert_eq!((e.source, e.line), (1, Some(2)));
        }
    }

    #[test]
    fn dropping_the_reader_stops_it() {
        let line = ok_line("a", "\"x\"") + "\n";
        let data: Vec<u8> = line.repeat(20_000).into_bytes();
        let opts = ReaderOptions { block_size: 4096, ..Default::default() };
        // Leaving after the first block must not hang (the threads stop) or panic.
        let first = ResultReader::read(vec![Input::Bytes(data.into())], opts, |r| r.next(Duration::from_secs(10)));
        assert!(matches!(first, Next::Block(_)));
    }
}
