//! `BatchBuilder`: builds a batch file in memory as JSONL bytes, fast, then validates and
//! writes it.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use fastrouter_batch_core::jsonl::writer::JsonlBuffer;
use fastrouter_batch_core::model::{self, CHAT_URL, EMBEDDINGS_URL, METHOD_POST};

use crate::args::{str_arg, Bytes, PathOrBytes};
use crate::errors;
use crate::py_json;
use crate::request::{provider_for, write_head, BatchRequest};
use crate::validation::{self, Limits, ValidationReport};

#[pyclass(module = "fastrouter_batch._core", subclass)]
pub struct BatchBuilder {
    pub(crate) buf: JsonlBuffer,
}

/// Whether a chat body for `provider` needs the default `max_tokens`: the provider requires
/// it and `has` (a parameter lookup) finds neither `max_tokens` nor `max_completion_tokens`.
pub(crate) fn needs_default_max_tokens(url: &str, provider: &str, has: impl Fn(&str) -> bool) -> bool {
    url == CHAT_URL
        && model::provider_requires_max_tokens(provider)
        && !has("max_tokens")
        && !has("max_completion_tokens")
}

/// A parameter given (and not None) in `params`.
pub(crate) fn has_param(params: Option<&Bound<'_, PyDict>>, key: &str) -> bool {
    params.is_some_and(|p| p.get_item(key).ok().flatten().is_some_and(|v| !v.is_none()))
}

/// A chat or embeddings request's body: `{"model": model, key: value, **params}`, for `url`.
struct Body<'a, 'py> {
    url: &'a str,
    key: &'a str,
    value: &'a Bound<'py, PyAny>,
    params: Option<&'a Bound<'py, PyDict>>,
}

impl BatchBuilder {
    /// `add_chat` / `add_embedding`: checks the str arguments by name, then appends the line.
    fn push_body_line(
        &mut self,
        custom_id: &Bound<'_, PyAny>,
        model: &Bound<'_, PyAny>,
        provider: Option<&Bound<'_, PyAny>>,
        body: Body<'_, '_>,
    ) -> PyResult<()> {
        let (custom_id, model) = (str_arg(custom_id, "custom_id")?, str_arg(model, "model")?);
        let provider = provider.map(|p| str_arg(p, "provider")).transpose()?;
        let provider = provider_for(Some(model), provider)?;
        let Body { url, key, value, params } = body;
        self.buf
            .push_with(|out| {
                write_head(out, custom_id, &provider, METHOD_POST, url);
                out.extend_from_slice(b"{\"model\":");
                py_json::write_str(out, model);
                out.push(b',');
                py_json::write_str(out, key);
                out.push(b':');
                py_json::write_value(value, out).map_err(|e| e.into_py(&format!("body.{key}")))?;
                if let Some(p) = params {
                    py_json::write_params(p, out).map_err(|e| e.into_py("body"))?;
                }
                if needs_default_max_tokens(url, &provider, |k| has_param(params, k)) {
                    out.extend_from_slice(format!(",\"max_tokens\":{}", model::DEFAULT_MAX_TOKENS).as_bytes());
                }
                out.extend_from_slice(b"}}");
                Ok::<_, PyErr>(())
            })
            .map_err(|e| errors::in_request(e, self.buf.len() + 1, custom_id))
    }
}

#[pymethods]
impl BatchBuilder {
    #[new]
    fn new() -> Self {
        Self { buf: JsonlBuffer::new() }
    }

    /// Adds a chat request; extra keyword arguments (max_tokens, temperature, ...) go in the
    /// body. The provider is the model's prefix unless given.
    #[pyo3(signature = (custom_id, model, messages, *, provider=None, **params))]
    fn add_chat(
        &mut self,
        custom_id: &Bound<'_, PyAny>,
        model: &Bound<'_, PyAny>,
        messages: &Bound<'_, PyAny>,
        provider: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.push_body_line(
            custom_id,
            model,
            provider,
            Body { url: CHAT_URL, key: "messages", value: messages, params },
        )
    }

