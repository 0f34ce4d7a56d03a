//! The fast path of `from_records` / `from_dataframe`: one chat request per row, the rows
//! given as columns (Python lists), the templates already split into literal pieces and
//! columns. Each line is written straight into the builder's buffer: no dict, no message
//! list, no formatted string per row on the Python side.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use fastrouter_batch_core::model::{self, CHAT_URL, METHOD_POST};

use crate::builder::{has_param, needs_default_max_tokens, BatchBuilder};
use crate::errors;
use crate::py_json;
use crate::request::{provider_for, write_head};

/// The arguments of `BatchBuilder._add_chat_rows`.
pub struct Rows<'a, 'py> {
    /// The custom_ids (str), one per row.
    pub ids: &'a Bound<'py, PyList>,
    /// A str for every row, or a list of str.
    pub model: &'a Bound<'py, PyAny>,
    /// None, a str for every row, or a list of (str or None).
    pub provider: &'a Bound<'py, PyAny>,
    /// The user message: pieces, each a str (literal) or a list (a column, one value per row).
    pub prompt: &'a Bound<'py, PyList>,
    /// The system message, in pieces too, or None.
    pub system: Option<&'a Bound<'py, PyList>>,
    /// Parameters written in every body.
    pub params: &'a Bound<'py, PyDict>,
    /// Parameters from columns: name → list of values (None leaves the key out of that row).
    pub columns: &'a Bound<'py, PyDict>,
}

/// A value per row: the same for all, or a column.
enum PerRow<'py> {
    Same(Option<Bound<'py, PyAny>>),
    Column(Bound<'py, PyList>),
}

impl<'py> PerRow<'py> {
    fn new(obj: &Bound<'py, PyAny>) -> Self {
        match obj.cast::<PyList>() {
            Ok(l) => Self::Column(l.clone()),
            Err(_) => Self::Same((!obj.is_none()).then(|| obj.clone())),
        }
    }

    fn at(&self, i: usize) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self {
            Self::Same(v) => Ok(v.clone()),
            Self::Column(l) => {
                let v = l.get_item(i)?;
                Ok((!v.is_none()).then_some(v))
            }
        }
    }
}

/// Appends a value's text (`str(value)`, as `str.format` renders it) escaped for JSON.
fn write_text(out: &mut Vec<u8>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    match value.cast::<PyString>() {
        Ok(s) => py_json::write_str_content(out, s.to_str()?),
        Err(_) => py_json::write_str_content(out, value.str()?.to_str()?),
    }
    Ok(())
}

/// Writes a message's content: its pieces for row `i`, as one JSON string.
fn write_pieces(out: &mut Vec<u8>, pieces: &[PerRow<'_>], i: usize) -> PyResult<()> {
    out.push(b'"');
    for p in pieces {
        if let Some(v) = p.at(i)? {
            write_text(out, &v)?;
        }
    }
    out.push(b'"');
    Ok(())
}

fn pieces<'py>(list: &Bound<'py, PyList>, rows: usize, what: &str) -> PyResult<Vec<PerRow<'py>>> {
    let pieces: Vec<PerRow<'py>> = list.iter().map(|p| PerRow::new(&p)).collect();
    for p in &pieces {
        if let PerRow::Column(c) = p {
            if c.len() != rows {
                return Err(PyValueError::new_err(format!("{what}: a column has {} values for {rows} rows", c.len())));
            }
        }
    }
    Ok(pieces)
}

/// Rows written before the buffer is sized for the rest from their average length.
const SAMPLE_ROWS: usize = 256;

