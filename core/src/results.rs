//! Reading batch output and error files (the contract's section 4) into compact records.
//!
//! A line `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`
//! becomes a [`Record`]: the custom_id, whether the request succeeded, the status code, the
//! assistant's text (chat), the model, the token usage, the error's code and message, and
//! where the line stands in its file, so the full body can be read back when asked for.
//! Only those few fields are decoded; every other byte of the line is checked against the
//! JSON grammar and skipped by the validator's zero-copy scanner.
//!
//! [`ResultReader`] streams any number of files through a bounded pipeline: a reader thread
//! cuts whole-line blocks (`jsonl::blocks`), worker threads parse them, and the caller takes
//! the parsed blocks back in file order. Memory is bounded by the blocks in flight; the
//! caller decides what to keep.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::jsonl::blocks::{for_each_line, is_blank, Block, BlockReader, Chunk};
use crate::validate::scan::{Kind, Scan, Scanner, SyntaxError};

/// Bytes per block handed to a worker: small, so few are in flight at once.
pub const BLOCK_SIZE: usize = 128 * 1024;
/// Longest line read (a chat answer or an embedding is far shorter).
pub const DEFAULT_MAX_LINE: usize = 64 << 20;

/// Token counts of a body's `usage` (OpenAI's names; Anthropic's `input_tokens` /
/// `output_tokens` are read as prompt / completion). `total` is prompt + completion when
/// the body does not give it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Why a request failed, as the line tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo<'a> {
    pub code: Option<Cow<'a, str>>,
    pub message: Option<Cow<'a, str>>,
}

/// One line, decoded, borrowing from it where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub custom_id: Cow<'a, str>,
    /// A response with a 2xx status and no error.
    pub ok: bool,
    pub status_code: Option<u16>,
    /// The assistant's text: `choices[0].message.content` (a string, or the `text` of its
    /// parts joined), else `choices[0].text`, else an Anthropic-shaped `content[].text`.
    pub text: Option<Cow<'a, str>>,
    pub model: Option<Cow<'a, str>>,
    pub usage: Option<Usage>,
    /// Set exactly when `ok` is false.
    pub error: Option<ErrorInfo<'a>>,
}

#[allow(clippy::boxed_local)] // the scanner's errors come boxed
fn syntax(e: Box<SyntaxError>) -> String {
    format!("invalid JSON at byte {}: {}", e.offset + 1, e.what)
}

