//! The Python exception tree, and the one place Rust errors become Python exceptions.
//!
//! `Error` gathers every error the binding meets; `?` converts into it (as polars'
//! `PyPolarsErr` does) and `From<Error> for PyErr` maps each to its class. Binding functions
//! return `errors::Result<T>`; pyo3 raises the mapped exception.

use std::path::{Path, PathBuf};

use pyo3::exceptions::{PyException, PyKeyboardInterrupt, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use fastrouter_batch_client::ClientError;
use fastrouter_batch_core::results::ReadError;
use fastrouter_batch_core::validate::ValidateError;
use fastrouter_batch_engine::EngineError;

use crate::py_json::{JsonError, JsonErrorKind};

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

// The client's tree, openai-python's names: APIError > APIStatusError > one class per
// status, and APIError > APIConnectionError > APITimeoutError.
pyo3::create_exception!(fastrouter_batch._core, APIError, FastRouterError, "The Batch API could not be used.");
pyo3::create_exception!(fastrouter_batch._core, APIStatusError, APIError, "The server answered with an error status.");
pyo3::create_exception!(fastrouter_batch._core, BadRequestError, APIStatusError, "400: the request is invalid.");
pyo3::create_exception!(
    fastrouter_batch._core,
    AuthenticationError,
    APIStatusError,
    "401: the API key is missing or wrong."
);
pyo3::create_exception!(
    fastrouter_batch._core,
    InsufficientCreditsError,
    APIStatusError,
    "402: the account has not enough credits (FastRouter's insufficient-credits answer)."
);
pyo3::create_exception!(fastrouter_batch._core, PermissionDeniedError, APIStatusError, "403: the key may not do this.");
pyo3::create_exception!(
    fastrouter_batch._core,
    NotFoundError,
    APIStatusError,
    "404: no such file or batch (for this key)."
);
pyo3::create_exception!(
    fastrouter_batch._core,
    ConflictError,
    APIStatusError,
    "409: the object is not in a state that allows this."
);
pyo3::create_exception!(
    fastrouter_batch._core,
    RequestTooLargeError,
    APIStatusError,
    "413: the upload is over the server's limit."
);
pyo3::create_exception!(
    fastrouter_batch._core,
    UnprocessableEntityError,
    APIStatusError,
    "422: the request could not be processed."
);
pyo3::create_exception!(fastrouter_batch._core, RateLimitError, APIStatusError, "429: too many requests.");
pyo3::create_exception!(fastrouter_batch._core, InternalServerError, APIStatusError, "5xx: the server failed.");
pyo3::create_exception!(fastrouter_batch._core, APIConnectionError, APIError, "No answer from the server.");
pyo3::create_exception!(
    fastrouter_batch._core,
    APITimeoutError,
    APIConnectionError,
    "No answer from the server in time."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FastRouterError", py.get_type::<FastRouterError>())?;
    m.add("BatchValidationError", py.get_type::<BatchValidationError>())?;
    m.add("APIError", py.get_type::<APIError>())?;
    m.add("APIStatusError", py.get_type::<APIStatusError>())?;
    m.add("BadRequestError", py.get_type::<BadRequestError>())?;
    m.add("AuthenticationError", py.get_type::<AuthenticationError>())?;
    m.add("InsufficientCreditsError", py.get_type::<InsufficientCreditsError>())?;
    m.add("PermissionDeniedError", py.get_type::<PermissionDeniedError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("RequestTooLargeError", py.get_type::<RequestTooLargeError>())?;
    m.add("UnprocessableEntityError", py.get_type::<UnprocessableEntityError>())?;
    m.add("RateLimitError", py.get_type::<RateLimitError>())?;
    m.add("InternalServerError", py.get_type::<InternalServerError>())?;
    m.add("APIConnectionError", py.get_type::<APIConnectionError>())?;
    m.add("APITimeoutError", py.get_type::<APITimeoutError>())?;
    Ok(())
}

/// Every error the binding meets, on its way to Python.
pub enum Error {
    Py(PyErr),
    Client(ClientError),
    Engine(EngineError),
    /// A file could not be read or written; `path` names it when known.
    Io(std::io::Error, Option<PathBuf>),
    Validate(ValidateError, Option<PathBuf>),
    /// A line of a results file (or a whole source) that cannot be read; `label` names the
    /// source, `prefix` what it was given as (`inputs: `).
    Read {
        error: ReadError,
        label: String,
        prefix: &'static str,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io_at(e: std::io::Error, path: &Path) -> Self {
        Self::Io(e, Some(path.to_path_buf()))
    }
}

impl From<PyErr> for Error {
    fn from(e: PyErr) -> Self {
        Self::Py(e)
    }
}

/// What cannot fail (`into_pyobject` of a str, say).
impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Self::Client(e)
    }
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e, None)
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        match e {
            Error::Py(e) => e,
            Error::Client(e) => from_client(e),
            // The engine could not start: binding or storage trouble is an OSError, a bad
            // setting a ValueError.
            Error::Engine(EngineError::Bind(m) | EngineError::Storage(m)) => PyOSError::new_err(m),
            Error::Engine(EngineError::Config(m)) => PyValueError::new_err(m),
            Error::Io(e, Some(path)) => os_error(e.raw_os_error(), e.to_string(), Some(&path), e.kind()),
            Error::Io(e, None) => PyErr::from(e),
            Error::Validate(ValidateError::Io(e), path) => Error::Io(e, path).into(),
            Error::Validate(ValidateError::Cancelled, _) => PyKeyboardInterrupt::new_err("validation was interrupted"),
            // A bad line is a ValueError naming its file and line; a source that cannot be
            // read, an OSError.
            Error::Read { error, label, prefix } => match error.line {
                Some(line) => PyValueError::new_err(format!("{prefix}{label}, line {line}: {}", error.message)),
                None => PyOSError::new_err(format!("{prefix}{label}: {}", error.message)),
            },
        }
    }
}

