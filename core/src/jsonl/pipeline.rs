//! The pipeline validation and results reading share: a reader thread cuts the sources into
//! blocks of whole lines (`blocks::BlockReader`), worker threads process the blocks in
//! parallel, and the caller takes the outputs back in source order.
//!
//! Memory stays bounded whatever the sources' size: at most `in_flight` blocks are between
//! the reader and the caller, and a block's buffer goes back to the reader (`recycle`) to be
//! filled again. The threads are scoped: the pipeline borrows its work and its sources, and
//! dropping it stops the threads. With no workers everything runs on the caller's thread,
//! inside `next`.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::Scope;
use std::time::Duration;

use super::blocks::{Block, BlockReader, Chunk};

/// A piece of a source: whole lines, or an over-long line skipped unread.
#[derive(Debug)]
pub struct Piece {
    /// Index of the source in the list given to [`Pipeline::start`].
    pub source: usize,
    /// Where the piece starts in its source (a byte-order mark counts).
    pub offset: u64,
    /// The source's first piece (whose first line may start with a byte-order mark).
    pub first: bool,
    pub chunk: Chunk,
}

/// What is done with each piece: on a worker thread, or on the caller's when it helps.
pub trait Work: Sync {
    type Output: Send;
    fn work(&self, piece: &Piece) -> Self::Output;
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Bytes per block (a block ends at a newline, so it may be longer).
    pub block_size: usize,
    /// Longest line held; a longer one comes as `Chunk::LongLine`.
    pub max_line: usize,
    /// Worker threads; 0 works every piece on the caller's thread, in `next`.
    pub workers: usize,
    /// Pieces at most between the reader and the caller.
    pub in_flight: usize,
    /// Bytes read at most from each source: a longer one ends with `Chunk::Stopped`.
    pub max_bytes: u64,
    /// Skip lines over `max_line` (`Chunk::LongLine`), or stop the source at the first one.
    pub skip_long_lines: bool,
}

impl Options {
    fn reader<R: Read>(&self, src: R) -> BlockReader<R> {
        let reader = BlockReader::new(src, self.block_size, self.max_line).with_max_bytes(self.max_bytes);
        if self.skip_long_lines {
            reader
        } else {
            reader.stop_at_long_lines()
        }
    }
}

/// What [`Pipeline::next`] gives.
#[derive(Debug)]
pub enum Next<O> {
    /// The next piece in source order, and its output. Its block goes back with `recycle`.
    Piece(Piece, O),
    /// Nothing yet (the timeout passed): ask again.
    Pending,
    /// Every source was read, `bytes` bytes in all.
    Done { bytes: u64 },
    /// A source could not be read (or a thread of the pipeline died); nothing more comes.
    Failed { source: usize, error: io::Error },
}

/// An event of the reader thread, numbered in source order.
enum Event<O> {
    Piece(Piece, O),
    Done { bytes: u64 },
    Failed { source: usize, error: io::Error },
}

type Numbered<O> = (u64, Event<O>);

/// The pipeline's threads, seen from the caller.
struct Threads<O> {
    events: Receiver<Numbered<O>>,
    /// One token per piece the reader may cut. A piece taken by `next` owes its token back:
    /// paid by `recycle` right after the piece's block (so the reader finds the buffer to
    /// reuse when it wakes), or by the next `next` for a piece not recycled.
    tokens: SyncSender<()>,
    owed: usize,
    /// The workers' queue, which `help` takes from too.
    queue: Arc<Mutex<Receiver<(u64, Piece)>>>,
    recycled: Sender<Block>,
    pending: BTreeMap<u64, Event<O>>,
    next_seq: u64,
    stop: Arc<AtomicBool>,
    disconnected: bool,
}

/// Everything on the caller's thread.
struct Inline<R> {
    opts: Options,
    sources: std::iter::Enumerate<std::vec::IntoIter<R>>,
    /// The source being read: its index, its reader, where the next piece starts.
    current: Option<(usize, BlockReader<R>, u64)>,
    read: u64,
}

enum Mode<R, O> {
    Threads(Threads<O>),
    Inline(Inline<R>),
}

pub struct Pipeline<'scope, R, W: Work> {
    work: &'scope W,
    mode: Mode<R, W::Output>,
    finished: bool,
}

