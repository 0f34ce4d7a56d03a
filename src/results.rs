//! `read_results()`, `BatchResults` and `Result` (`BatchResult` here): a batch's output and
//! error files as one result per request.
//!
//! The core's reader parses blocks of lines on worker threads, the GIL released; this
//! thread takes each parsed block back in file order and turns its few decoded fields into
//! Python strings at once (so no Rust copy of the texts outlives its block). What stays
//! per line is a 56-byte record: the custom_id and text strings, the status, the model (an
//! index into the distinct models), the token counts, the error (an index into the
//! distinct errors) and where the line is in its file. `body` is read back from the file
//! (kept open) and parsed only when asked for.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pyo3::exceptions::{PyIndexError, PyKeyError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString};

use fastrouter_batch_core::results::{read_line_at, Input, Next, ParsedBlock, ReadError, ReaderOptions, ResultReader};
use fastrouter_batch_core::validate::block::IdHasher;

use crate::{errors, py_json};

/// How often a wait for the reader looks for Ctrl-C.
const TICK: Duration = Duration::from_millis(100);
/// Records are kept in chunks, so a growing store never copies (or doubles) them all.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;
const NO_MODEL: u16 = u16::MAX;
const NO_ERROR: u32 = u32::MAX;
const NO_COUNT: u32 = u32::MAX;

/// One line. 56 bytes: this is what a result costs beyond its two strings.
struct Rec {
    custom_id: Py<PyString>,
    text: Option<Py<PyString>>,
    offset: u64,
    len: u32,
    line: u32,
    source: u16,
    /// 0 when the line has no response.
    status: u16,
    model: u16,
    ok: bool,
    has_usage: bool,
    prompt: u32,
    completion: u32,
    total: u32,
    error: u32,
}

enum Data {
    File(Arc<File>),
    Bytes(Arc<[u8]>),
}

struct Source {
    /// The path as given (for messages and `Result.file`); None for bytes.
    path: Option<PathBuf>,
    data: Data,
}

