//! An upload's body, metered on its way into the multipart parser.
//!
//! The parser (multer) holds in memory whatever it has been fed and not yet handed out as
//! part data: while it looks for the first boundary or for the end of a part's headers
//! that is everything, so a body with no boundary, or a header that never ends, would be
//! buffered whole. The meter feeds it one chunk per poll and fails the body once more
//! than `SLACK` bytes sit inside the parser: the handler reports each part chunk it takes.
//! The rest of such a body is read and dropped first (up to `MAX_DRAIN_BYTES`), so the
//! client, still sending, gets the answer rather than a reset connection.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::Stream;

/// The most the parser may hold: well above a part header and a few socket reads (hyper
/// hands out at most ~400 KiB at a time), far below anything that matters for memory.
pub const SLACK: u64 = 2 << 20;

/// How much of a refused upload is read (and thrown away) so the client, still sending,
/// gets the answer instead of a reset connection; past this the connection is closed.
pub const MAX_DRAIN_BYTES: u64 = 1 << 30;

/// Shared between the body (inside the parser) and the handler.
#[derive(Default)]
pub struct Meter {
    fed: AtomicU64,
    taken: AtomicU64,
    overflowed: AtomicBool,
}

impl Meter {
    /// The handler took `n` bytes of part data out of the parser.
    pub fn took(&self, n: usize) {
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Whether the body was cut off because the parser held too much.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }
}

struct Metered {
    inner: BodyDataStream,
    meter: Arc<Meter>,
    /// A chunk went out (or was dropped) on the last poll: the next one yields (and wakes
    /// itself) so the parser looks at each chunk before it reads another.
    just_fed: bool,
    /// Overflowed: the rest is dropped, then the parser gets the error.
    dropped: Option<u64>,
    ended: bool,
}

#[derive(Debug)]
struct TooMuchBuffered;

impl std::fmt::Display for TooMuchBuffered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {SLACK} bytes without a multipart boundary or the end of a part's headers")
    }
}

impl std::error::Error for TooMuchBuffered {}

impl Stream for Metered {
    type Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.just_fed {
            self.just_fed = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(next) => next,
        };
        if let Some(dropped) = self.dropped {
            return match next {
                Some(Ok(chunk)) if dropped + (chunk.len() as u64) <= MAX_DRAIN_BYTES => {
                    self.dropped = Some(dropped + chunk.len() as u64);
                    self.just_fed = true;
                    self.poll_next(cx)
                }
                _ => {
                    self.ended = true;
                    Poll::Ready(Some(Err(Box::new(TooMuchBuffered))))
                }
            };
        }
        match next {
            Some(Ok(chunk)) => {
                let fed = self.meter.fed.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
                if fed.saturating_sub(self.meter.taken.load(Ordering::Relaxed)) > SLACK {
                    self.meter.overflowed.store(true, Ordering::Relaxed);
                    self.dropped = Some(0);
                    self.just_fed = true;
                    return self.poll_next(cx);
                }
                self.just_fed = true;
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(Box::new(e)))),
            None => {
                self.ended = true;
                Poll::Ready(None)
            }
        }
    }
}

/// `body`, metered; the handler keeps the meter.
pub fn meter(body: Body) -> (Body, Arc<Meter>) {
    let meter = Arc::new(Meter::default());
    let metered =
        Metered { inner: body.into_data_stream(), meter: meter.clone(), just_fed: false, dropped: None, ended: false };
    (Body::from_stream(metered), meter)
}