pub fn add_chat_rows(builder: &mut BatchBuilder, rows: Rows<'_, '_>) -> PyResult<()> {
    let n = rows.ids.len();
    let models = PerRow::new(rows.model);
    let providers = PerRow::new(rows.provider);
    for (what, p) in [("model", &models), ("provider", &providers)] {
        if let PerRow::Column(c) = p {
            if c.len() != n {
                return Err(PyValueError::new_err(format!("{what}: {} values for {n} rows", c.len())));
            }
        }
    }
    let prompt = pieces(rows.prompt, n, "prompt")?;
    let system = rows.system.map(|s| pieces(s, n, "system")).transpose()?;
    let columns: Vec<(String, Bound<'_, PyList>)> = rows
        .columns
        .iter()
        .map(|(k, v)| Ok((k.extract::<String>()?, v.cast_into::<PyList>()?)))
        .collect::<PyResult<_>>()?;
    for (name, c) in &columns {
        if c.len() != n {
            return Err(PyValueError::new_err(format!("column {name:?}: {} values for {n} rows", c.len())));
        }
    }
    // The parameters every body has, written once; each row copies the bytes.
    let mut fixed = Vec::new();
    py_json::write_params(rows.params, &mut fixed).map_err(|e| e.into_py("body"))?;
    let fixed_max = has_param(Some(rows.params), "max_tokens") || has_param(Some(rows.params), "max_completion_tokens");
    let default_max_tokens = format!(",\"max_tokens\":{}", model::DEFAULT_MAX_TOKENS).into_bytes();
    // Rows share a few models: each one's provider is worked out once (no allocation per row).
    let mut providers_of: Vec<(String, Option<String>, String)> = vec![];
    let start = builder.buf.byte_len();
    for i in 0..n {
        if i == SAMPLE_ROWS.min(n / 2) && i > 0 {
            // The rows' size so far, times the rows to come (and a little more): one
            // allocation for the buffer instead of a doubling every few MB.
            let per_row = (builder.buf.byte_len() - start) / i;
            builder.buf.reserve(per_row.saturating_mul(n - i) / 16 * 17);
        }
        let id = rows.ids.get_item(i)?;
        let id =
            id.cast::<PyString>().map_err(|_| PyValueError::new_err(format!("row {i}: the custom_id is not a str")))?;
        let id = id.to_str()?;
        let index = builder.buf.len() + 1;
        let line = |out: &mut Vec<u8>| -> PyResult<()> {
            let model = models.at(i)?.ok_or_else(|| PyValueError::new_err("the model is missing"))?;
            let model = model.cast::<PyString>().map_err(|_| PyValueError::new_err("the model must be a str"))?;
            let model = model.to_str()?;
            let given = providers.at(i)?;
            let given = given.as_ref().map(|p| p.extract::<String>()).transpose()?;
            let known = providers_of.iter().position(|(m, g, _)| m == model && *g == given);
            let at = match known {
                Some(at) => at,
                None => {
                    let p = provider_for(Some(model), given.as_deref())?;
                    providers_of.push((model.to_owned(), given, p));
                    providers_of.len() - 1
                }
            };
            let provider = providers_of[at].2.as_str();
            write_head(out, id, provider, METHOD_POST, CHAT_URL);
            out.extend_from_slice(b"{\"model\":");
            py_json::write_str(out, model);
            out.extend_from_slice(b",\"messages\":[");
            if let Some(system) = &system {
                out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
                write_pieces(out, system, i)?;
                out.extend_from_slice(b"},");
            }
            out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
            write_pieces(out, &prompt, i)?;
            out.extend_from_slice(b"}]");
            out.extend_from_slice(&fixed);
            let mut given: Vec<&str> = vec![];
            for (name, c) in &columns {
                let v = c.get_item(i)?;
                if v.is_none() {
                    continue;
                }
                out.push(b',');
                py_json::write_str(out, name);
                out.push(b':');
                py_json::write_value(&v, out).map_err(|e| e.into_py(&format!("body.{name}")))?;
                given.push(name);
            }
            if needs_default_max_tokens(CHAT_URL, provider, |k| fixed_max || given.contains(&k)) {
                out.extend_from_slice(&default_max_tokens);
            }
            out.extend_from_slice(b"}}");
            Ok(())
        };
        builder.buf.push_with(line).map_err(|e| errors::in_request(e, index, id))?;
    }
    Ok(())
}