impl Source {
    fn label(&self, index: usize) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => format!("<bytes #{}>", index + 1),
        }
    }

    fn input(&self) -> Input {
        match &self.data {
            Data::File(f) => Input::File(f.clone()),
            Data::Bytes(b) => Input::Bytes(b.clone()),
        }
    }

    /// A path (str or os.PathLike), opened now, or bytes.
    fn extract(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Self { path: None, data: Data::Bytes(b.as_bytes().into()) });
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Self { path: None, data: Data::Bytes(b.to_vec().into()) });
        }
        if obj.cast::<PyString>().is_ok() || obj.hasattr("__fspath__")? {
            let path: PathBuf = obj.extract()?;
            let file = File::open(&path).map_err(|e| errors::io_on_path(e, &path))?;
            return Ok(Self { path: Some(path), data: Data::File(Arc::new(file)) });
        }
        let name = obj.get_type().name()?;
        Err(PyTypeError::new_err(format!("{what} must be paths (str or os.PathLike) or bytes, not {name}")))
    }

    /// The line at `offset`, read back.
    fn line(&self, offset: u64, len: u32) -> std::io::Result<Vec<u8>> {
        match &self.data {
            Data::File(f) => read_line_at(f, offset, len),
            Data::Bytes(b) => b
                .get(offset as usize..offset as usize + len as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// An error's code and message.
type ErrorPair = (Option<Py<PyString>>, Option<Py<PyString>>);

struct Index {
    hasher: IdHasher,
    /// The id's hash → the last record with it.
    map: HashMap<u64, u32>,
}

/// Everything read: the records and what they point into.
struct Store {
    chunks: Vec<Vec<Rec>>,
    len: usize,
    models: Vec<Py<PyString>>,
    /// Distinct (code, message) pairs.
    errors: Vec<ErrorPair>,
    sources: Vec<Source>,
    index: OnceLock<Index>,
    /// A directory of downloaded files, removed with the store.
    owned_dir: Option<PathBuf>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(dir) = self.owned_dir.take() {
            self.sources.clear(); // close the files first
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Store {
    #[inline]
    fn rec(&self, i: u32) -> &Rec {
        &self.chunks[(i >> CHUNK_BITS) as usize][i as usize & (CHUNK - 1)]
    }

    fn index(&self, py: Python<'_>) -> &Index {
        self.index.get_or_init(|| {
            let hasher = IdHasher::new();
            let mut map = HashMap::with_capacity(self.len);
            for i in 0..self.len as u32 {
                if let Ok(id) = self.rec(i).custom_id.bind(py).to_str() {
                    map.insert(hasher.hash(id) as u64, i);
                }
            }
            Index { hasher, map }
        })
    }

    /// The last record with this custom_id.
    fn find(&self, py: Python<'_>, id: &str) -> Option<u32> {
        let index = self.index(py);
        let i = *index.map.get(&(index.hasher.hash(id) as u64))?;
        let same = |i: u32| self.rec(i).custom_id.bind(py).to_str().is_ok_and(|s| s == id);
        if same(i) {
            return Some(i);
        }
        // Two ids with one 64-bit hash (never seen in practice): look the slow way.
        (0..self.len as u32).rev().find(|&j| same(j))
    }
}

/// A reading error as Python's: ValueError naming the file and line of a bad line, OSError
/// for a source that cannot be read. `what` prefixes the message (e.g. "inputs: ").
fn read_error(sources: &[Source], e: ReadError, what: &str) -> PyErr {
    let label = sources.get(e.source).map(|s| s.label(e.source)).unwrap_or_default();
    match e.line {
        Some(line) => PyValueError::new_err(format!("{what}{label}, line {line}: {}", e.message)),
        None => PyOSError::new_err(format!("{what}{label}: {}", e.message)),
    }
}

/// Reads `inputs` to the end, handing each block to `f` (GIL held) as it comes. Waits with
/// the GIL released; Ctrl-C stops the reading (the reader's threads stop with it).
fn drain(
    py: Python<'_>,
    inputs: Vec<Input>,
    opts: ReaderOptions,
    f: impl FnMut(&ParsedBlock) -> PyResult<()>,
) -> PyResult<Option<ReadError>> {
    ResultReader::read(inputs, opts, |reader| drain_reader(py, reader, f))
}

fn drain_reader(
    py: Python<'_>,
    reader: &mut ResultReader<'_>,
    mut f: impl FnMut(&ParsedBlock) -> PyResult<()>,
) -> PyResult<Option<ReadError>> {
    loop {
        // Take a block that is ready without giving up the GIL. Otherwise, without it,
        // parse one here if one is waiting for a worker (this thread is a worker too when
        // it has nothing else to do), or wait for the next.
        let next = match reader.next(Duration::ZERO) {
            Next::Pending => py.detach(|| if reader.help() { reader.next(Duration::ZERO) } else { reader.next(TICK) }),
            ready => ready,
        };
        match next {
            Next::Block(b) => {
                f(&b)?;
                reader.recycle(b);
            }
            Next::Pending => {}
            Next::Done => return Ok(None),
            Next::Failed(e) => return Ok(Some(e)),
        }
        py.check_signals()?;
    }
}

fn count(n: u64) -> u32 {
    n.min(u64::from(NO_COUNT - 1)) as u32
}

/// Reads every source into a store.
fn build(py: Python<'_>, sources: Vec<Source>, owned_dir: Option<PathBuf>) -> PyResult<Store> {
    if sources.len() >= usize::from(u16::MAX) {
        return Err(PyValueError::new_err("read_results: too many files (at most 65534)"));
    }
    let mut store =
        Store { chunks: vec![], len: 0, models: vec![], errors: vec![], sources, index: OnceLock::new(), owned_dir };
    let inputs = store.sources.iter().map(Source::input).collect();
    let mut models: HashMap<String, u16> = HashMap::new();
    let mut last_model: Option<(String, u16)> = None;
    let mut errors: HashMap<(Option<String>, Option<String>), u32> = HashMap::new();
    let (chunks, errs, model_list) = (&mut store.chunks, &mut store.errors, &mut store.models);
    let mut len = 0usize;
    let failed = drain(py, inputs, ReaderOptions::default(), |block| {
        for r in &block.records {
            if len >= (NO_ERROR - 1) as usize {
                return Err(PyValueError::new_err("read_results: too many lines (at most 4,294,967,294)"));
            }
            let model = match r.model {
                None => NO_MODEL,
                Some(span) if last_model.as_ref().is_some_and(|(name, _)| name == block.str(span)) => {
                    last_model.as_ref().map_or(NO_MODEL, |m| m.1)
                }
                Some(span) => {
                    let name = block.str(span);
                    let m = match models.get(name) {
                        Some(&m) => m,
                        None if model_list.len() < usize::from(NO_MODEL) => {
                            let m = model_list.len() as u16;
                            model_list.push(PyString::new(py, name).unbind());
                            models.insert(name.to_owned(), m);
                            m
                        }
                        None => NO_MODEL,
                    };
                    last_model = Some((name.to_owned(), m));
                    m
                }
            };
            let error = match r.error {
                None => NO_ERROR,
                Some((code, message)) => {
                    let key = (code.map(|c| block.str(c).to_owned()), message.map(|m| block.str(m).to_owned()));
                    *errors.entry(key).or_insert_with_key(|(c, m)| {
                        errs.push((
                            c.as_deref().map(|c| PyString::new(py, c).unbind()),
                            m.as_deref().map(|m| PyString::new(py, m).unbind()),
                        ));
                        (errs.len() - 1) as u32
                    })
                }
            };
            let usage = r.usage.unwrap_or_default();
            let rec = Rec {
                custom_id: PyString::new(py, block.str(r.custom_id)).unbind(),
                text: r.text.map(|t| PyString::new(py, block.str(t)).unbind()),
                offset: r.offset,
                len: r.len,
                line: r.line.min(u64::from(u32::MAX)) as u32,
                source: block.source as u16,
                status: r.status_code.unwrap_or(0),
                model,
                ok: r.ok,
                has_usage: r.usage.is_some(),
                prompt: count(usage.prompt_tokens),
                completion: count(usage.completion_tokens),
                total: count(usage.total_tokens),
                error,
            };
            match chunks.last_mut() {
                Some(c) if c.len() < CHUNK => c.push(rec),
                _ => {
                    let mut c = Vec::with_capacity(CHUNK);
                    c.push(rec);
                    chunks.push(c);
                }
            }
            len += 1;
        }
        Ok(())
    })?;
    store.len = len;
    if let Some(e) = failed {
        return Err(read_error(&store.sources, e, ""));
    }
    Ok(store)
}

/// The custom_ids of request files (bytes or opened paths), in order.
fn read_input_ids(py: Python<'_>, sources: Vec<Source>) -> PyResult<Vec<String>> {
    let opts = ReaderOptions { ids_only: true, ..ReaderOptions::default() };
    let inputs = sources.iter().map(Source::input).collect();
    let mut ids = vec![];
    let failed = drain(py, inputs, opts, |block| {
        ids.extend(block.records.iter().map(|r| block.str(r.custom_id).to_owned()));
        Ok(())
    })?;
    match failed {
        Some(e) => Err(read_error(&sources, e, "inputs: ")),
        None => Ok(ids),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Filter {
    All,
    Ok,
    Failed,
}

/// Which records a `BatchResults` holds, in which order.
struct View {
    /// None: every record, in file order.
    order: Option<Vec<u32>>,
    filter: Filter,
    /// Input custom_ids with no result.
    missing: Arc<Vec<String>>,
}

impl View {
    fn len(&self, store: &Store) -> usize {
        self.order.as_ref().map_or(store.len, Vec::len)
    }

    #[inline]
    fn at(&self, pos: usize) -> u32 {
        self.order.as_ref().map_or(pos as u32, |o| o[pos])
    }

    fn admits(&self, store: &Store, i: u32) -> bool {
        match self.filter {
            Filter::All => true,
            Filter::Ok => store.rec(i).ok,
            Filter::Failed => !store.rec(i).ok,
        }
    }
}

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
}

impl BatchResult {
    fn new(store: &Arc<Store>, index: u32) -> Self {
        Self { store: store.clone(), index, body: OnceLock::new() }
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
        let bytes = py.detach(|| source.line(rec.offset, rec.len)).map_err(|e| match e.kind() {
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

/// The results of one or more batches' output and error files: one `Result` per line.
#[pyclass(module = "fastrouter_batch._core", frozen, weakref)]
pub struct BatchResults {
    store: Arc<Store>,
    view: Arc<View>,
}

impl BatchResults {
    fn positions(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.view.len(&self.store)).map(|p| self.view.at(p))
    }

    fn subset(&self, filter: Filter) -> Self {
        let want = filter == Filter::Ok;
        let order = self.positions().filter(|&i| self.store.rec(i).ok == want).collect();
        Self {
            store: self.store.clone(),
            view: Arc::new(View { order: Some(order), filter, missing: Arc::new(vec![]) }),
        }
    }

    fn lookup(&self, py: Python<'_>, id: &str) -> Option<u32> {
        self.store.find(py, id).filter(|&i| self.view.admits(&self.store, i))
    }

    fn result(&self, index: u32) -> BatchResult {
        BatchResult::new(&self.store, index)
    }
}

#[pymethods]
impl BatchResults {
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

    /// The table behind `to_pandas()` / `to_polars()`: column name → list, in order.
    fn to_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let positions: Vec<u32> = self.positions().collect();
        let recs = || positions.iter().map(|&i| self.store.rec(i));
        let none = || py.None();
        let counts = |f: fn(&Rec) -> u32| -> PyResult<Bound<'py, PyList>> {
            PyList::new(py, recs().map(|r| r.has_usage.then(|| f(r))))
        };
        let d = PyDict::new(py);
        d.set_item("custom_id", PyList::new(py, recs().map(|r| r.custom_id.clone_ref(py)))?)?;
        d.set_item("ok", PyList::new(py, recs().map(|r| r.ok))?)?;
        d.set_item("status_code", PyList::new(py, recs().map(|r| (r.status != 0).then_some(r.status)))?)?;
        d.set_item("text", PyList::new(py, recs().map(|r| opt_str(py, &r.text)))?)?;
        d.set_item(
            "model",
            PyList::new(
                py,
                recs().map(|r| {
                    if r.model == NO_MODEL {
                        none()
                    } else {
                        self.store.models[r.model as usize].clone_ref(py).into_any()
                    }
                }),
            )?,
        )?;
        d.set_item("prompt_tokens", counts(|r| r.prompt)?)?;
        d.set_item("completion_tokens", counts(|r| r.completion)?)?;
        let err = |r: &Rec, first: bool| -> Py<PyAny> {
            if r.error == NO_ERROR {
                return none();
            }
            let (c, m) = &self.store.errors[r.error as usize];
            opt_str(py, if first { c } else { m })
        };
        d.set_item("error_code", PyList::new(py, recs().map(|r| err(r, true)))?)?;
        d.set_item("error_message", PyList::new(py, recs().map(|r| err(r, false)))?)?;
        Ok(d)
    }

    /// A pandas DataFrame, one row per result (needs `fastrouter-batch[pandas]`).
    fn to_pandas(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let m = slf.py().import("fastrouter_batch.results")?;
        Ok(m.call_method1("_to_pandas", (slf,))?.unbind())
    }

    /// A polars DataFrame, one row per result (needs `fastrouter-batch[polars]`).
    fn to_polars(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let m = slf.py().import("fastrouter_batch.results")?;
        Ok(m.call_method1("_to_polars", (slf,))?.unbind())
    }

    fn __repr__(&self) -> String {
        let total = self.__len__();
        let ok = self.positions().filter(|&i| self.store.rec(i).ok).count();
        let missing = self.view.missing.len();
        let extra = if missing > 0 { format!(", missing={missing}") } else { String::new() };
        format!("BatchResults(total={total}, succeeded={ok}, failed={}{extra})", total - ok)
    }
}

#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct ResultIterator {
    results: Py<BatchResults>,
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

/// Reads output and error files (paths or bytes) into one `BatchResults`.
///
/// `inputs` gives the order: custom_ids (str) and request files (os.PathLike or bytes),
/// in order. `owned_dir` is a directory removed once the results are garbage collected
/// (where `batches.results()` downloads the files).
#[pyfunction]
#[pyo3(signature = (sources, *, inputs=None, owned_dir=None))]
pub fn read_results(
    py: Python<'_>,
    sources: &Bound<'_, PyAny>,
    inputs: Option<&Bound<'_, PyAny>>,
    owned_dir: Option<PathBuf>,
) -> PyResult<BatchResults> {
    let mut list = vec![];
    for item in sources.try_iter()? {
        list.push(Source::extract(&item?, "read_results() sources")?);
    }
    let store = Arc::new(build(py, list, owned_dir)?);
    let view = match inputs {
        None => View { order: None, filter: Filter::All, missing: Arc::new(vec![]) },
        Some(inputs) => {
            let mut order = Vec::with_capacity(store.len);
            let mut used = vec![false; store.len];
            let mut missing = vec![];
            let mut place = |py: Python<'_>, id: &str| match store.find(py, id) {
                Some(i) if !used[i as usize] => {
                    used[i as usize] = true;
                    order.push(i);
                }
                Some(_) => {}
                None => missing.push(id.to_owned()),
            };
            for item in inputs.try_iter()? {
                let item = item?;
                if let Ok(id) = item.cast_exact::<PyString>() {
                    place(py, id.to_str()?);
                } else {
                    let source = Source::extract(&item, "inputs")?;
                    for id in read_input_ids(py, vec![source])? {
                        place(py, &id);
                    }
                }
            }
            // Lines for no input (or a repeated custom_id's earlier lines) come last.
            order.extend((0..store.len as u32).filter(|&i| !used[i as usize]));
            View { order: Some(order), filter: Filter::All, missing: Arc::new(missing) }
        }
    };
    Ok(BatchResults { store, view: Arc::new(view) })
}

/// `{custom_id: text}` straight from output and error files (paths or bytes), in file
/// order, None where a line has no text. Nothing else is kept: each parsed block's two
/// strings per line become Python strings at once and the block goes back to the reader,
/// so the peak is the dict itself plus a few blocks in flight. A custom_id seen twice keeps
/// its last line's text (as `BatchResults.texts()`).
#[pyfunction]
pub fn read_texts<'py>(py: Python<'py>, sources: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let mut list = vec![];
    for item in sources.try_iter()? {
        list.push(Source::extract(&item?, "read_texts() sources")?);
    }
    let inputs = list.iter().map(Source::input).collect();
    let texts = PyDict::new(py);
    let failed = drain(py, inputs, ReaderOptions::default(), |block| {
        for r in &block.records {
            let id = PyString::new(py, block.str(r.custom_id));
            match r.text {
                Some(t) => texts.set_item(id, PyString::new(py, block.str(t)))?,
                None => texts.set_item(id, py.None())?,
            }
        }
        Ok(())
    })?;
    match failed {
        Some(e) => Err(read_error(&list, e, "")),
        None => Ok(texts),
    }
}
