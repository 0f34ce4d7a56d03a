//! `Transport`: the Rust client behind `fastrouter_batch.Client` and `AsyncClient`. Every
//! operation has a blocking form (through the gate) and an awaitable `a...` twin; the
//! Python layer adds the resources (`files`, `batches`) and typed objects.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fastrouter_batch_client::{Client, ClientConfig, ClientError, RetryEvent, Upload};
use fastrouter_batch_core::Secret;
use futures_util::StreamExt;
use pyo3::exceptions::{PyStopAsyncIteration, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::{mpsc, Mutex as AsyncMutex};

use crate::{aio, errors, gate, py_json};

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    match Duration::try_from_secs_f64(value) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(PyValueError::new_err(format!("{name} must be a positive number of seconds, got {value}"))),
    }
}

fn method(name: &str) -> PyResult<Method> {
    match name {
        "GET" => Ok(Method::GET),
        "POST" => Ok(Method::POST),
        "DELETE" => Ok(Method::DELETE),
        other => Err(PyValueError::new_err(format!("unsupported method {other:?}"))),
    }
}

/// A Python body (dict) as JSON.
fn json_body(body: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Value>> {
    let Some(body) = body.filter(|b| !b.is_none()) else { return Ok(None) };
    let mut out = Vec::new();
    py_json::write_value(body, &mut out).map_err(|e| e.into_py("body"))?;
    serde_json::from_slice(&out).map(Some).map_err(|e| PyValueError::new_err(format!("body: {e}")))
}

fn to_py(v: Value) -> PyResult<Py<PyAny>> {
    Python::attach(|py| py_json::to_py(py, &v).map(Bound::unbind))
}

/// What `upload` accepts: a path (streamed) or bytes.
fn upload_source(source: &Bound<'_, PyAny>) -> PyResult<Upload> {
    if let Ok(b) = source.cast::<PyBytes>() {
        return Ok(Upload::Bytes(Bytes::copy_from_slice(b.as_bytes())));
    }
    if let Ok(b) = source.cast::<PyByteArray>() {
        return Ok(Upload::Bytes(Bytes::from(b.to_vec())));
    }
    source.extract::<PathBuf>().map(Upload::Path).map_err(|_| PyValueError::new_err("file must be a path or bytes"))
}

#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct Transport {
    client: Client,
}

#[pymethods]
impl Transport {
    #[new]
    #[pyo3(signature = (*, base_url, api_key, timeout=600.0, max_retries=2))]
    fn new(base_url: &str, api_key: &str, timeout: f64, max_retries: u32) -> PyResult<Self> {
        // Keys read from a file or a prompt often end in a newline: surrounding whitespace
        // is never part of a key. Anything else unprintable cannot go in a header. (The
        // key itself is never shown.)
        let api_key = api_key.trim();
        if api_key.is_empty() {
            return Err(PyValueError::new_err("api_key is empty"));
        }
        if let Some(at) = api_key.chars().position(|c| c.is_control()) {
            return Err(PyValueError::new_err(format!(
                "api_key has a control character (at character {}): an API key is one line of printable text",
                at + 1
            )));
        }
        let mut cfg = ClientConfig::new(base_url, Secret::new(api_key));
        cfg.timeout = seconds("timeout", timeout)?;
        cfg.retry.max_retries = max_retries;
        cfg.on_retry = Some(Arc::new(log_retry));
        Ok(Self { client: Client::new(cfg).map_err(errors::from_client)? })
    }

    /// A copy with other settings, sharing connections.
    #[pyo3(signature = (*, timeout=None, max_retries=None))]
    fn with_options(&self, timeout: Option<f64>, max_retries: Option<u32>) -> PyResult<Self> {
        let mut cfg = self.client.config().clone();
        if let Some(t) = timeout {
            cfg.timeout = seconds("timeout", t)?;
        }
        if let Some(r) = max_retries {
            cfg.retry.max_retries = r;
        }
        Ok(Self { client: self.client.with_config(cfg) })
    }

    #[getter]
    fn base_url(&self) -> String {
        self.client.config().base_url.clone()
    }

    #[getter]
    fn timeout(&self) -> f64 {
        self.client.config().timeout.as_secs_f64()
    }

    #[getter]
    fn max_retries(&self) -> u32 {
        self.client.config().retry.max_retries
    }

    fn __repr__(&self) -> String {
        format!("Transport(base_url={:?})", self.client.config().base_url)
    }

