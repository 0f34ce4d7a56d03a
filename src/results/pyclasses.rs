//! The Python classes over the store: `ResultSet` (a view of the results: in an order,
//! maybe filtered), `Result` (one line, made on demand), and the iterator.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use pyo3::exceptions::{PyIndexError, PyKeyError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyList, PyString};

use super::store::{ErrorPair, Filter, Rec, Store, View, NO_ERROR, NO_MODEL};
use crate::{gate, py_json};

/// A column's value for one record (`to_columns`).
type Getter<'a> = dyn Fn(&Rec) -> Py<PyAny> + 'a;

fn opt_str(py: Python<'_>, s: &Option<Py<PyString>>) -> Py<PyAny> {
    s.as_ref().map_or_else(|| py.None(), |s| s.clone_ref(py).into_any())
}

/// One request's result. Made on demand from the store; `body` is read back from the file
/// and parsed on first access.
#[pyclass(module = "fastrouter_batch._core", name = "Result", frozen)]
pub struct BatchResult {
    store: Arc<Store>,
    index: u32,
    body: OnceLock<Py<PyAny>>,
    parser: Option<Arc<Py<PyAny>>>,
    /// What the parser made of the text: (value, error), on first access.
    parsed: OnceLock<(Py<PyAny>, Py<PyAny>)>,
}

impl BatchResult {
    fn new(store: &Arc<Store>, index: u32, parser: Option<Arc<Py<PyAny>>>) -> Self {
        Self { store: store.clone(), index, body: OnceLock::new(), parser, parsed: OnceLock::new() }
    }

    /// The parser's `(value, error)` for this result's text, made once; `(None, None)`
    /// without a parser, a text or success.
    fn parse(&self, py: Python<'_>) -> PyResult<&(Py<PyAny>, Py<PyAny>)> {
        if let Some(p) = self.parsed.get() {
            return Ok(p);
        }
        let r = self.rec();
        let pair = match (&self.parser, &r.text) {
            (Some(parser), Some(text)) if r.ok => {
                let out = parser.bind(py).call1((r.custom_id.bind(py), text.bind(py)))?;
                let (value, error): (Py<PyAny>, Py<PyAny>) = out.extract()?;
                (value, error)
            }
            _ => (py.None(), py.None()),
        };
        Ok(self.parsed.get_or_init(|| pair))
    }

    fn rec(&self) -> &Rec {
        self.store.rec(self.index)
    }

    fn error_pair(&self) -> Option<&ErrorPair> {
        let e = self.rec().error;
        (e != NO_ERROR).then(|| &self.store.errors[e as usize])
    }

    /// The whole line, parsed again from its file.
    fn read_line(&self, py: Python<'_>) -> PyResult<serde_json::Value> {
        let (store, rec) = (&self.store, self.rec());
        let source = &store.sources[rec.source as usize];
        let label = source.label(rec.source as usize);
        let changed =
            || PyOSError::new_err(format!("{label} changed since it was read: line {} is not the same", rec.line));
        let bytes = gate::short(py, || source.line(rec.offset, rec.len)).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => changed(),
            _ => PyOSError::new_err(format!("{label}: cannot read line {}: {e}", rec.line)),
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| changed())?;
        let id = rec.custom_id.bind(py).to_str()?;
        if value.get("custom_id").and_then(|v| v.as_str()) != Some(id) {
            return Err(changed());
        }
        Ok(value)
    }
}

#[pymethods]
impl BatchResult {
    #[getter]
    fn custom_id(&self, py: Python<'_>) -> Py<PyString> {
        self.rec().custom_id.clone_ref(py)
    }

    /// True when the request got a 2xx response and no error.
    #[getter]
    fn ok(&self) -> bool {
        self.rec().ok
    }

    /// The response's HTTP status; None when the request never ran.
    #[getter]
    fn status_code(&self) -> Option<u16> {
        let s = self.rec().status;
        (s != 0).then_some(s)
    }

    /// The assistant's text (chat): `choices[0].message.content`, parts joined.
    #[getter]
    fn text(&self, py: Python<'_>) -> Py<PyAny> {
        opt_str(py, &self.rec().text)
    }

    /// The model named in the response body.
    #[getter]
    fn model(&self, py: Python<'_>) -> Py<PyAny> {
        let m = self.rec().model;
        if m == NO_MODEL {
            py.None()
        } else {
            self.store.models[m as usize].clone_ref(py).into_any()
        }
    }