/// An I/O error as Python's: `OSError(errno, text, filename)` becomes FileNotFoundError &
/// co. with `.filename`; without an errno, the path leads the message.
fn os_error(errno: Option<i32>, message: String, path: Option<&Path>, kind: std::io::ErrorKind) -> PyErr {
    let message = os_text(message);
    match (errno, path) {
        (Some(errno), Some(p)) => PyOSError::new_err((errno, message, p.to_string_lossy().into_owned())),
        (Some(errno), None) => PyOSError::new_err((errno, message)),
        (None, Some(p)) => PyErr::from(std::io::Error::new(kind, format!("{}: {message}", p.display()))),
        (None, None) => PyErr::from(std::io::Error::new(kind, message)),
    }
}

/// Rust's text of an OS error without its " (os error 2)" tail, so a missing file reads
/// the same as Python's own `[Errno 2] No such file or directory: 'x.jsonl'`, everywhere.
fn os_text(message: String) -> String {
    match message.rfind(" (os error ") {
        Some(at) if message.ends_with(')') => message[..at].to_owned(),
        _ => message,
    }
}

/// A client error as the matching class of the tree, carrying `status_code`, `code`,
/// `type`, `param`, `request_id`, `body` and `message` (never the API key).
fn from_client(e: ClientError) -> PyErr {
    let text = e.to_string();
    match e {
        ClientError::Status(s) => {
            let err = match s.status {
                400 => BadRequestError::new_err(text),
                401 => AuthenticationError::new_err(text),
                402 => InsufficientCreditsError::new_err(text),
                403 => PermissionDeniedError::new_err(text),
                404 => NotFoundError::new_err(text),
                409 => ConflictError::new_err(text),
                413 => RequestTooLargeError::new_err(text),
                422 => UnprocessableEntityError::new_err(text),
                429 => RateLimitError::new_err(text),
                500.. => InternalServerError::new_err(text),
                _ => APIStatusError::new_err(text),
            };
            Python::attach(|py| {
                let value = err.value(py);
                let body = match &s.body {
                    Some(b) => crate::py_json::to_py(py, b).map(Bound::unbind).unwrap_or_else(|_| py.None()),
                    None => py.None(),
                };
                let _ = value.setattr("status_code", s.status);
                let _ = value.setattr("message", s.message);
                let _ = value.setattr("type", s.kind);
                let _ = value.setattr("code", s.code);
                let _ = value.setattr("param", s.param);
                let _ = value.setattr("request_id", s.request_id);
                let _ = value.setattr("body", body);
            });
            err
        }
        ClientError::Timeout { message } => with_message(APITimeoutError::new_err(text), message),
        ClientError::Connection { message } => with_message(APIConnectionError::new_err(text), message),
        ClientError::Decode { message } => with_message(APIError::new_err(text), message),
        ClientError::Config { message } => PyValueError::new_err(message),
        ClientError::Io { message, path, kind, errno } => os_error(errno, message, path.as_deref(), kind),
    }
}

fn with_message(err: PyErr, message: String) -> PyErr {
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("message", message);
        let _ = value.setattr("status_code", py.None());
        let _ = value.setattr("request_id", py.None());
    });
    err
}

/// A `BatchValidationError` carrying the report it summarises.
pub fn validation_failed(py: Python<'_>, message: String, report: Py<PyAny>) -> PyErr {
    let err = BatchValidationError::new_err(message);
    if let Err(e) = err.value(py).setattr("report", report) {
        return e;
    }
    err
}

/// A build error of the `index`th request, prefixed with which request it is (its class,
/// TypeError or ValueError, kept).
pub fn in_request(e: PyErr, index: usize, custom_id: &str) -> PyErr {
    Python::attach(|py| {
        let msg = format!("request {index} (custom_id {custom_id:?}): {}", e.value(py));
        if e.is_instance_of::<PyTypeError>(py) {
            PyTypeError::new_err(msg)
        } else {
            PyValueError::new_err(msg)
        }
    })
}

impl JsonError {
    /// The error as a Python exception, naming `root` and the path below it
    /// (`body.messages[1].content: ...`).
    pub fn into_py(self, root: &str) -> PyErr {
        let mut path = root.to_owned();
        for seg in self.rev_path.iter().rev() {
            if !seg.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(seg);
        }
        let text = if path.is_empty() { self.message } else { format!("{path}: {}", self.message) };
        match self.kind {
            JsonErrorKind::Type => PyTypeError::new_err(text),
            JsonErrorKind::Value => PyValueError::new_err(text),
        }
    }
}
