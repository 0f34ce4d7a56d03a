//! Rust futures as asyncio awaitables (pyo3-async-runtimes' generic layer) on *our* runtime,
//! so the async path shares the sync path's runtime and, like it, gets a fresh one in a
//! forked child instead of hanging on the parent's.

use std::future::Future;
use std::pin::Pin;

use once_cell::unsync::OnceCell;
use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{self, ContextExt, Runtime};
use pyo3_async_runtimes::TaskLocals;

pub struct SharedRuntime;

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

fn handle() -> tokio::runtime::Handle {
    // `awaitable` made the runtime before anything is spawned on it: this cannot fail.
    crate::runtime::get().expect("cannot start the fastrouter-batch runtime").handle().clone()
}

impl Runtime for SharedRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        handle().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        handle().spawn_blocking(f)
    }
}

impl ContextExt for SharedRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS.try_with(|c| c.get().cloned()).unwrap_or_default()
    }
}

/// `fut` as an awaitable; cancelling the asyncio task drops the Rust future.
pub fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    crate::runtime::get()?;
    generic::future_into_py::<SharedRuntime, F, T>(py, fut)
}