    /// `{"prompt_tokens", "completion_tokens", "total_tokens"}`, or None without usage.
    #[getter]
    fn usage<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let r = self.rec();
        if !r.has_usage {
            return Ok(None);
        }
        let d = PyDict::new(py);
        d.set_item("prompt_tokens", r.prompt)?;
        d.set_item("completion_tokens", r.completion)?;
        d.set_item("total_tokens", r.total)?;
        Ok(Some(d))
    }

    /// `{"code", "message"}` when the request failed, else None.
    #[getter]
    fn error<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some((code, message)) = self.error_pair() else { return Ok(None) };
        let d = PyDict::new(py);
        d.set_item("code", opt_str(py, code))?;
        d.set_item("message", opt_str(py, message))?;
        Ok(Some(d))
    }

    #[getter]
    fn error_code(&self, py: Python<'_>) -> Py<PyAny> {
        self.error_pair().map_or_else(|| py.None(), |(c, _)| opt_str(py, c))
    }

    #[getter]
    fn error_message(&self, py: Python<'_>) -> Py<PyAny> {
        self.error_pair().map_or_else(|| py.None(), |(_, m)| opt_str(py, m))
    }

    /// The response body (a dict), read back from the file and parsed on first access;
    /// None when the request never ran.
    #[getter]
    fn body(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(b) = self.body.get() {
            return Ok(b.clone_ref(py));
        }
        let line = self.read_line(py)?;
        let body = match line.get("response").and_then(|r| r.get("body")) {
            Some(b) => py_json::to_py(py, b)?.unbind(),
            None => py.None(),
        };
        Ok(self.body.get_or_init(|| body).clone_ref(py))
    }

    /// The tool calls of a chat answer (`choices[0].message.tool_calls`: a list of
    /// `{"id", "type": "function", "function": {"name", "arguments"}}`, arguments a JSON
    /// string, as OpenAI gives them; Anthropic answers are translated to this), or None.
    #[getter]
    fn tool_calls(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if !self.rec().ok {
            return Ok(py.None());
        }
        let body = self.body(py)?;
        let calls = body
            .bind(py)
            .get_item("choices")
            .and_then(|c| c.get_item(0))
            .and_then(|c| c.get_item("message"))
            .and_then(|m| m.get_item("tool_calls"));
        Ok(match calls {
            Ok(list) if list.cast::<PyList>().is_ok() => list.unbind(),
            _ => py.None(),
        })
    }

    /// The first vector of an embeddings body (`data[0].embedding`; base64 ones decoded),
    /// or None.
    #[getter]
    fn embedding(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if !self.rec().ok || self.rec().text.is_some() {
            return Ok(py.None());
        }
        let body = self.body(py)?;
        let body = body.bind(py);
        let Ok(body) = body.cast::<PyDict>() else { return Ok(py.None()) };
        let Some(data) = body.get_item("data")? else { return Ok(py.None()) };
        let Ok(data) = data.cast::<PyList>() else { return Ok(py.None()) };
        let Ok(first) = data.get_item(0) else { return Ok(py.None()) };
        let Ok(first) = first.cast::<PyDict>() else { return Ok(py.None()) };
        let Some(vector) = first.get_item("embedding")? else { return Ok(py.None()) };
        if vector.cast::<PyList>().is_ok() {
            return Ok(vector.unbind());
        }
        if let Ok(s) = vector.cast::<PyString>() {
            if let Some(floats) = decode_base64_f32(s.to_str()?) {
                return Ok(PyList::new(py, floats)?.into_any().unbind());
            }
        }
        Ok(py.None())
    }

    /// The answer validated by the request's `response_format` model (an instance of it),
    /// or None: no model, a failed request, or an answer that does not fit (then
    /// `parse_error` says why). Never raises for a row's answer.
    #[getter]
    fn parsed(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.parse(py)?.0.clone_ref(py))
    }

    /// Why the answer does not fit the `response_format` model (a str), or None.
    #[getter]
    fn parse_error(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.parse(py)?.1.clone_ref(py))
    }

    /// True when the result came from the result cache rather than a batch run now.
    #[getter]
    fn cached(&self) -> bool {
        self.store.sources[self.rec().source as usize].cached
    }

    /// 1-based line number in its file.
    #[getter]
    fn line(&self) -> u32 {
        self.rec().line
    }

    /// The file the line was read from (None for bytes).
    #[getter]
    fn file(&self) -> Option<String> {
        self.store.sources[self.rec().source as usize].path.as_ref().map(|p| p.display().to_string())
    }

    /// The whole line as a dict (`id`, `custom_id`, `response`, `error`), read back.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let line = self.read_line(py)?;
        Ok(py_json::to_py(py, &line)?.unbind())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = self.rec();
        let id = r.custom_id.bind(py).repr()?;
        let status = self.status_code().map_or("None".to_owned(), |s| s.to_string());
        if r.ok {
            let text = match &r.text {
                Some(t) => {
                    let t = t.bind(py).to_str()?;
                    let short: String = t.chars().take(60).collect();
                    let short = PyString::new(py, &short).repr()?.to_string();
                    if short.len() < t.len() + 2 {
                        format!("{short}…")
                    } else {
                        short
                    }
                }
                None => "None".into(),
            };
            Ok(format!("Result(custom_id={id}, ok=True, status_code={status}, text={text})"))
        } else {
            let code = self.error_code(py).bind(py).repr()?.to_string();
            Ok(format!("Result(custom_id={id}, ok=False, status_code={status}, error_code={code})"))
        }
    }
}

