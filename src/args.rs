//! Python arguments as Rust values, with errors that name the argument: str arguments,
//! durations in seconds, and "a path or bytes" sources.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// A str argument, or a TypeError naming it (pyo3's own message does not say which).
pub fn str_arg<'a>(value: &'a Bound<'_, PyAny>, name: &str) -> PyResult<&'a str> {
    match value.cast::<PyString>() {
        Ok(s) => s.to_str(),
        // The usual way here: a batch's output_file_id read before the batch finished.
        Err(_) if value.is_none() && name == "file_id" => Err(PyTypeError::new_err(
            "file_id must be a str, got NoneType: the batch has no output file yet. A batch's \
             output_file_id (and error_file_id) stay None until it is completed, failed, expired or \
             cancelled (see its status); wait for it first: batch = client.batches.wait(batch.id)",
        )),
        Err(_) => Err(PyTypeError::new_err(format!("{name} must be a str, got {}", type_name(value)))),
    }
}

pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// What a number of seconds may be.
#[derive(Clone, Copy)]
pub enum Seconds {
    /// More than zero (timeouts, windows).
    Positive,
    /// Zero or more (latencies, delays).
    NonNegative,
}

/// `value` seconds as a Duration, or a ValueError naming the argument.
pub fn seconds(name: &str, value: f64, rule: Seconds) -> PyResult<Duration> {
    match (Duration::try_from_secs_f64(value), rule) {
        (Ok(d), Seconds::Positive) if !d.is_zero() => Ok(d),
        (Ok(d), Seconds::NonNegative) => Ok(d),
        (_, Seconds::Positive) => {
            Err(PyValueError::new_err(format!("{name} must be a positive number of seconds, got {value}")))
        }
        (_, Seconds::NonNegative) => {
            Err(PyValueError::new_err(format!("{name} must be a non-negative number of seconds, got {value}")))
        }
    }
}

/// A source given as a path or as bytes.
pub enum PathOrBytes {
    Path(PathBuf),
    Bytes(Bytes),
}

/// Bytes from Python: a `bytes` object read in place (it is immutable, and the handle keeps
/// it alive for as long as this value lives, even past an interrupted call), or a copy.
pub enum Bytes {
    Shared {
        #[allow(dead_code)] // held, never read: it keeps the buffer alive
        owner: Py<PyBytes>,
        ptr: usize,
        len: usize,
    },
    Owned(Arc<Vec<u8>>),
}

impl Bytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            // SAFETY: `owner` holds an immutable bytes object whose buffer is `ptr..ptr+len`;
            // nothing can change or free it while `self` (and so `owner`) lives.
            Self::Shared { owner: _, ptr, len } => unsafe { std::slice::from_raw_parts(*ptr as *const u8, *len) },
            Self::Owned(data) => data,
        }
    }

    /// A copy, to share.
    pub fn to_shared(&self) -> Arc<[u8]> {
        self.as_slice().into()
    }
}

/// A path (str or os.PathLike) or bytes (bytes, bytearray, or any buffer such as a
/// memoryview); None for anything else, which the caller names in its TypeError.
pub fn path_or_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Option<PathOrBytes>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let data = b.as_bytes();
        let shared = Bytes::Shared { owner: b.clone().unbind(), ptr: data.as_ptr() as usize, len: data.len() };
        return Ok(Some(PathOrBytes::Bytes(shared)));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Some(PathOrBytes::Bytes(Bytes::Owned(Arc::new(b.to_vec())))));
    }
    if obj.cast::<PyString>().is_ok() || obj.hasattr("__fspath__")? {
        return Ok(Some(PathOrBytes::Path(obj.extract::<PathBuf>()?)));
    }
    if let Ok(v) = obj.extract::<Vec<u8>>() {
        return Ok(Some(PathOrBytes::Bytes(Bytes::Owned(Arc::new(v)))));
    }
    Ok(None)
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}
