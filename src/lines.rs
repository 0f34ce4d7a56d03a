//! `LineStream`: a file's lines as they arrive (the client's `files().lines`, which reopens
//! a download cut off mid-way), for `for line in ...` and `async for line in ...`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use fastrouter_batch_client::ClientError;
use futures_util::{Stream, StreamExt};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use tokio::sync::{mpsc, Mutex as AsyncMutex};

use crate::errors::{self, Error};
use crate::{aio, gate};

type LineResult = Result<String, ClientError>;

#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct LineStream {
    rx: Arc<AsyncMutex<mpsc::Receiver<LineResult>>>,
    /// Lines already received, handed out without a trip through the event loop: an
    /// awaited step costs tens of microseconds, a line a few hundred nanoseconds.
    ready: Arc<Mutex<VecDeque<LineResult>>>,
}

/// Lines taken at most per awaited step.
const READY_LINES: usize = 4096;

impl LineStream {
    /// Pumps `lines` into a bounded channel on the shared runtime; the pump stops when the
    /// stream ends or the `LineStream` is dropped.
    pub fn start(lines: impl Stream<Item = LineResult> + Send + 'static) -> errors::Result<Self> {
        let (tx, rx) = mpsc::channel(256);
        crate::runtime::get()?.spawn(async move {
            let mut lines = std::pin::pin!(lines);
            while let Some(line) = lines.next().await {
                if tx.send(line).await.is_err() {
                    return; // the iterator was dropped
                }
            }
        });
        Ok(Self { rx: Arc::new(AsyncMutex::new(rx)), ready: Arc::default() })
    }

    fn take_ready(&self) -> Option<LineResult> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }
}

/// The next line, waited for; the lines already behind it go to `ready`.
async fn receive(
    rx: Arc<AsyncMutex<mpsc::Receiver<LineResult>>>,
    ready: Arc<Mutex<VecDeque<LineResult>>>,
) -> Option<LineResult> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await;
    let mut ready = ready.lock().unwrap_or_else(|e| e.into_inner());
    while ready.len() < READY_LINES {
        match rx.try_recv() {
            Ok(item) => ready.push_back(item),
            Err(_) => break,
        }
    }
    first
}

fn next_item(item: Option<LineResult>) -> errors::Result<Option<String>> {
    item.transpose().map_err(Error::from)
}

/// An awaitable already done: `await` gives `value` at once.
#[pyclass(module = "fastrouter_batch._core", frozen)]
struct Ready {
    value: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl Ready {
    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<()> {
        let value = self.value.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_else(|| py.None());
        Err(PyStopIteration::new_err((value,)))
    }
}

#[pymethods]
impl LineStream {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> errors::Result<Option<String>> {
        if let Some(item) = self.take_ready() {
            return next_item(Some(item));
        }
        let (rx, ready) = (self.rx.clone(), self.ready.clone());
        next_item(gate::block_on(py, receive(rx, ready))?)
    }

    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> errors::Result<Bound<'py, PyAny>> {
        if let Some(item) = self.take_ready() {
            let line = next_item(Some(item))?.into_pyobject(py)?.into_any().unbind();
            return Ok(Bound::new(py, Ready { value: Mutex::new(Some(line)) })?.into_any());
        }
        let (rx, ready) = (self.rx.clone(), self.ready.clone());
        Ok(aio::awaitable(py, async move {
            match next_item(receive(rx, ready).await)? {
                Some(line) => Ok(line),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })?)
    }
}