/// Little-endian float32s in standard base64 (OpenAI's `encoding_format="base64"`).
fn decode_base64_f32(s: &str) -> Option<Vec<f64>> {
    let mut bytes = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).collect())
}

/// The results of one or more batches' output and error files: one `Result` per line
/// (`fastrouter_batch.BatchResults` wraps it, adding the DataFrames).
#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct ResultSet {
    store: Arc<Store>,
    view: Arc<View>,
    /// Called as `parser(custom_id, text) -> (value, error)` for `Result.parsed`.
    parser: Option<Arc<Py<PyAny>>>,
}

impl ResultSet {
    pub(super) fn new(store: Arc<Store>, view: View) -> Self {
        Self { store, view: Arc::new(view), parser: None }
    }

    fn positions(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.view.len(&self.store)).map(|p| self.view.at(p))
    }

    /// The records of the rows asked for: the view's, in order; or, with `at` (a
    /// native-endian int64 array in bytes, as `positions_of` gives), the view's rows at
    /// those positions, None where a position is -1.
    fn rows(&self, at: Option<&[u8]>) -> PyResult<Vec<Option<u32>>> {
        let Some(at) = at else {
            return Ok(self.positions().map(Some).collect());
        };
        if at.len() % 8 != 0 {
            return Err(PyValueError::new_err("at: an int64 array in bytes (a multiple of 8 bytes long)"));
        }
        let n = self.view.len(&self.store) as i64;
        at.chunks_exact(8)
            .map(|b| match i64::from_ne_bytes(b.try_into().unwrap_or_default()) {
                -1 => Ok(None),
                p if (0..n).contains(&p) => Ok(Some(self.view.at(p as usize))),
                p => Err(PyIndexError::new_err(format!("at: position {p} is out of range for {n} results"))),
            })
            .collect()
    }

    fn subset(&self, filter: Filter) -> Self {
        let want = filter == Filter::Ok;
        let order = self.positions().filter(|&i| self.store.rec(i).ok == want).collect();
        Self {
            store: self.store.clone(),
            view: Arc::new(View { order: Some(order), filter, missing: Arc::new(vec![]) }),
            parser: self.parser.clone(),
        }
    }

    fn lookup(&self, py: Python<'_>, id: &str) -> Option<u32> {
        self.store.find(py, id).filter(|&i| self.view.admits(&self.store, i))
    }

    fn result(&self, index: u32) -> BatchResult {
        BatchResult::new(&self.store, index, self.parser.clone())
    }
}

#[pymethods]
impl ResultSet {
    fn __len__(&self) -> usize {
        self.view.len(&self.store)
    }

    fn __iter__(slf: &Bound<'_, Self>) -> ResultIterator {
        ResultIterator { results: slf.clone().unbind(), pos: AtomicUsize::new(0) }
    }

    /// `results["request-1"]` by custom_id (KeyError if absent), `results[0]` by position.
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<BatchResult> {
        if let Ok(id) = key.cast::<PyString>() {
            return match self.lookup(py, id.to_str()?) {
                Some(i) => Ok(self.result(i)),
                None => Err(PyKeyError::new_err(id.clone().unbind())),
            };
        }
        if let Ok(pos) = key.extract::<isize>() {
            let len = self.__len__() as isize;
            let p = if pos < 0 { pos + len } else { pos };
            if !(0..len).contains(&p) {
                return Err(PyIndexError::new_err("BatchResults index out of range"));
            }
            return Ok(self.result(self.view.at(p as usize)));
        }
        let name = key.get_type().name()?;
        Err(PyTypeError::new_err(format!("BatchResults keys are custom_ids (str) or positions (int), not {name}")))
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        match key.cast::<PyString>() {
            Ok(id) => Ok(self.lookup(py, id.to_str()?).is_some()),
            Err(_) => Ok(false),
        }
    }