    #[pyo3(signature = (method, path, *, query=None, body=None, idempotency_key=None))]
    fn request(
        &self,
        py: Python<'_>,
        method: &str,
        path: String,
        query: Option<Vec<(String, String)>>,
        body: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let fut = self.call(method, path, query, body, idempotency_key)?;
        to_py(gate::block_on(py, fut)?.map_err(errors::from_client)?)
    }

    #[pyo3(signature = (method, path, *, query=None, body=None, idempotency_key=None))]
    fn arequest<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        path: String,
        query: Option<Vec<(String, String)>>,
        body: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let fut = self.call(method, path, query, body, idempotency_key)?;
        aio::awaitable(py, async move { to_py(fut.await.map_err(errors::from_client)?) })
    }

    #[pyo3(signature = (file, *, filename, purpose=String::from("batch")), text_signature = "($self, file, *, filename, purpose='batch')")]
    fn upload(
        &self,
        py: Python<'_>,
        file: &Bound<'_, PyAny>,
        filename: String,
        purpose: String,
    ) -> PyResult<Py<PyAny>> {
        let (client, source) = (self.client.clone(), upload_source(file)?);
        let value = gate::block_on(py, async move { client.upload(&source, &filename, &purpose).await })?;
        to_py(value.map_err(errors::from_client)?)
    }

    #[pyo3(signature = (file, *, filename, purpose=String::from("batch")), text_signature = "($self, file, *, filename, purpose='batch')")]
    fn aupload<'py>(
        &self,
        py: Python<'py>,
        file: &Bound<'_, PyAny>,
        filename: String,
        purpose: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, source) = (self.client.clone(), upload_source(file)?);
        aio::awaitable(py, async move {
            to_py(client.upload(&source, &filename, &purpose).await.map_err(errors::from_client)?)
        })
    }

    fn content(&self, py: Python<'_>, file_id: String) -> PyResult<Py<PyBytes>> {
        let client = self.client.clone();
        let bytes = gate::block_on(py, async move { client.content(&file_id).await })?.map_err(errors::from_client)?;
        Ok(PyBytes::new(py, &bytes).unbind())
    }

    fn acontent<'py>(&self, py: Python<'py>, file_id: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        aio::awaitable(py, async move {
            let bytes = client.content(&file_id).await.map_err(errors::from_client)?;
            Python::attach(|py| Ok(PyBytes::new(py, &bytes).unbind()))
        })
    }

    fn download(&self, py: Python<'_>, file_id: String, path: PathBuf) -> PyResult<u64> {
        let client = self.client.clone();
        gate::block_on(py, async move { client.download(&file_id, &path).await })?.map_err(errors::from_client)
    }

    fn adownload<'py>(&self, py: Python<'py>, file_id: String, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        aio::awaitable(py, async move { client.download(&file_id, &path).await.map_err(errors::from_client) })
    }

    /// The file's lines (without newlines), streamed.
    fn iter_lines(&self, file_id: String) -> PyResult<LineStream> {
        LineStream::open(self.client.clone(), file_id)
    }
}

impl Transport {
    fn call(
        &self,
        method_name: &str,
        path: String,
        query: Option<Vec<(String, String)>>,
        body: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<String>,
    ) -> PyResult<impl std::future::Future<Output = Result<Value, ClientError>> + Send + 'static> {
        let (m, body, client) = (method(method_name)?, json_body(body)?, self.client.clone());
        let query = query.unwrap_or_default();
        Ok(async move { client.call(m, &path, &query, body.as_ref(), idempotency_key.as_deref()).await })
    }
}

/// Retries are library events: they go to the `fastrouter_batch` logger (WARNING), with
/// what failed and the wait, never the key (errors do not carry it).
fn log_retry(e: &RetryEvent<'_>) {
    Python::attach(|py| {
        let Ok(logging) = py.import("logging") else { return };
        let Ok(logger) = logging.call_method1("getLogger", ("fastrouter_batch",)) else { return };
        let text = format!(
            "retrying {} {} in {:.2}s (retry {} of {}): {}",
            e.method,
            e.path,
            e.wait.as_secs_f64(),
            e.retry,
            e.max_retries,
            e.error
        );
        let _ = logger.call_method1("warning", (text,));
    });
}

type LineResult = Result<String, ClientError>;