/// Decodes one line (without its newline). `ids_only` reads just the custom_id (for
/// request files, whose order gives the results' order); the rest is still checked.
pub fn parse_line(line: &str, ids_only: bool) -> Result<Line<'_>, String> {
    let mut sc = Scanner::new(line);
    let kind = sc.peek().map_err(syntax)?;
    if kind != Kind::Object {
        // Say "not JSON" for `not json` (whose first letter looks like `null`), and what
        // the value is only when it is one.
        sc.skip().map_err(syntax)?;
        sc.finish().map_err(syntax)?;
        return Err(format!("expected a JSON object, found {}", kind.name()));
    }
    let mut custom_id = None;
    let mut id_kind = None;
    let mut response = Response::default();
    let mut line_error: Option<ErrorFields> = None;
    let mut result_keys = false;
    sc.object(|s, key| {
        if key.is("custom_id") {
            let k = s.peek()?;
            if k == Kind::String {
                custom_id = Some(s.string()?.decode());
            } else {
                id_kind = Some(k);
                s.skip()?;
            }
        } else if ids_only {
            s.skip()?;
        } else if key.is("response") {
            result_keys = true;
            if s.peek()? == Kind::Object {
                response.present = true;
                read_response(s, &mut response)?;
            } else {
                s.skip()?;
            }
        } else if key.is("error") {
            result_keys = true;
            match s.peek()? {
                Kind::Object => {
                    let mut e = ErrorFields::default();
                    read_error(s, &mut e)?;
                    line_error = Some(e);
                }
                Kind::String => {
                    line_error = Some(ErrorFields { message: Some(s.string()?.decode()), ..Default::default() });
                }
                _ => {
                    s.skip()?;
                }
            }
        } else {
            s.skip()?;
        }
        Ok(())
    })
    .map_err(syntax)?;
    sc.finish().map_err(syntax)?;
    let custom_id = match (custom_id, id_kind) {
        (Some(id), _) => id,
        (None, Some(k)) => return Err(format!("custom_id must be a string, not {}", k.name())),
        (None, None) => return Err("no custom_id".into()),
    };
    if ids_only {
        return Ok(Line { custom_id, ok: false, status_code: None, text: None, model: None, usage: None, error: None });
    }
    if !result_keys {
        return Err(
            "not a result line: it has neither \"response\" nor \"error\" (is this the batch's input file?)".into()
        );
    }
    let body = response.body;
    let ok = line_error.is_none()
        && response.present
        && match response.status {
            Some(s) => (200..300).contains(&s),
            None => body.error.is_none(),
        };
    let error = if ok {
        None
    } else if let Some(e) = line_error {
        Some(ErrorInfo { code: e.code.or(e.kind), message: e.message })
    } else if response.present {
        let e = body.error.unwrap_or_default();
        let message = e.message.or(body.message).or_else(|| {
            Some(Cow::Owned(match response.status {
                Some(s) => format!("the request failed with status {s}"),
                None => "the request failed".to_owned(),
            }))
        });
        Some(ErrorInfo { code: e.code.or(e.kind), message })
    } else {
        Some(ErrorInfo { code: None, message: Some(Cow::Borrowed("the line has neither a response nor an error")) })
    };
    Ok(Line {
        custom_id,
        ok,
        status_code: response.status,
        text: body.message_text.or(body.choice_text).or(body.content_text),
        model: body.model,
        usage: body.usage,
        error,
    })
}

#[derive(Default)]
struct Response<'a> {
    present: bool,
    status: Option<u16>,
    body: Body<'a>,
}

#[derive(Default)]
struct Body<'a> {
    model: Option<Cow<'a, str>>,
    message_text: Option<Cow<'a, str>>,
    choice_text: Option<Cow<'a, str>>,
    content_text: Option<Cow<'a, str>>,
    usage: Option<Usage>,
    error: Option<ErrorFields<'a>>,
    /// A body that is just a string (some gateways answer errors that way).
    message: Option<Cow<'a, str>>,
}

#[derive(Default)]
struct ErrorFields<'a> {
    code: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
}

fn read_response<'a>(s: &mut Scanner<'a>, r: &mut Response<'a>) -> Scan<()> {
    s.object(|s, key| {
        if key.is("status_code") {
            r.status = number(s)?.filter(|n| (100..1000).contains(n)).map(|n| n as u16);
        } else if key.is("body") {
            match s.peek()? {
                Kind::Object => read_body(s, &mut r.body)?,
                Kind::String => r.body.message = Some(s.string()?.decode()),
                _ => {
                    s.skip()?;
                }
            }
        } else {
            s.skip()?;
        }
        Ok(())
    })
}

fn read_body<'a>(s: &mut Scanner<'a>, b: &mut Body<'a>) -> Scan<()> {
    s.object(|s, key| {
        let kind = s.peek()?;
        if key.is("choices") && kind == Kind::Array {
            s.array(|s, i| if i == 0 && s.peek()? == Kind::Object { read_choice(s, b) } else { s.skip().map(drop) })?;
        } else if key.is("model") && kind == Kind::String {
            b.model = Some(s.string()?.decode());
        } else if key.is("usage") && kind == Kind::Object {
            b.usage = Some(read_usage(s)?);
        } else if key.is("content") && kind == Kind::Array {
            b.content_text = None;
            read_parts(s, &mut b.content_text)?;
        } else if key.is("error") && kind == Kind::Object {
            let mut e = ErrorFields::default();
            read_error(s, &mut e)?;
            b.error = Some(e);
        } else if key.is("error") && kind == Kind::String {
            b.error = Some(ErrorFields { message: Some(s.string()?.decode()), ..Default::default() });
        } else {
            s.skip()?;
        }
        Ok(())
    })
}