    /// The result for `custom_id`, or `default`.
    #[pyo3(signature = (custom_id, default=None))]
    fn get(&self, py: Python<'_>, custom_id: &str, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        match self.lookup(py, custom_id) {
            Some(i) => Ok(Py::new(py, self.result(i))?.into_any()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// The custom_ids, in iteration order.
    #[getter]
    fn custom_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.positions().map(|i| self.store.rec(i).custom_id.clone_ref(py)))
    }

    /// The same results, with `parser(custom_id, text) -> (value, error)` behind
    /// `Result.parsed` / `Result.parse_error` (None: no parser).
    fn with_parser(&self, parser: Option<Py<PyAny>>) -> Self {
        Self { store: self.store.clone(), view: self.view.clone(), parser: parser.map(Arc::new) }
    }

    /// The parser given to `with_parser`, or None.
    #[getter]
    fn parser(&self, py: Python<'_>) -> Py<PyAny> {
        self.parser.as_ref().map_or_else(|| py.None(), |p| p.clone_ref(py))
    }

    /// For each custom_id of `keys`, the position of its result in this view (as
    /// `results[i]` takes it), or -1 when there is none: what `join(df)` lines rows up with.
    /// As a native-endian int64 array in bytes (numpy's `frombuffer` takes it without a
    /// Python int per row; `frame_columns(at=...)` takes it back).
    fn positions_of<'py>(&self, py: Python<'py>, keys: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyBytes>> {
        // Record → position in the view; not needed when the view is the store itself.
        let place: Option<Vec<i64>> = self.view.order.as_ref().map(|order| {
            let mut place = vec![-1i64; self.store.len];
            for (p, &i) in order.iter().enumerate() {
                place[i as usize] = p as i64;
            }
            place
        });
        let mut out = Vec::with_capacity(keys.len() * 8);
        for k in keys.iter() {
            let k = k.cast::<PyString>().map_err(|_| PyTypeError::new_err("positions_of() takes a list of str"))?;
            let at = match (self.store.find(py, k.to_str()?), &place) {
                (None, _) => -1,
                (Some(i), Some(place)) => place[i as usize],
                // (A view without an order is the whole store, unfiltered.)
                (Some(i), None) => i64::from(i),
            };
            out.extend_from_slice(&at.to_ne_bytes());
        }
        Ok(PyBytes::new(py, &out))
    }