impl<'scope, R, W> Pipeline<'scope, R, W>
where
    R: Read + Send + 'scope,
    W: Work,
{
    /// Starts reading `sources` in order, on threads of `scope` unless `opts.workers` is 0.
    pub fn start<'env>(scope: &'scope Scope<'scope, 'env>, sources: Vec<R>, work: &'scope W, opts: Options) -> Self {
        if opts.workers == 0 {
            let inline = Inline { opts, sources: sources.into_iter().enumerate(), current: None, read: 0 };
            return Self { work, mode: Mode::Inline(inline), finished: false };
        }
        let in_flight = opts.in_flight.max(1);
        let stop = Arc::new(AtomicBool::new(false));
        let (token_tx, token_rx) = mpsc::sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = token_tx.send(());
        }
        let (queue_tx, queue_rx) = mpsc::sync_channel::<(u64, Piece)>(in_flight);
        let (event_tx, event_rx) = mpsc::channel::<Numbered<W::Output>>();
        let (recycle_tx, recycle_rx) = mpsc::channel::<Block>();
        let queue = Arc::new(Mutex::new(queue_rx));
        for _ in 0..opts.workers {
            let (queue, events, stop) = (queue.clone(), event_tx.clone(), stop.clone());
            scope.spawn(move || work_loop(work, &queue, &events, &stop));
        }
        let reader_stop = stop.clone();
        scope.spawn(move || read_loop(sources, opts, &token_rx, &queue_tx, &event_tx, &recycle_rx, &reader_stop));
        let threads = Threads {
            events: event_rx,
            tokens: token_tx,
            owed: 0,
            queue,
            recycled: recycle_tx,
            pending: BTreeMap::new(),
            next_seq: 0,
            stop,
            disconnected: false,
        };
        Self { work, mode: Mode::Threads(threads), finished: false }
    }

    /// The next piece in order, waiting at most `timeout` for it. After `Done` or `Failed`
    /// (or `stop`), nothing more comes: `Pending` for ever.
    pub fn next(&mut self, timeout: Duration) -> Next<W::Output> {
        if self.finished {
            return Next::Pending;
        }
        let next = match &mut self.mode {
            Mode::Inline(inline) => inline.next(self.work),
            Mode::Threads(threads) => threads.next(timeout),
        };
        if matches!(next, Next::Done { .. } | Next::Failed { .. }) {
            self.stop();
        }
        next
    }

    /// Works, on this thread, a piece no worker has taken yet, if there is one: a caller
    /// about to wait for the next piece can help instead. Says whether it did.
    pub fn help(&mut self) -> bool {
        let Mode::Threads(threads) = &mut self.mode else { return false };
        let job = match threads.queue.try_lock() {
            Ok(queue) => queue.try_recv(),
            Err(_) => return false, // a worker is taking one
        };
        let Ok((seq, piece)) = job else { return false };
        let out = self.work.work(&piece);
        threads.pending.insert(seq, Event::Piece(piece, out));
        true
    }

    /// Gives a piece's block back once it is used, for the reader to fill again.
    pub fn recycle(&mut self, block: Block) {
        match &mut self.mode {
            Mode::Threads(threads) => {
                let _ = threads.recycled.send(block);
                if threads.owed > 0 {
                    threads.owed -= 1;
                    let _ = threads.tokens.try_send(());
                }
            }
            Mode::Inline(inline) => {
                if let Some((_, reader, _)) = &mut inline.current {
                    reader.recycle(block);
                }
            }
        }
    }

    /// Stops reading: the threads end, and `next` gives nothing more.
    pub fn stop(&mut self) {
        self.finished = true;
        if let Mode::Threads(threads) = &mut self.mode {
            threads.stop.store(true, Ordering::Relaxed);
            threads.pending.clear();
        }
    }
}

impl<R, W: Work> Drop for Pipeline<'_, R, W> {
    fn drop(&mut self) {
        // The threads see the flag or their closed channels and end; the scope joins them.
        if let Mode::Threads(threads) = &self.mode {
            threads.stop.store(true, Ordering::Relaxed);
        }
    }
}

