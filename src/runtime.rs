//! The one tokio runtime of the process: made on first use (never at import) and shared by
//! the sync and asyncio paths.
//!
//! After `os.fork()` the child inherits the parent's runtime without its threads, so using
//! it would hang. The runtime remembers the pid that made it; a child gets a fresh runtime
//! and the inherited one is leaked, never dropped (dropping would wait for threads that do
//! not exist in the child).

use std::sync::Mutex;

use pyo3::PyResult;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// The process's runtime, made (or remade after a fork) on demand; an OSError if the
/// system refuses its threads.
pub fn get() -> PyResult<&'static Runtime> {
    let pid = std::process::id();
    // A poisoned lock only means a panic elsewhere; the value is still usable.
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((owner, rt)) = *slot {
        if owner == pid {
            return Ok(rt);
        }
    }
    let rt: &'static Runtime =
        Box::leak(Box::new(Builder::new_multi_thread().enable_all().thread_name("fastrouter-batch").build()?));
    *slot = Some((pid, rt));
    Ok(rt)
}