/// Lines of a file as they arrive, for `for line in ...` and `async for line in ...`.
/// A connection lost mid-way is reopened and the bytes already delivered are skipped.
#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct LineStream {
    rx: Arc<AsyncMutex<mpsc::Receiver<LineResult>>>,
    /// Lines already received, handed out without a trip through the event loop: an
    /// awaited step costs tens of microseconds, a line a few hundred nanoseconds.
    ready: Arc<Mutex<VecDeque<LineResult>>>,
}

/// Lines taken at most per awaited step.
const READY_LINES: usize = 4096;

/// An awaitable already done: `await` gives `value` at once.
#[pyclass(module = "fastrouter_batch._core", frozen)]
struct Ready {
    value: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl Ready {
    fn __await__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<()> {
        let value = self.value.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_else(|| py.None());
        Err(pyo3::exceptions::PyStopIteration::new_err((value,)))
    }
}

impl LineStream {
    fn open(client: Client, file_id: String) -> PyResult<Self> {
        let (tx, rx) = mpsc::channel(256);
        let rt = crate::runtime::get().map_err(PyErr::from)?;
        rt.spawn(async move {
            if let Err(e) = pump_lines(&client, &file_id, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(Self { rx: Arc::new(AsyncMutex::new(rx)), ready: Arc::default() })
    }
}

async fn pump_lines(client: &Client, file_id: &str, tx: &mpsc::Sender<LineResult>) -> Result<(), ClientError> {
    let mut delivered: u64 = 0;
    let mut attempt = 0;
    'reopen: loop {
        let resp = client.open_content(file_id).await?;
        let mut stream = resp.bytes_stream();
        let mut skip = delivered;
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let mut chunk = match chunk {
                Ok(c) => c,
                Err(e) if attempt < client.config().retry.max_retries => {
                    let _ = e;
                    attempt += 1;
                    continue 'reopen;
                }
                Err(e) => return Err(ClientError::Connection { message: format!("Download cut short: {e}") }),
            };
            if skip > 0 {
                let n = skip.min(chunk.len() as u64) as usize;
                chunk = chunk.slice(n..);
                skip -= n as u64;
            }
            pending.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &pending[start..]) {
                let end = start + nl;
                let line = pending[start..end].strip_suffix(b"\r").unwrap_or(&pending[start..end]);
                delivered += (end + 1 - start) as u64;
                if tx.send(Ok(String::from_utf8_lossy(line).into_owned())).await.is_err() {
                    return Ok(()); // the iterator was dropped
                }
                start = end + 1;
            }
            pending.drain(..start);
        }
        if !pending.is_empty() {
            let _ = tx.send(Ok(String::from_utf8_lossy(&pending).into_owned())).await;
        }
        return Ok(());
    }
}

impl LineStream {
    fn take_ready(&self) -> Option<LineResult> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }
}

/// The next line, waited for; the lines already behind it go to `ready`.
async fn receive(
    rx: Arc<AsyncMutex<mpsc::Receiver<LineResult>>>,
    ready: Arc<Mutex<VecDeque<LineResult>>>,
) -> Option<LineResult> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await;
    let mut ready = ready.lock().unwrap_or_else(|e| e.into_inner());
    while ready.len() < READY_LINES {
        match rx.try_recv() {
            Ok(item) => ready.push_back(item),
            Err(_) => break,
        }
    }
    first
}

fn next_item(item: Option<LineResult>) -> PyResult<Option<String>> {
    match item {
        None => Ok(None),
        Some(Ok(line)) => Ok(Some(line)),
        Some(Err(e)) => Err(errors::from_client(e)),
    }
}

#[pymethods]
impl LineStream {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        if let Some(item) = self.take_ready() {
            return next_item(Some(item));
        }
        let (rx, ready) = (self.rx.clone(), self.ready.clone());
        next_item(gate::block_on(py, receive(rx, ready))?)
    }

    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(item) = self.take_ready() {
            let line = next_item(Some(item))?.into_pyobject(py)?.into_any().unbind();
            return Ok(Bound::new(py, Ready { value: Mutex::new(Some(line)) })?.into_any());
        }
        let (rx, ready) = (self.rx.clone(), self.ready.clone());
        aio::awaitable(py, async move {
            match next_item(receive(rx, ready).await)? {
                Some(line) => Ok(line),
                None => Err(PyStopAsyncIteration::new_err(())),
            }
        })
    }
}