impl<R: Read> Inline<R> {
    fn next<W: Work>(&mut self, work: &W) -> Next<W::Output> {
        loop {
            let Some((source, reader, offset)) = &mut self.current else {
                match self.sources.next() {
                    Some((source, src)) => {
                        let reader = self.opts.reader(src);
                        self.current = Some((source, reader, 0));
                        continue;
                    }
                    None => return Next::Done { bytes: self.read },
                }
            };
            match reader.next_chunk() {
                Err(error) => return Next::Failed { source: *source, error },
                Ok(None) => {
                    self.read += reader.bytes_read;
                    self.current = None;
                }
                Ok(Some(chunk)) => {
                    let piece = Piece { source: *source, offset: *offset, first: *offset == 0, chunk };
                    *offset += piece_len(&piece.chunk);
                    let out = work.work(&piece);
                    return Next::Piece(piece, out);
                }
            }
        }
    }
}

/// The bytes a chunk stands for in its source.
fn piece_len(chunk: &Chunk) -> u64 {
    match chunk {
        Chunk::Lines(block) => block.len() as u64,
        Chunk::LongLine { bytes, newline } => bytes + u64::from(*newline),
        Chunk::Stopped { partial, .. } => *partial,
    }
}

impl<O> Threads<O> {
    fn next(&mut self, timeout: Duration) -> Next<O> {
        for _ in 0..std::mem::take(&mut self.owed) {
            let _ = self.tokens.try_send(());
        }
        loop {
            if let Some(event) = self.pending.remove(&self.next_seq) {
                self.next_seq += 1;
                return match event {
                    Event::Piece(piece, out) => {
                        self.owed += 1;
                        Next::Piece(piece, out)
                    }
                    Event::Done { bytes } => Next::Done { bytes },
                    Event::Failed { source, error } => Next::Failed { source, error },
                };
            }
            if self.disconnected {
                // Every thread ended and the next event never came: one of them died.
                let error = io::Error::other("internal error: a reading thread stopped");
                return Next::Failed { source: 0, error };
            }
            let got = if timeout.is_zero() {
                self.events.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                self.events.recv_timeout(timeout)
            };
            match got {
                Ok((seq, event)) => {
                    self.pending.insert(seq, event);
                }
                Err(RecvTimeoutError::Timeout) => return Next::Pending,
                Err(RecvTimeoutError::Disconnected) => self.disconnected = true,
            }
        }
    }
}

fn read_loop<R: Read, O>(
    sources: Vec<R>,
    opts: Options,
    tokens: &Receiver<()>,
    queue: &SyncSender<(u64, Piece)>,
    events: &Sender<Numbered<O>>,
    recycled: &Receiver<Block>,
    stop: &AtomicBool,
) {
    let (mut seq, mut read) = (0u64, 0u64);
    // A token is taken before a piece is cut (so the buffers given back meanwhile are
    // there to reuse) and kept across the end of a source.
    let mut token = false;
    for (source, src) in sources.into_iter().enumerate() {
        let mut reader = opts.reader(src);
        let mut offset = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if !token {
                if tokens.recv().is_err() {
                    return; // the caller is gone
                }
                token = true;
            }
            while let Ok(block) = recycled.try_recv() {
                reader.recycle(block);
            }
            let chunk = match reader.next_chunk() {
                Err(error) => {
                    let _ = events.send((seq, Event::Failed { source, error }));
                    return;
                }
                Ok(None) => break,
                Ok(Some(chunk)) => chunk,
            };
            let piece = Piece { source, offset, first: offset == 0, chunk };
            offset += piece_len(&piece.chunk);
            if queue.send((seq, piece)).is_err() {
                return;
            }
            token = false;
            seq += 1;
        }
        read += reader.bytes_read;
    }
    let _ = events.send((seq, Event::Done { bytes: read }));
}

