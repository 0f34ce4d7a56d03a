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

/// A client error as the matching class of the tree, carrying `status_code`, `code`,
/// `type`, `param`, `request_id`, `body` and `message` (never the API key).
pub fn from_client(e: fastrouter_batch_client::ClientError) -> PyErr {
    use fastrouter_batch_client::ClientError as E;
    let text = e.to_string();
    match e {
        E::Status { status, message, kind, code, param, request_id, body, .. } => {
            let err = match status {
                400 => BadRequestError::new_err(text),
                401 => AuthenticationError::new_err(text),
                403 => PermissionDeniedError::new_err(text),
                404 => NotFoundError::new_err(text),
                409 => ConflictError::new_err(text),
                413 => RequestTooLargeError::new_err(text),
                422 => UnprocessableEntityError::new_err(text),
                429 => RateLimitError::new_err(text),
                s if s >= 500 => InternalServerError::new_err(text),
                _ => APIStatusError::new_err(text),
            };
            Python::attach(|py| {
                let value = err.value(py);
                let body = match &body {
                    Some(b) => crate::py_json::to_py(py, b).map(Bound::unbind).unwrap_or_else(|_| py.None()),
                    None => py.None(),
                };
                let _ = value.setattr("status_code", status);
                let _ = value.setattr("message", message);
                let _ = value.setattr("type", kind);
                let _ = value.setattr("code", code);
                let _ = value.setattr("param", param);
                let _ = value.setattr("request_id", request_id);
                let _ = value.setattr("body", body);
            });
            err
        }
        E::Timeout { message } => with_message(APITimeoutError::new_err(text), message),
        E::Connection { message } => with_message(APIConnectionError::new_err(text), message),
        E::Decode { message } => with_message(APIError::new_err(text), message),
        E::Config { message } => pyo3::exceptions::PyValueError::new_err(message),
        E::Io { message, path, kind, errno } => match (errno, path) {
            // OSError(errno, text, filename) becomes FileNotFoundError & co. with .filename.
            (Some(errno), Some(p)) => PyOSError::new_err((errno, message, p.to_string_lossy().into_owned())),
            (Some(errno), None) => PyOSError::new_err((errno, message)),
            (None, Some(p)) => PyErr::from(std::io::Error::new(kind, format!("{}: {message}", p.display()))),
            (None, None) => PyErr::from(std::io::Error::new(kind, message)),
        },
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
        (ValidateError::Cancelled, _) => pyo3::exceptions::PyKeyboardInterrupt::new_err("validation was interrupted"),
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
