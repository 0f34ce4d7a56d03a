//! `BatchRequest`: one line of a batch file, the five fields.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use fastrouter_batch_core::model::{self, CHAT_URL, EMBEDDINGS_URL, METHOD_POST};

use crate::py_json;

#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct BatchRequest {
    #[pyo3(get)]
    custom_id: String,
    #[pyo3(get)]
    provider: String,
    #[pyo3(get)]
    method: String,
    #[pyo3(get)]
    url: String,
    #[pyo3(get)]
    body: Py<PyDict>,
}

/// The provider of a request: the given one, else the model's prefix; a clear error if neither.
pub fn provider_for(model: Option<&str>, provider: Option<&str>) -> PyResult<String> {
    match (provider, model) {
        (Some(p), _) => Ok(p.to_owned()),
        (None, Some(m)) => {
            model::resolve_provider(m, None).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
        }
        (None, None) => Err(pyo3::exceptions::PyValueError::new_err(
            "cannot infer the provider: the body has no string \"model\"; pass provider=",
        )),
    }
}

/// Writes the start of a line up to (and including) `"body":`.
pub fn write_head(out: &mut Vec<u8>, custom_id: &str, provider: &str, method: &str, url: &str) {
    out.extend_from_slice(b"{\"custom_id\":");
    py_json::write_str(out, custom_id);
    out.extend_from_slice(b",\"provider\":");
    py_json::write_str(out, provider);
    out.extend_from_slice(b",\"method\":");
    py_json::write_str(out, method);
    out.extend_from_slice(b",\"url\":");
    py_json::write_str(out, url);
    out.extend_from_slice(b",\"body\":");
}

impl BatchRequest {
    pub fn custom_id(&self) -> &str {
        &self.custom_id
    }

    /// Appends this request as one JSON line (no newline).
    pub fn write_json(&self, py: Python<'_>, out: &mut Vec<u8>) -> PyResult<()> {
        write_head(out, &self.custom_id, &self.provider, &self.method, &self.url);
        py_json::write_value(self.body.bind(py).as_any(), out).map_err(|e| e.into_py("body"))?;
        out.push(b'}');
        Ok(())
    }

    fn body_with(
        py: Python<'_>,
        model: &str,
        key: &str,
        value: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyDict>> {
        let body = PyDict::new(py);
        body.set_item("model", model)?;
        body.set_item(key, value)?;
        if let Some(p) = params {
            body.update(p.as_mapping())?;
        }
        Ok(body.unbind())
    }
}

#[pymethods]
impl BatchRequest {
    /// A request from its five fields; `provider` defaults to the body's model prefix.
    #[new]
    #[pyo3(text_signature = "(custom_id, body, *, provider=None, method='POST', url='/v1/chat/completions')")]
    #[pyo3(signature = (custom_id, body, *, provider=None, method=METHOD_POST.to_owned(), url=CHAT_URL.to_owned()))]
    fn new(
        custom_id: String,
        body: Bound<'_, PyDict>,
        provider: Option<String>,
        method: String,
        url: String,
    ) -> PyResult<Self> {
        let model: Option<String> = body.get_item("model")?.and_then(|m| m.extract().ok());
        let provider = provider_for(model.as_deref(), provider.as_deref())?;
        Ok(Self { custom_id, provider, method, url, body: body.unbind() })
    }

    /// A chat request; extra keyword arguments (max_tokens, temperature, ...) go in the body.
    #[staticmethod]
    #[pyo3(signature = (custom_id, model, messages, *, provider=None, **params))]
    fn chat(
        py: Python<'_>,
        custom_id: String,
        model: &str,
        messages: &Bound<'_, PyAny>,
        provider: Option<&str>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let provider = provider_for(Some(model), provider)?;
        let body = Self::body_with(py, model, "messages", messages, params)?;
        if crate::builder::needs_default_max_tokens(CHAT_URL, &provider, |k| crate::builder::has_param(params, k)) {
            body.bind(py).set_item("max_tokens", model::DEFAULT_MAX_TOKENS)?;
        }
        Ok(Self { custom_id, provider, method: METHOD_POST.into(), url: CHAT_URL.into(), body })
    }

