//! The one gate every blocking call goes through: owned Rust values in, the GIL released,
//! the wait cut into ~100 ms ticks between which pending signals are handled, so Ctrl-C
//! interrupts within a fraction of a second. Works inside a running asyncio loop: it never
//! touches it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

const SIGNAL_TICK: Duration = Duration::from_millis(100);

/// Runs `fut` on the shared runtime with the GIL released. A pending signal (KeyboardInterrupt)
/// drops the future and raises.
pub fn block_on<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = crate::runtime::get()?;
    py.check_signals()?;
    py.detach(|| {
        rt.block_on(async move {
            tokio::pin!(fut);
            // The first check is the one above: the next is a tick away. (A first tick "at
            // once" still waits for the timer driver, ~1 ms, on every call.)
            let start = tokio::time::Instant::now() + SIGNAL_TICK;
            let mut tick = tokio::time::interval_at(start, SIGNAL_TICK);
            loop {
                tokio::select! {
                    out = &mut fut => return Ok(out),
                    _ = tick.tick() => Python::attach(|py| py.check_signals())?,
                }
            }
        })
    })
}

/// Runs CPU- or disk-bound work on the runtime's blocking pool through the gate. `work`
/// gets a flag that turns true when the caller was interrupted, so it can stop early.
pub fn run_blocking<T, W>(py: Python<'_>, work: W) -> PyResult<T>
where
    T: Send + 'static,
    W: FnOnce(&AtomicBool) -> T + Send + 'static,
{
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let task = crate::runtime::get()?.spawn_blocking(move || work(&flag));
    let result = block_on(py, task);
    if result.is_err() {
        cancel.store(true, Ordering::Relaxed);
    }
    match result? {
        Ok(value) => Ok(value),
        // The work panicked: surface it instead of aborting the interpreter.
        Err(e) => Err(pyo3::exceptions::PyRuntimeError::new_err(format!("internal error in fastrouter_batch: {e}"))),
    }
}

/// Takes what `poll` has ready, or waits for it with the GIL released. `poll(wait)` waits at
/// most about `wait` (zero: not at all) and gives None when nothing came; between waits
/// pending signals are handled. For work that runs on this thread between waits (making
/// Python objects as results arrive), where a future would not do.
pub fn poll<T, P>(py: Python<'_>, mut poll: P) -> PyResult<T>
where
    T: Send,
    P: FnMut(Duration) -> Option<T> + Send,
{
    py.check_signals()?;
    // Ready already: no need to give up the GIL.
    if let Some(ready) = poll(Duration::ZERO) {
        return Ok(ready);
    }
    loop {
        if let Some(ready) = py.detach(|| poll(SIGNAL_TICK)) {
            return Ok(ready);
        }
        py.check_signals()?;
    }
}

/// A short blocking call (a read of one line from disk) with the GIL released: it returns
/// in microseconds, so it needs no signal checks.
pub fn short<T: Send>(py: Python<'_>, call: impl FnOnce() -> T + Send) -> T {
    py.detach(call)
}