    /// The columns of `to_pandas()` in one pass (see `frame::frame_columns`): the rows
    /// in order, or those at `at` (as `positions_of` gives them; -1: a row with every value
    /// missing), `missing` where a text value is missing.
    #[pyo3(signature = (at=None, missing=None, with_custom_id=true))]
    fn frame_columns<'py>(
        &self,
        py: Python<'py>,
        at: Option<&[u8]>,
        missing: Option<Py<PyAny>>,
        with_custom_id: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let rows = self.rows(at)?;
        let missing = missing.unwrap_or_else(|| py.None());
        super::frame::frame_columns(py, &self.store, &rows, &missing, with_custom_id)
    }

    /// The results that succeeded, in the same order.
    #[getter]
    fn succeeded(&self) -> Self {
        self.subset(Filter::Ok)
    }

    /// The results that failed (an error status, or never ran), in the same order.
    #[getter]
    fn failed(&self) -> Self {
        self.subset(Filter::Failed)
    }

    /// Input custom_ids (when `inputs` was given) that have no result line.
    #[getter]
    fn missing<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.view.missing.iter())
    }

    /// `{custom_id: text}` for every result (None where there is no text), in order.
    fn texts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for i in self.positions() {
            let r = self.store.rec(i);
            match &r.text {
                Some(t) => d.set_item(r.custom_id.bind(py), t.bind(py))?,
                None => d.set_item(r.custom_id.bind(py), py.None())?,
            }
        }
        Ok(d)
    }

    /// Counts: total, succeeded, failed, missing; token sums; results per status code and
    /// per error code.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (mut total, mut ok) = (0u64, 0u64);
        let (mut prompt, mut completion, mut all_tokens) = (0u64, 0u64, 0u64);
        let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
        let mut error_ids: BTreeMap<u32, u64> = BTreeMap::new();
        for i in self.positions() {
            let r = self.store.rec(i);
            total += 1;
            ok += u64::from(r.ok);
            if r.has_usage {
                prompt += u64::from(r.prompt);
                completion += u64::from(r.completion);
                all_tokens += u64::from(r.total);
            }
            if r.status != 0 {
                *statuses.entry(r.status).or_default() += 1;
            }
            if r.error != NO_ERROR {
                *error_ids.entry(r.error).or_default() += 1;
            }
        }
        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        for (e, n) in error_ids {
            let code = match &self.store.errors[e as usize].0 {
                Some(c) => c.bind(py).to_str()?.to_owned(),
                None => "unknown".to_owned(),
            };
            *codes.entry(code).or_default() += n;
        }
        let d = PyDict::new(py);
        d.set_item("total", total)?;
        d.set_item("succeeded", ok)?;
        d.set_item("failed", total - ok)?;
        d.set_item("missing", self.view.missing.len())?;
        d.set_item("prompt_tokens", prompt)?;
        d.set_item("completion_tokens", completion)?;
        d.set_item("total_tokens", all_tokens)?;
        let s = PyDict::new(py);
        for (code, n) in statuses {
            s.set_item(code, n)?;
        }
        d.set_item("status_codes", s)?;
        let c = PyDict::new(py);
        for (code, n) in codes {
            c.set_item(code, n)?;
        }
        d.set_item("error_codes", c)?;
        Ok(d)
    }

    /// The table behind `to_pandas()` / `to_polars()`: column name → list, in order;
    /// only the columns `only` names when it is given (the others are not built).
    #[pyo3(signature = (only=None))]
    fn to_columns<'py>(&self, py: Python<'py>, only: Option<Vec<String>>) -> PyResult<Bound<'py, PyDict>> {
        let none = || py.None();
        let count = |n: u32, has: bool| {
            let Ok(n) = n.into_pyobject(py);
            if has {
                n.into_any().unbind()
            } else {
                none()
            }
        };
        let flag = |b: bool| PyBool::new(py, b).to_owned().into_any().unbind();
        let err = |r: &Rec, first: bool| -> Py<PyAny> {
            if r.error == NO_ERROR {
                return none();
            }
            let (c, m) = &self.store.errors[r.error as usize];
            opt_str(py, if first { c } else { m })
        };
        let all: [(&str, &Getter<'_>); 10] = [
            ("custom_id", &|r| r.custom_id.clone_ref(py).into_any()),
            ("ok", &|r| flag(r.ok)),
            ("status_code", &|r| count(u32::from(r.status), r.status != 0)),
            ("text", &|r| opt_str(py, &r.text)),
            ("model", &|r| {
                if r.model == NO_MODEL {
                    none()
                } else {
                    self.store.models[r.model as usize].clone_ref(py).into_any()
                }
            }),
            ("prompt_tokens", &|r| count(r.prompt, r.has_usage)),
            ("completion_tokens", &|r| count(r.completion, r.has_usage)),
            ("error_code", &|r| err(r, true)),
            ("error_message", &|r| err(r, false)),
            ("cached", &|r| flag(self.store.sources[r.source as usize].cached)),
        ];
        let columns: Vec<_> =
            all.into_iter().filter(|(name, _)| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name))).collect();
        // One pass over the records, every column filled as it goes.
        let positions: Vec<u32> = self.positions().collect();
        let mut values: Vec<Vec<Py<PyAny>>> = columns.iter().map(|_| Vec::with_capacity(positions.len())).collect();
        for &i in &positions {
            let rec = self.store.rec(i);
            for (column, (_, f)) in values.iter_mut().zip(&columns) {
                column.push(f(rec));
            }
        }
        let d = PyDict::new(py);
        for ((name, _), column) in columns.iter().zip(values) {
            d.set_item(name, PyList::new(py, column)?)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let total = self.__len__();
        let ok = self.positions().filter(|&i| self.store.rec(i).ok).count();
        let missing = self.view.missing.len();
        let extra = if missing > 0 { format!(", missing={missing}") } else { String::new() };
        format!("ResultSet(total={total}, succeeded={ok}, failed={}{extra})", total - ok)
    }
}

#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct ResultIterator {
    results: Py<ResultSet>,
    pos: AtomicUsize,
}

#[pymethods]
impl ResultIterator {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> Option<BatchResult> {
        let results = self.results.bind(py).get();
        let pos = self.pos.fetch_add(1, Ordering::Relaxed);
        if pos >= results.__len__() {
            self.pos.store(usize::MAX / 2, Ordering::Relaxed);
            return None;
        }
        Some(results.result(results.view.at(pos)))
    }
}