fn read_choice<'a>(s: &mut Scanner<'a>, b: &mut Body<'a>) -> Scan<()> {
    s.object(|s, key| {
        let kind = s.peek()?;
        if key.is("message") && kind == Kind::Object {
            s.object(|s, key| {
                if key.is("content") {
                    match s.peek()? {
                        Kind::String => b.message_text = Some(s.string()?.decode()),
                        Kind::Array => {
                            b.message_text = None;
                            read_parts(s, &mut b.message_text)?;
                        }
                        _ => {
                            s.skip()?;
                        }
                    }
                } else {
                    s.skip()?;
                }
                Ok(())
            })?;
        } else if key.is("text") && kind == Kind::String {
            b.choice_text = Some(s.string()?.decode());
        } else {
            s.skip()?;
        }
        Ok(())
    })
}

/// Content parts: the `text` of each part (a bare string part counts as text), joined.
fn read_parts<'a>(s: &mut Scanner<'a>, out: &mut Option<Cow<'a, str>>) -> Scan<()> {
    s.array(|s, _| {
        match s.peek()? {
            Kind::Object => s.object(|s, key| {
                if key.is("text") && s.peek()? == Kind::String {
                    append(out, s.string()?.decode());
                } else {
                    s.skip()?;
                }
                Ok(())
            })?,
            Kind::String => append(out, s.string()?.decode()),
            _ => {
                s.skip()?;
            }
        }
        Ok(())
    })
}

fn append<'a>(acc: &mut Option<Cow<'a, str>>, piece: Cow<'a, str>) {
    match acc {
        None => *acc = Some(piece),
        Some(text) => text.to_mut().push_str(&piece),
    }
}

fn read_usage(s: &mut Scanner<'_>) -> Scan<Usage> {
    let (mut prompt, mut completion, mut total) = (None, None, None);
    s.object(|s, key| {
        if key.is("prompt_tokens") || key.is("input_tokens") {
            prompt = number(s)?;
        } else if key.is("completion_tokens") || key.is("output_tokens") {
            completion = number(s)?;
        } else if key.is("total_tokens") {
            total = number(s)?;
        } else {
            s.skip()?;
        }
        Ok(())
    })?;
    let (p, c) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    Ok(Usage { prompt_tokens: p, completion_tokens: c, total_tokens: total.unwrap_or(p.saturating_add(c)) })
}

fn read_error<'a>(s: &mut Scanner<'a>, e: &mut ErrorFields<'a>) -> Scan<()> {
    s.object(|s, key| {
        let kind = s.peek()?;
        if key.is("code") && kind == Kind::String {
            e.code = Some(s.string()?.decode());
        } else if key.is("code") && kind == Kind::Number {
            e.code = Some(Cow::Borrowed(s.number()?));
        } else if key.is("message") && kind == Kind::String {
            e.message = Some(s.string()?.decode());
        } else if key.is("type") && kind == Kind::String {
            e.kind = Some(s.string()?.decode());
        } else {
            s.skip()?;
        }
        Ok(())
    })
}

/// A non-negative whole number (`12` or `12.0`); anything else reads as None (and is skipped).
fn number(s: &mut Scanner<'_>) -> Scan<Option<u64>> {
    if s.peek()? != Kind::Number {
        s.skip()?;
        return Ok(None);
    }
    let text = s.number()?;
    Ok(text.parse::<u64>().ok().or_else(|| {
        text.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0).map(|v| v as u64)
    }))
}

// --- the streamed reader ------------------------------------------------------------------

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
    /// Index of the source in the list given to [`ResultReader::start`].
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
    /// Worker threads parsing blocks (at least 1).
    pub workers: usize,
    /// Read only the custom_ids (of request files).
    pub ids_only: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        // The caller's thread has its own work (making Python objects, on one core): one
        // worker per other core, two at most (more only add memory in flight).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { block_size: BLOCK_SIZE, max_line: DEFAULT_MAX_LINE, workers: (cores - 1).clamp(1, 2), ids_only: false }
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

