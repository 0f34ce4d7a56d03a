//! `fastrouter_batch._core`: the thin binding over `fastrouter-batch-core`. Every class and
//! function registered here has its stub in `python/fastrouter_batch/_core.pyi`.

mod aio;
mod api_client;
mod args;
mod builder;
mod engine;
mod errors;
mod fake_upstream;
mod gate;
mod lines;
mod py_json;
mod request;
mod results;
mod rows;
mod runtime;
mod serving;
mod validation;

use pyo3::prelude::*;

/// Rust's allocations (never Python's) go to mimalloc: thread-local heaps keep the engine's
/// request handling from queueing on glibc's arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_ANTHROPIC_MAX_TOKENS", fastrouter_batch_core::model::DEFAULT_MAX_TOKENS)?;
    errors::register(m)?;
    m.add_class::<request::BatchRequest>()?;
    m.add_class::<builder::BatchBuilder>()?;
    m.add_class::<builder::LineIter>()?;
    m.add_class::<validation::Limits>()?;
    m.add_class::<validation::ValidationIssue>()?;
    m.add_class::<validation::ValidationReport>()?;
    m.add_function(wrap_pyfunction!(validation::validate, m)?)?;
    m.add_class::<api_client::ApiClient>()?;
    m.add_class::<lines::LineStream>()?;
    m.add_class::<engine::LocalServer>()?;
    m.add_class::<fake_upstream::FakeUpstream>()?;
    m.add_class::<results::BatchResult>()?;
    m.add_class::<results::ResultSet>()?;
    m.add_class::<results::ResultIterator>()?;
    m.add_function(wrap_pyfunction!(results::read_results, m)?)?;
    m.add_function(wrap_pyfunction!(results::read_texts, m)?)?;
    Ok(())
}