fn work_loop<W: Work>(
    work: &W,
    queue: &Mutex<Receiver<(u64, Piece)>>,
    events: &Sender<Numbered<W::Output>>,
    stop: &AtomicBool,
) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok((seq, piece)) = job else { return };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let out = work.work(&piece);
        if events.send((seq, Event::Piece(piece, out))).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonl::blocks::for_each_line;

    /// Each piece's lines, as text; a line over 50 bytes as `<long N>` (a block that holds
    /// one whole is not cut at it).
    struct Lines;

    impl Work for Lines {
        type Output = Vec<String>;
        fn work(&self, piece: &Piece) -> Vec<String> {
            let mut out = vec![];
            match &piece.chunk {
                Chunk::Lines(b) => for_each_line(b, |_, l| {
                    out.push(if l.len() > 50 {
                        format!("<long {}>", l.len())
                    } else {
                        String::from_utf8_lossy(l).into()
                    })
                }),
                Chunk::LongLine { bytes, .. } => out.push(format!("<long {bytes}>")),
                Chunk::Stopped { limit, partial } => out.push(format!("<stopped {limit:?} {partial}>")),
            }
            out
        }
    }

    /// Every line of every source, in order, with the source's index, and the bytes read.
    fn run(sources: Vec<&[u8]>, workers: usize, block_size: usize) -> (Vec<(usize, String)>, u64) {
        let opts =
            Options { block_size, max_line: 50, workers, in_flight: 3, max_bytes: u64::MAX, skip_long_lines: true };
        std::thread::scope(|scope| {
            let mut p = Pipeline::start(scope, sources, &Lines, opts);
            let mut got = vec![];
            loop {
                if p.help() {
                    continue;
                }
                match p.next(Duration::from_secs(10)) {
                    Next::Piece(piece, lines) => {
                        got.extend(lines.into_iter().map(|l| (piece.source, l)));
                        if let Chunk::Lines(b) = piece.chunk {
                            p.recycle(b);
                        }
                    }
                    Next::Pending => panic!("nothing within 10 s"),
                    Next::Done { bytes } => return (got, bytes),
                    Next::Failed { error, .. } => panic!("{error}"),
                }
            }
        })
    }

    #[test]
    fn pieces_come_back_in_order_inline_or_on_workers() {
        let long = "x".repeat(80);
        let a: String = (0..500).map(|i| format!("a{i}\n")).collect();
        let b = format!("b0\n{long}\nb1");
        let want: Vec<(usize, String)> = a
            .lines()
            .map(|l| (0, l.to_owned()))
            .chain([(1, "b0".into()), (1, format!("<long {}>", long.len())), (1, "b1".into())])
            .collect();
        for workers in [0, 1, 3] {
            for block_size in [1, 7, 64, 1 << 16] {
                let (got, bytes) = run(vec![a.as_bytes(), b.as_bytes(), b""], workers, block_size);
                assert_eq!(got, want, "workers {workers}, block size {block_size}");
                assert_eq!(bytes, (a.len() + b.len()) as u64);
            }
        }
    }

    struct Broken;

    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn a_source_that_cannot_be_read_fails_in_its_place() {
        for workers in [0, 2] {
            let sources: Vec<Box<dyn Read + Send>> = vec![Box::new(&b"ok\n"[..]), Box::new(Broken)];
            let opts = Options {
                block_size: 64,
                max_line: 50,
                workers,
                in_flight: 2,
                max_bytes: u64::MAX,
                skip_long_lines: true,
            };
            std::thread::scope(|scope| {
                let mut p = Pipeline::start(scope, sources, &Lines, opts);
                let Next::Piece(piece, lines) = p.next(Duration::from_secs(10)) else { panic!("no first piece") };
                assert_eq!((piece.source, lines), (0, vec!["ok".to_owned()]));
                match p.next(Duration::from_secs(10)) {
                    Next::Failed { source, error } => {
                        assert_eq!((source, error.to_string()), (1, "disk on fire".into()))
                    }
                    other => panic!("{other:?}"),
                }
                assert!(matches!(p.next(Duration::ZERO), Next::Pending));
            });
        }
    }

    #[test]
    fn leaving_early_stops_the_threads() {
        let data = "line\n".repeat(100_000);
        let opts = Options {
            block_size: 256,
            max_line: 50,
            workers: 2,
            in_flight: 2,
            max_bytes: u64::MAX,
            skip_long_lines: true,
        };
        // The scope joins the threads: this returns only if they stop.
        std::thread::scope(|scope| {
            let mut p = Pipeline::start(scope, vec![data.as_bytes()], &Lines, opts);
            assert!(matches!(p.next(Duration::from_secs(10)), Next::Piece(..)));
        });
    }
}