struct Work {
    seq: u64,
    source: usize,
    offset: u64,
    first_in_source: bool,
    block: Block,
}

type Parsed = (u64, Result<ParsedBlock, ReadError>);

/// Parsed blocks kept for reuse at most (more than are ever in flight).
const MAX_POOLED: usize = 32;

/// Reads sources in order on background threads; `next` hands back parsed blocks in order.
/// Dropping it stops the threads.
pub struct ResultReader {
    results: Receiver<Parsed>,
    tokens: SyncSender<()>,
    /// Parsed blocks given back, for the workers to fill again.
    pool: Arc<Mutex<Vec<ParsedBlock>>>,
    /// What `help` needs to parse a block here.
    work: Arc<Mutex<Receiver<Work>>>,
    recycle_tx: Sender<Block>,
    ids_only: bool,
    pending: BTreeMap<u64, Result<ParsedBlock, ReadError>>,
    next_seq: u64,
    cancel: Arc<AtomicBool>,
    disconnected: bool,
    finished: bool,
    /// Line numbering: the source of the last block handed out and the lines before the
    /// next one (workers number lines within their block; blocks come here in order).
    source: usize,
    lines_before: u64,
}

impl ResultReader {
    pub fn start(inputs: Vec<Input>, opts: ReaderOptions) -> Self {
        let workers = opts.workers.max(1);
        let cancel = Arc::new(AtomicBool::new(false));
        // At most `in_flight` blocks between the reader and the caller: the reader takes a
        // token for each block it cuts, the caller's `next` gives it back.
        let in_flight = workers + 2;
        let (token_tx, token_rx) = mpsc::sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = token_tx.send(());
        }
        let (work_tx, work_rx) = mpsc::sync_channel::<Work>(in_flight);
        let (res_tx, res_rx) = mpsc::sync_channel::<Parsed>(in_flight);
        let (recycle_tx, recycle_rx) = mpsc::channel::<Block>();
        let work_rx = Arc::new(Mutex::new(work_rx));
        let pool = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..workers {
            let (work_rx, res_tx, recycle_tx, cancel) =
                (work_rx.clone(), res_tx.clone(), recycle_tx.clone(), cancel.clone());
            let (pool, ids_only) = (pool.clone(), opts.ids_only);
            std::thread::spawn(move || work_loop(&work_rx, &res_tx, &recycle_tx, &pool, &cancel, ids_only));
        }
        let (help_rx, help_recycle, ids_only) = (work_rx.clone(), recycle_tx.clone(), opts.ids_only);
        let reader_cancel = cancel.clone();
        std::thread::spawn(move || read_loop(inputs, &opts, &token_rx, &work_tx, &res_tx, &recycle_rx, &reader_cancel));
        Self {
            results: res_rx,
            tokens: token_tx,
            pool,
            work: help_rx,
            recycle_tx: help_recycle,
            ids_only,
            pending: BTreeMap::new(),
            next_seq: 0,
            cancel,
            disconnected: false,
            finished: false,
            source: 0,
            lines_before: 0,
        }
    }

    /// Gives a block back once its records are used: the workers refill its buffers, so
    /// reading allocates (and leaves behind in the allocator) no more than the blocks in
    /// flight.
    pub fn recycle(&self, mut block: ParsedBlock) {
        block.strings.clear();
        block.records.clear();
        if let Ok(mut pool) = self.pool.lock() {
            if pool.len() < MAX_POOLED {
                pool.push(block);
            }
        }
    }

    /// The next block in order, waiting at most `timeout` for it.
    pub fn next(&mut self, timeout: Duration) -> Next {
        loop {
            if self.finished {
                return Next::Done;
            }
            if let Some(result) = self.pending.remove(&self.next_seq) {
                self.next_seq += 1;
                let _ = self.tokens.try_send(());
                let source = match &result {
                    Ok(b) => b.source,
                    Err(e) => e.source,
                };
                if source != self.source {
                    (self.source, self.lines_before) = (source, 0);
                }
                match result {
                    Ok(mut block) => {
                        let base = self.lines_before + 1;
                        block.records.iter_mut().for_each(|r| r.line += base);
                        self.lines_before += block.lines;
                        return Next::Block(block);
                    }
                    Err(mut e) => {
                        if let Some(line) = e.line.as_mut() {
                            *line += self.lines_before + 1;
                        }
                        self.stop();
                        return Next::Failed(e);
                    }
                }
            }
            if self.disconnected {
                self.stop();
                if self.pending.is_empty() {
                    return Next::Done;
                }
                return Next::Failed(ReadError {
                    source: 0,
                    line: None,
                    message: "internal error: a reader thread stopped".into(),
                });
            }
            let got = if timeout.is_zero() {
                self.results.try_recv().map_err(|e| match e {
                    mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                self.results.recv_timeout(timeout)
            };
            match got {
                Ok((seq, result)) => {
                    self.pending.insert(seq, result);
                }
                Err(RecvTimeoutError::Timeout) => return Next::Pending,
                Err(RecvTimeoutError::Disconnected) => self.disconnected = true,
            }
        }
    }

    /// Parses, on this thread, a block no worker has taken yet, if there is one: a caller
    /// about to wait for the next block can help instead. Says whether it did.
    pub fn help(&mut self) -> bool {
        let work = match self.work.try_lock() {
            Ok(rx) => rx.try_recv(),
            Err(_) => return false, // a worker is taking one
        };
        let Ok(work) = work else { return false };
        let out = self.pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_default();
        let result = parse_guarded(&work, out, self.ids_only);
        let _ = self.recycle_tx.send(work.block);
        self.pending.insert(work.seq, result);
        true
    }

    /// Reads everything, in order (for tests and small inputs).
    pub fn collect(mut self) -> Result<Vec<ParsedBlock>, ReadError> {
        let mut out = vec![];
        loop {
            let wait = if self.help() { Duration::ZERO } else { Duration::from_secs(3600) };
            match self.next(wait) {
                Next::Block(b) => out.push(b),
                Next::Pending => {}
                Next::Done => return Ok(out),
                Next::Failed(e) => return Err(e),
            }
        }
    }

    fn stop(&mut self) {
        self.finished = true;
        self.cancel.store(true, Ordering::Relaxed);
        self.pending.clear();
    }
}

impl Drop for ResultReader {
    fn drop(&mut self) {
        // The threads notice the flag or their closed channels and end on their own.
        self.cancel.store(true, Ordering::Relaxed);
    }
}

struct FileRead(Arc<File>);

impl Read for FileRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

fn read_loop(
    inputs: Vec<Input>,
    opts: &ReaderOptions,
    tokens: &Receiver<()>,
    work_tx: &SyncSender<Work>,
    res_tx: &SyncSender<Parsed>,
    recycle_rx: &Receiver<Block>,
    cancel: &AtomicBool,
) {
    let mut seq = 0u64;
    for (source, input) in inputs.into_iter().enumerate() {
        let src: Box<dyn Read + Send> = match input {
            Input::File(f) => Box::new(FileRead(f)),
            Input::Bytes(b) => Box::new(Cursor::new(b)),
        };
        let mut reader = BlockReader::new(src, opts.block_size, opts.max_line);
        let (mut offset, mut first) = (0u64, true);
        loop {
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            while let Ok(block) = recycle_rx.try_recv() {
                reader.recycle(block);
            }
            let fail = |message: String, line: Option<u64>| {
                let _ = res_tx.send((seq, Err(ReadError { source, line, message })));
            };
            match reader.next_chunk() {
                Err(e) => return fail(format!("cannot read: {e}"), None),
                Ok(None) => break,
                Ok(Some(Chunk::LongLine { bytes, .. })) => {
                    // Line 0 after the blocks before: `next` makes it the line number.
                    return fail(
                        format!("the line is {bytes} bytes long, over the limit of {} bytes", opts.max_line),
                        Some(0),
                    );
                }
                Ok(Some(Chunk::Lines(block))) => {
                    if tokens.recv().is_err() {
                        return; // the caller is gone
                    }
                    let len = block.len() as u64;
                    let work = Work { seq, source, offset, first_in_source: first, block };
                    if work_tx.send(work).is_err() {
                        return;
                    }
                    seq += 1;
                    offset += len;
                    first = false;
                }
            }
        }
    }
}

fn work_loop(
    work_rx: &Mutex<Receiver<Work>>,
    res_tx: &SyncSender<Parsed>,
    recycle_tx: &Sender<Block>,
    pool: &Mutex<Vec<ParsedBlock>>,
    cancel: &AtomicBool,
    ids_only: bool,
) {
    loop {
        let work = match work_rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(work) = work else { return };
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let out = pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_default();
        let result = parse_guarded(&work, out, ids_only);
        let _ = recycle_tx.send(work.block);
        if res_tx.send((work.seq, result)).is_err() {
            return;
        }
    }
}

/// `parse_block`, a panic (a bug) reported as an error instead of killing the thread.
fn parse_guarded(work: &Work, out: ParsedBlock, ids_only: bool) -> Result<ParsedBlock, ReadError> {
    catch_unwind(AssertUnwindSafe(|| parse_block(work, out, ids_only))).unwrap_or_else(|_| {
        Err(ReadError { source: work.source, line: None, message: "internal error while reading".into() })
    })
}

fn parse_block(w: &Work, mut out: ParsedBlock, ids_only: bool) -> Result<ParsedBlock, ReadError> {
    let bytes: &[u8] = &w.block;
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
        let mut start = raw.as_ptr() as usize - bytes.as_ptr() as usize;
        // Lines end at ASCII bytes (`\n`, `\r`), so both ends are char boundaries.
        let mut line = &text[start..start + raw.len()];
        if w.first_in_source && i == 0 {
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest;
                start += 3;
                if is_blank(line.as_bytes()) {
                    return;
                }
            }
        }
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

    fn ok_line(id: &str, content: &str) -> String {
        format!(
            r#"{{"id":"batch_req_1","custom_id":"{id}","response":{{"status_code":200,"request_id":"r","body":{{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4.1-nano","choices":[{{"index":0,"message":{{"role":"assistant","content":{content}}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}}}}},"error":null}}"#
        )
    }

    #[test]
    fn reads_a_chat_line() {
        let text = ok_line("request-1", r#""Hello\n\"world\" \u00e9""#);
        let l = parse_line(&text, false).unwrap();
        assert_eq!(l.custom_id, "request-1");
        assert!(l.ok);
        assert_eq!(l.status_code, Some(200));
        assert_eq!(l.text.as_deref(), Some("Hello\n\"world\" é"));
        assert_eq!(l.model.as_deref(), Some("gpt-4.1-nano"));
        assert_eq!(l.usage, Some(Usage { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }));
        assert_eq!(l.error, None);
    }

    #[test]
    fn content_parts_are_joined_and_null_content_has_no_text() {
        let parts = ok_line(
            "a",
            r#"[{"type":"text","text":"one "},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"two"}]"#,
        );
        assert_eq!(parse_line(&parts, false).unwrap().text.as_deref(), Some("one two"));
        let null = ok_line("a", "null");
        let l = parse_line(&null, false).unwrap();
        assert_eq!(l.text, None);
        assert!(l.ok);
        let empty = ok_line("a", r#""""#);
        assert_eq!(parse_line(&empty, false).unwrap().text.as_deref(), Some(""));
    }

    #[test]
    fn anthropic_shaped_and_legacy_bodies() {
        let a = r#"{"custom_id":"c","response":{"status_code":200,"body":{"type":"message","model":"claude","content":[{"type":"text","text":"Hi"},{"type":"text","text":" there"}],"usage":{"input_tokens":3,"output_tokens":4}}}}"#;
        let l = parse_line(a, false).unwrap();
        assert_eq!(l.text.as_deref(), Some("Hi there"));
        assert_eq!(l.usage, Some(Usage { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }));
        let legacy = r#"{"custom_id":"c","response":{"status_code":200,"body":{"choices":[{"text":"old style"}]}}}"#;
        assert_eq!(parse_line(legacy, false).unwrap().text.as_deref(), Some("old style"));
    }

    #[test]
    fn embeddings_have_usage_and_no_text() {
        let e = r#"{"custom_id":"e","response":{"status_code":200,"body":{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2e-3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":4,"total_tokens":4}}},"error":null}"#;
        let l = parse_line(e, false).unwrap();
        assert!(l.ok);
        assert_eq!(l.text, None);
        assert_eq!(l.model.as_deref(), Some("text-embedding-3-small"));
        assert_eq!(l.usage, Some(Usage { prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 }));
    }

    #[test]
    fn failures_carry_code_and_message() {
        let rejected = r#"{"custom_id":"r","response":{"status_code":429,"body":{"error":{"message":"Slow down","type":"rate_limit_error","code":"rate_limited"}}},"error":null}"#;
        let l = parse_line(rejected, false).unwrap();
        assert!(!l.ok);
        assert_eq!(l.status_code, Some(429));
        assert_eq!(l.error, Some(ErrorInfo { code: Some("rate_limited".into()), message: Some("Slow down".into()) }));

        let typed = r#"{"custom_id":"r","response":{"status_code":400,"body":{"error":{"message":"bad","type":"invalid_request_error","code":null}}}}"#;
        assert_eq!(parse_line(typed, false).unwrap().error.unwrap().code.as_deref(), Some("invalid_request_error"));

        let bare = r#"{"custom_id":"r","response":{"status_code":502,"body":"Bad gateway"}}"#;
        assert_eq!(parse_line(bare, false).unwrap().error.unwrap().message.as_deref(), Some("Bad gateway"));

        let nobody = r#"{"custom_id":"r","response":{"status_code":500,"body":null}}"#;
        let e = parse_line(nobody, false).unwrap().error.unwrap();
        assert_eq!((e.code, e.message.as_deref()), (None, Some("the request failed with status 500")));

        let never =
            r#"{"id":"x","custom_id":"n","response":null,"error":{"code":"batch_cancelled","message":"not run"}}"#;
        let l = parse_line(never, false).unwrap();
        assert!(!l.ok);
        assert_eq!(l.status_code, None);
        assert_eq!(l.error, Some(ErrorInfo { code: Some("batch_cancelled".into()), message: Some("not run".into()) }));

        let numeric = r#"{"custom_id":"n","response":null,"error":{"code":1234,"message":"m"}}"#;
        assert_eq!(parse_line(numeric, false).unwrap().error.unwrap().code.as_deref(), Some("1234"));

        let both_null = r#"{"custom_id":"n","response":null,"error":null}"#;
        assert!(!parse_line(both_null, false).unwrap().ok);
        // A request line (the batch's input file read by mistake) is not a result.
        let request = r#"{"custom_id":"n","method":"POST","url":"/v1/chat/completions","body":{}}"#;
        assert!(parse_line(request, false).unwrap_err().contains("is this the batch's input file?"));
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(parse_line("[1]", false).unwrap_err().contains("expected a JSON object"));
        assert!(parse_line("null", false).unwrap_err().contains("expected a JSON object, found null"));
        assert!(
            parse_line("not json", false).unwrap_err().contains("invalid JSON"),
            "{}",
            parse_line("not json", false).unwrap_err()
        );
        assert!(parse_line(r#"{"custom_id":1}"#, false).unwrap_err().contains("custom_id must be a string"));
        assert_eq!(parse_line(r#"{"response":null}"#, false).unwrap_err(), "no custom_id");
        let truncated = &ok_line("a", r#""x""#)[..60];
        assert!(
            parse_line(truncated, false).unwrap_err().contains("truncated"),
            "{}",
            parse_line(truncated, false).unwrap_err()
        );
        assert!(parse_line(r#"{"custom_id":"a"} x"#, false).unwrap_err().contains("after the JSON value"));
    }

    #[test]
    fn ids_only_skips_the_rest() {
        let req = r#"{"custom_id":"request-9","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#;
        assert_eq!(parse_line(req, true).unwrap().custom_id, "request-9");
    }

    /// custom_id, line, offset, length, text.
    type Row = (String, u64, u64, u32, Option<String>);

    fn read(data: &[u8], block: usize, workers: usize) -> Result<Vec<Row>, ReadError> {
        let opts = ReaderOptions { block_size: block, max_line: 1 << 20, workers, ids_only: false };
        let blocks = ResultReader::start(vec![Input::Bytes(data.into())], opts).collect()?;
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
        assert!(e.message.contains("over the limit"));
        let after = format!("{}\n\n{long}", ok_line("b", "\"y\""));
        for block in [64, 1024, 1 << 16] {
            assert_eq!(read(after.as_bytes(), block, 2).unwrap_err().line, Some(3), "block {block}");
        }
    }

    #[test]
    fn several_sources_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, format!("{}\n{}", ok_line("f1", "\"a\""), ok_line("f2", "\"b\""))).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let inputs =
            vec![Input::File(file.clone()), Input::Bytes(format!("{}\n", ok_line("b1", "\"c\"")).as_bytes().into())];
        let blocks = ResultReader::start(inputs, ReaderOptions::default()).collect().unwrap();
        let ids: Vec<(usize, &str)> =
            blocks.iter().flat_map(|b| b.records.iter().map(move |r| (b.source, b.str(r.custom_id)))).collect();
        assert_eq!(ids, [(0, "f1"), (0, "f2"), (1, "b1")]);
        let r = blocks.iter().flat_map(|b| b.records.iter().filter(|r| b.str(r.custom_id) == "f2")).next().unwrap();
        let back = read_line_at(&file, r.offset, r.len).unwrap();
        assert_eq!(back, ok_line("f2", "\"b\"").as_bytes());
        let e = ResultReader::start(vec![Input::Bytes(b"{}\n"[..].into())], ReaderOptions::default())
            .collect()
            .unwrap_err();
        assert_eq!((e.source, e.line), (0, Some(1)));
        // Lines are numbered per source.
        let first: Arc<[u8]> =
            format!("{}\n{}\n{}\n", ok_line("a", "1"), ok_line("b", "2"), ok_line("c", "3")).as_bytes().into();
        let second: Arc<[u8]> = format!("{}\n{{\n", ok_line("d", "4")).as_bytes().into();
        for block_size in [16, 1 << 16] {
            let opts = ReaderOptions { block_size, ..Default::default() };
            let blocks =
                ResultReader::start(vec![Input::Bytes(first.clone()), Input::Bytes(first.clone())], opts.clone())
                    .collect()
                    .unwrap();
            let lines: Vec<(usize, u64)> =
                blocks.iter().flat_map(|b| b.records.iter().map(move |r| (b.source, r.line))).collect();
            assert_eq!(lines, [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]);
            let e = ResultReader::start(vec![Input::Bytes(first.clone()), Input::Bytes(second.clone())], opts)
                .collect()
                .unwrap_err();
            assert_eq!((e.source, e.line), (1, Some(2)));
        }
    }

    #[test]
    fn dropping_the_reader_stops_it() {
        let line = ok_line("a", "\"x\"") + "\n";
        let data: Vec<u8> = line.repeat(20_000).into_bytes();
        let mut r = ResultReader::start(
            vec![Input::Bytes(data.into())],
            ReaderOptions { block_size: 4096, ..Default::default() },
        );
        assert!(matches!(r.next(Duration::from_secs(10)), Next::Block(_)));
        drop(r); // must not hang or panic
    }
}
