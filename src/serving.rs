//! The lifecycle that `LocalServer` and `FakeUpstream` share: a server started by this
//! process on the shared runtime, stopped through the gate, stopped in the background when
//! garbage-collected, and left alone in a forked child.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::gate;

/// A server that can be told to stop (and waits until it has).
pub trait Stop: Send + 'static {
    fn stop(self) -> impl Future<Output = ()> + Send + 'static;
}

impl Stop for fastrouter_batch_engine::Engine {
    fn stop(self) -> impl Future<Output = ()> + Send + 'static {
        fastrouter_batch_engine::Engine::stop(self)
    }
}

impl Stop for fastrouter_batch_engine::FakeUpstream {
    fn stop(self) -> impl Future<Output = ()> + Send + 'static {
        fastrouter_batch_engine::FakeUpstream::stop(self)
    }
}

/// The running server, if any, and the process that started it.
pub struct Serving<T: Stop> {
    slot: Mutex<Option<(T, u32)>>,
}

impl<T: Stop> Default for Serving<T> {
    fn default() -> Self {
        Self { slot: Mutex::new(None) }
    }
}

impl<T: Stop> Serving<T> {
    /// The server of this process. In a forked child the parent's server is not there (its
    /// threads stayed in the parent): it is forgotten, never stopped or dropped from here,
    /// which would wait on tasks that do not exist and could remove the parent's files.
    pub fn lock(&self) -> MutexGuard<'_, Option<(T, u32)>> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|(_, pid)| *pid != std::process::id()) {
            std::mem::forget(slot.take());
        }
        slot
    }

    pub fn is_running(&self) -> bool {
        self.lock().is_some()
    }

    pub fn set(&self, server: T) {
        *self.lock() = Some((server, std::process::id()));
    }

    /// Stops the server (a no-op when none runs). The stop runs as its own task, so an
    /// interrupted wait (Ctrl-C) still lets it complete in the background.
    pub fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let Some((server, _)) = self.lock().take() else { return Ok(()) };
        let rt = crate::runtime::get()?;
        let stopping = rt.spawn(server.stop());
        gate::block_on(py, stopping)?.map_err(|e| PyRuntimeError::new_err(format!("stopping the server failed: {e}")))
    }
}

impl<T: Stop> Drop for Serving<T> {
    /// Garbage-collected while running: stopped in the background (or, in a forked child,
    /// forgotten, see `lock`).
    fn drop(&mut self) {
        if let Some((server, pid)) = self.slot.get_mut().ok().and_then(Option::take) {
            if pid != std::process::id() {
                std::mem::forget(server);
            } else if let Ok(rt) = crate::runtime::get() {
                rt.spawn(server.stop());
            }
        }
    }
}
