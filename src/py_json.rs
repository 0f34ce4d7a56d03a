//! Python objects <-> JSON, by hand (pythonize does not build with pyo3 0.30).
//!
//! Writing goes straight from Python objects to JSON bytes, with no intermediate value:
//! this is what makes building a million lines fast. An unserialisable value is reported
//! with the path to it (`body.messages[1].content`).

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

const MAX_DEPTH: u32 = 255;

/// Where in the value a problem is, built while unwinding; `errors.rs` turns it into the
/// Python exception (`into_py`).
pub struct JsonError {
    pub(crate) rev_path: Vec<String>,
    pub(crate) message: String,
    pub(crate) kind: JsonErrorKind,
}

pub(crate) enum JsonErrorKind {
    Type,
    Value,
}

impl JsonError {
    fn new(kind: JsonErrorKind, message: String) -> Self {
        Self { rev_path: vec![], message, kind }
    }

    fn at(mut self, segment: String) -> Self {
        self.rev_path.push(segment);
        self
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_content(out, s);
    out.push(b'"');
}

/// Appends `s` escaped, without the quotes (a literal made of several pieces).
pub fn write_str_content(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        // Copy the longest run without quotes, backslashes or control characters at once.
        let rest = &bytes[start..];
        let stop = memchr_special(rest);
        out.extend_from_slice(&rest[..stop]);
        start += stop;
        if start == bytes.len() {
            break;
        }
        let c = bytes[start];
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
            }
        }
        start += 1;
    }
}

/// Index of the first byte needing an escape, or `len` (the validator's SIMD scan).
#[inline]
fn memchr_special(b: &[u8]) -> usize {
    fastrouter_batch_core::json_scan::find_special(b).unwrap_or(b.len())
}

/// Appends `obj` as JSON. Accepts what `json.dumps` accepts by default except non-finite
/// floats (not JSON) and non-str keys (ambiguous).
pub fn write_value(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Result<(), JsonError> {
    write_at(obj, out, 0)
}

fn write_at(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: u32) -> Result<(), JsonError> {
    if depth > MAX_DEPTH {
        return Err(JsonError::new(
            JsonErrorKind::Value,
            format!("nested deeper than {MAX_DEPTH} levels (is it circular?)"),
        ));
    }
    // Exact types first: the common case costs one pointer comparison each.
    if let Ok(s) = obj.cast_exact::<PyString>() {
        write_str(out, s.to_str().map_err(|e| JsonError::new(JsonErrorKind::Value, e.to_string()))?);
    } else if let Ok(d) = obj.cast::<PyDict>() {
        write_dict(d, out, depth)?;
    } else if let Ok(l) = obj.cast::<PyList>() {
        write_seq(l.iter(), out, depth)?;
    } else if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if let Ok(i) = obj.cast::<PyInt>() {
        match i.extract::<i64>() {
            Ok(v) => out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes()),
            // Beyond 64 bits: Python's own decimal text is exact.
            Err(_) => out.extend_from_slice(
                i.str().map_err(|e| JsonError::new(JsonErrorKind::Value, e.to_string()))?.to_string().as_bytes(),
            ),
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        if !v.is_finite() {
            return Err(JsonError::new(
                JsonErrorKind::Value,
                format!("{v} is not valid JSON (only finite numbers are)"),
            ));
        }
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else if let Ok(s) = obj.cast::<PyString>() {
        // str subclasses (StrEnum members and the like).
        write_str(out, s.to_str().map_err(|e| JsonError::new(JsonErrorKind::Value, e.to_string()))?);
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        write_seq(t.iter(), out, depth)?;
    } else {
        let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
        return Err(JsonError::new(JsonErrorKind::Type, format!("object of type {name} is not JSON serializable")));
    }
    Ok(())
}

/// A list or tuple as a JSON array.
fn write_seq<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut Vec<u8>,
    depth: u32,
) -> Result<(), JsonError> {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_at(&item, out, depth + 1).map_err(|e| e.at(format!("[{i}]")))?;
    }
    out.push(b']');
    Ok(())
}

fn write_dict(d: &Bound<'_, PyDict>, out: &mut Vec<u8>, depth: u32) -> Result<(), JsonError> {
    out.push(b'{');
    for (i, (k, v)) in d.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let key = k.cast::<PyString>().map_err(|_| {
            let name = k.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            JsonError::new(JsonErrorKind::Type, format!("dict keys must be str, not {name}"))
        })?;
        let key = key.to_str().map_err(|e| JsonError::new(JsonErrorKind::Value, e.to_string()))?;
        write_str(out, key);
        out.push(b':');
        write_at(&v, out, depth + 1).map_err(|e| e.at(key.to_owned()))?;
    }
    out.push(b'}');
    Ok(())
}

/// Writes the entries of `params` as `,"key":value` pairs (for request bodies).
pub fn write_params(params: &Bound<'_, PyDict>, out: &mut Vec<u8>) -> Result<(), JsonError> {
    for (k, v) in params.iter() {
        let key: String =
            k.extract().map_err(|_| JsonError::new(JsonErrorKind::Type, "parameter names must be str".into()))?;
        out.push(b',');
        write_str(out, &key);
        out.push(b':');
        write_at(&v, out, 1).map_err(|e| e.at(key))?;
    }
    Ok(())
}

/// A parsed JSON value as Python objects (dict, list, str, int, float, bool, None).
pub fn to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else if n.as_f64().is_some() && !is_integer_text(&n.to_string()) {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            } else {
                // An integer beyond 64 bits (kept exact by `arbitrary_precision`): Python's
                // int parses the text exactly.
                py.get_type::<PyInt>().call1((n.to_string(),))?
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for item in a {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(o) => {
            let dict = PyDict::new(py);
            for (k, item) in o {
                dict.set_item(k, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

fn is_integer_text(s: &str) -> bool {
    !s.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'))
}
