//! The Python exception tree, and every mapping of a Rust error to it, in one place.

use pyo3::exceptions::{PyException, PyOSError};
use pyo3::prelude::*;

use fastrouter_batch_core::validate::ValidateError;

pyo3::create_exception!(
    fastrouter_batch._core,
    FastRouterError,
    PyException,
    "Base of every error fastrouter_batch raises on purpose."
);
pyo3::create_exception!(
    fastrouter_batch._core,
    BatchValidationError,
    FastRouterError,
    "A batch file breaks the contract's rules; `.report` holds every problem."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FastRouterError", py.get_type::<FastRouterError>())?;
    m.add("BatchValidationError", py.get_type::<BatchValidationError>())?;
    Ok(())
}

/// An I/O error as Python's `OSError` family (FileNotFoundError, PermissionError, ...).
pub fn io_result<T>(r: std::io::Result<T>) -> PyResult<T> {
    r.map_err(PyErr::from)
}

/// An I/O error on a named file: `OSError(errno, text, path)`, which Python turns into the
/// matching subclass (FileNotFoundError, IsADirectoryError, ...), naming the file.
pub fn io_on_path(e: std::io::Error, path: &std::path::Path) -> PyErr {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(errno) => PyOSError::new_err((errno, text, path.to_string_lossy().into_owned())),
        None => PyOSError::new_err(format!("{}: {text}", path.display())),
    }
}

pub fn from_validate(e: ValidateError, path: Option<&std::path::Path>) -> PyErr {
    match (e, path) {
        (ValidateError::Io(io), Some(p)) => io_on_path(io, p),
        (ValidateError::Io(io), None) => PyErr::from(io),
        (ValidateError::Cancelled, _) => {
            pyo3::exceptions::PyKeyboardInterrupt::new_err("validation was interrupted")
        }
    }
}

/// A `BatchValidationError` carrying the report it summarises.
pub fn validation_failed(py: Python<'_>, message: String, report: Py<PyAny>) -> PyErr {
    let err = BatchValidationError::new_err(message);
    if let Err(e) = err.value(py).setattr("report", report) {
        return e;
    }
    err
}

/// The engine could not start: binding or storage trouble is an `OSError`, a bad
/// setting a `ValueError`.
pub fn from_engine(e: fastrouter_batch_engine::EngineError) -> PyErr {
    use fastrouter_batch_engine::EngineError;
    match e {
        EngineError::Bind(m) | EngineError::Storage(m) => PyOSError::new_err(m),
        EngineError::Config(m) => pyo3::exceptions::PyValueError::new_err(m),
    }
}