    /// An embeddings request for `input` (a string or a list of strings).
    #[staticmethod]
    #[pyo3(signature = (custom_id, model, input, *, provider=None, **params))]
    fn embedding(
        py: Python<'_>,
        custom_id: String,
        model: &str,
        input: &Bound<'_, PyAny>,
        provider: Option<&str>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let provider = provider_for(Some(model), provider)?;
        let body = Self::body_with(py, model, "input", input, params)?;
        Ok(Self { custom_id, provider, method: METHOD_POST.into(), url: EMBEDDINGS_URL.into(), body })
    }

    /// Parses one line of a batch file.
    #[staticmethod]
    fn from_json(py: Python<'_>, line: &Bound<'_, PyAny>) -> PyResult<Self> {
        let parsed: Result<model::BatchRequest, _> = if let Ok(s) = line.cast::<PyString>() {
            serde_json::from_str(s.to_str()?)
        } else {
            let bytes: Vec<u8> = line.extract()?;
            serde_json::from_slice(&bytes)
        };
        let r =
            parsed.map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("not a batch request line: {e}")))?;
        let body = py_json::to_py(py, &r.body)?;
        let body = body
            .cast_into::<PyDict>()
            .map_err(|_| pyo3::exceptions::PyValueError::new_err("not a batch request line: body must be an object"))?;
        Ok(Self { custom_id: r.custom_id, provider: r.provider, method: r.method, url: r.url, body: body.unbind() })
    }

    /// A request from a dict with the five keys.
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Self> {
        let field = |k: &str| -> PyResult<String> {
            d.get_item(k)?
                .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(format!("request dict has no {k:?}")))?
                .extract()
        };
        let body = d
            .get_item("body")?
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err("request dict has no \"body\""))?
            .cast_into::<PyDict>()
            .map_err(|_| pyo3::exceptions::PyTypeError::new_err("request \"body\" must be a dict"))?;
        let provider = match d.get_item("provider")? {
            Some(p) => Some(p.extract::<String>()?),
            None => None,
        };
        let model: Option<String> = body.get_item("model")?.and_then(|m| m.extract().ok());
        Ok(Self {
            custom_id: field("custom_id")?,
            provider: provider_for(model.as_deref(), provider.as_deref())?,
            method: d.get_item("method")?.map_or(Ok(METHOD_POST.to_owned()), |m| m.extract())?,
            url: d.get_item("url")?.map_or(Ok(CHAT_URL.to_owned()), |u| u.extract())?,
            body: body.unbind(),
        })
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("custom_id", &self.custom_id)?;
        d.set_item("provider", &self.provider)?;
        d.set_item("method", &self.method)?;
        d.set_item("url", &self.url)?;
        d.set_item("body", self.body.bind(py))?;
        Ok(d)
    }

    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        let mut out = Vec::with_capacity(256);
        self.write_json(py, &mut out)?;
        // Built only from str pieces, so it is UTF-8.
        String::from_utf8(out).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }

    #[getter]
    fn model(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(self.body.bind(py).get_item("model")?.and_then(|m| m.extract().ok()))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(o) = other.cast::<BatchRequest>() else { return Ok(false) };
        let o = o.get();
        Ok(self.custom_id == o.custom_id
            && self.provider == o.provider
            && self.method == o.method
            && self.url == o.url
            && self.body.bind(py).eq(o.body.bind(py))?)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let model = self.model(py)?.unwrap_or_default();
        Ok(format!(
            "BatchRequest(custom_id={:?}, provider={:?}, url={:?}, model={:?})",
            self.custom_id, self.provider, self.url, model
        ))
    }
}