    /// Adds an embeddings request for `input` (a string or a list of strings).
    #[pyo3(signature = (custom_id, model, input, *, provider=None, **params))]
    fn add_embedding(
        &mut self,
        custom_id: &Bound<'_, PyAny>,
        model: &Bound<'_, PyAny>,
        input: &Bound<'_, PyAny>,
        provider: Option<&Bound<'_, PyAny>>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.push_body_line(
            custom_id,
            model,
            provider,
            Body { url: EMBEDDINGS_URL, key: "input", value: input, params },
        )
    }

    /// Adds a `BatchRequest`, or a raw dict written as it is (validate() checks it).
    fn add(&mut self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<()> {
        let index = self.buf.len() + 1;
        if let Ok(r) = request.cast::<BatchRequest>() {
            let r = r.get();
            return self
                .buf
                .push_with(|out| r.write_json(py, out))
                .map_err(|e| errors::in_request(e, index, r.custom_id()));
        }
        if let Ok(d) = request.cast::<PyDict>() {
            return self.buf.push_with(|out| py_json::write_value(d.as_any(), out).map_err(|e| e.into_py(""))).map_err(
                |e| {
                    let id = d.get_item("custom_id").ok().flatten().map(|v| v.to_string()).unwrap_or_default();
                    errors::in_request(e, index, &id)
                },
            );
        }
        let name = request.get_type().name()?;
        let hint = if request.cast::<BatchBuilder>().is_ok() {
            " (to add another builder's requests, use extend(builder))"
        } else {
            ""
        };
        Err(pyo3::exceptions::PyTypeError::new_err(format!("add() takes a BatchRequest or a dict, not {name}{hint}")))
    }

    /// Adds another builder's requests (copied as they are), or every request of an
    /// iterable (BatchRequests or dicts).
    fn extend(&mut self, py: Python<'_>, requests: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(other) = requests.cast::<BatchBuilder>() {
            // A snapshot first: `b.extend(b)` doubles the builder, once (`other` is then this
            // builder, already borrowed: its own buffer is the snapshot).
            let (data, n) = match other.try_borrow() {
                Ok(o) => (o.buf.snapshot(), o.buf.len()),
                Err(_) => (self.buf.snapshot(), self.buf.len()),
            };
            for line in data.split(|&b| b == b'\n').take(n) {
                self.buf.push_with(|out| {
                    out.extend_from_slice(line);
                    Ok::<_, PyErr>(())
                })?;
            }
            return Ok(());
        }
        if requests.cast::<PyString>().is_ok() || requests.cast::<PyBytes>().is_ok() {
            let name = requests.get_type().name()?;
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "extend() takes a BatchBuilder or an iterable of BatchRequests or dicts, not {name}"
            )));
        }
        for (i, r) in requests.try_iter()?.enumerate() {
            let r = r?;
            if r.cast::<PyString>().is_ok() {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "extend(): item {i} is a str; items are BatchRequests or dicts (read a file's lines with \
                     fastrouter_batch.read_requests(path))"
                )));
            }
            self.add(py, &r)?;
        }
        Ok(())
    }

    /// One chat request per row, the rows given as columns (the fast path of
    /// `from_records` / `from_dataframe`; see `rows.rs`).
    #[pyo3(signature = (ids, model, provider, prompt, system, params, columns))]
    #[allow(clippy::too_many_arguments)]
    fn _add_chat_rows(
        &mut self,
        ids: &Bound<'_, PyList>,
        model: &Bound<'_, PyAny>,
        provider: &Bound<'_, PyAny>,
        prompt: &Bound<'_, PyList>,
        system: Option<&Bound<'_, PyList>>,
        params: &Bound<'_, PyDict>,
        columns: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        crate::rows::add_chat_rows(self, crate::rows::Rows { ids, model, provider, prompt, system, params, columns })
    }

    fn __len__(&self) -> usize {
        self.buf.len()
    }

    /// The lines (str, without newlines), as they are when iteration starts.
    fn __iter__(&self) -> LineIter {
        LineIter { data: self.buf.snapshot(), pos: 0 }
    }

    /// The whole file as bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.buf.as_bytes())
    }

    /// Validates what has been built so far.
    #[pyo3(signature = (*, limits=None, providers=None, anthropic_sampling=None))]
    fn validate(
        &self,
        py: Python<'_>,
        limits: Option<Bound<'_, Limits>>,
        providers: Option<Vec<String>>,
        anthropic_sampling: Option<&Bound<'_, PyAny>>,
    ) -> errors::Result<ValidationReport> {
        let sampling = validation::sampling_table(anthropic_sampling)?;
        let opts = validation::options(limits.as_ref().map(|l| l.get()), providers, sampling);
        validation::run(py, PathOrBytes::Bytes(Bytes::Owned(self.buf.snapshot())), opts)
    }

    /// Writes the file atomically (a temporary sibling renamed into place). With
    /// `validate=True` (the default) an invalid batch raises BatchValidationError and nothing
    /// is written.
    #[pyo3(signature = (path, *, validate=true, limits=None, providers=None, anthropic_sampling=None))]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        path: PathBuf,
        validate: bool,
        limits: Option<Bound<'_, Limits>>,
        providers: Option<Vec<String>>,
        anthropic_sampling: Option<&Bound<'_, PyAny>>,
    ) -> errors::Result<()> {
        if validate {
            let report = Bound::new(py, self.validate(py, limits, providers, anthropic_sampling)?)?;
            ValidationReport::raise_if_invalid(&report)?;
        }
        let data: Arc<Vec<u8>> = self.buf.snapshot();
        let target = path.clone();
        crate::gate::run_blocking(py, move |_| {
            fastrouter_batch_core::jsonl::writer::write_atomic(&target, |w| std::io::Write::write_all(w, &data))
        })?
        .map_err(|e| errors::Error::io_at(e, &path))
    }

    fn __repr__(&self) -> String {
        format!("BatchBuilder({} requests, {} bytes)", self.buf.len(), self.buf.as_bytes().len())
    }
}

/// Iterates a snapshot of a builder's lines.
#[pyclass(module = "fastrouter_batch._core")]
pub struct LineIter {
    data: Arc<Vec<u8>>,
    pos: usize,
}

#[pymethods]
impl LineIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self) -> Option<String> {
        let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        self.pos += end + 1;
        // The builder writes only UTF-8 (str pieces and escapes).
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}
