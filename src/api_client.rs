//! `ApiClient`: the Rust client (`fastrouter-batch-client`) behind `fastrouter_batch.Client`
//! and `AsyncClient`, one method per operation. Each has a blocking form (through the gate)
//! and an awaitable `a...` twin built from the same future; answers come back as the JSON
//! objects the server sent (the Python layer types them), errors as the `APIError` tree.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use fastrouter_batch_client::{
    ApiObject, Batch, Client, ClientConfig, ClientError, CreateBatch, FileDeleted, FileObject, ListParams, Page,
    ProviderBreakdownList, RetryEvent, Upload,
};
use fastrouter_batch_core::Secret;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde_json::Value;

use crate::args::{self, seconds, str_arg, PathOrBytes, Seconds};
use crate::errors::{self, Error};
use crate::lines::LineStream;
use crate::{aio, gate, py_json};

/// An answer of the client, as Python objects.
trait Answer: Send + 'static {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>>;
}

fn json_to_py(py: Python<'_>, value: &Value) -> PyResult<Py<PyAny>> {
    py_json::to_py(py, value).map(Bound::unbind)
}

macro_rules! object_answer {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                json_to_py(py, &self.into_json())
            }
        }
    )*};
}

object_answer!(FileObject, FileDeleted, Batch, ProviderBreakdownList);

impl<T: ApiObject + Send + 'static> Answer for Page<T> {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_to_py(py, &self.into_json())
    }
}

impl Answer for Vec<u8> {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(PyBytes::new(py, &self).into_any().unbind())
    }
}

impl Answer for u64 {
    fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.into_pyobject(py)?.into_any().unbind())
    }
}

type Op<T> = Result<T, ClientError>;

/// Runs an operation through the gate.
fn blocking<T: Answer>(py: Python<'_>, op: impl Future<Output = Op<T>> + Send) -> errors::Result<Py<PyAny>> {
    let answer = gate::block_on(py, op)??;
    Ok(answer.into_py(py)?)
}

/// An operation as an awaitable (cancelling the asyncio task drops it).
fn awaitable<'py, T: Answer>(
    py: Python<'py>,
    op: impl Future<Output = Op<T>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    aio::awaitable(py, async move {
        let answer = op.await.map_err(Error::from)?;
        Python::attach(|py| answer.into_py(py))
    })
}

/// Keys read from a file or a prompt often end in a newline: surrounding whitespace is
/// never part of a key. Anything else unprintable cannot go in a header. (The key itself is
/// never shown.)
fn api_key(key: &str) -> PyResult<Secret> {
    let key = key.trim();
    if key.is_empty() {
        return Err(PyValueError::new_err("api_key is empty"));
    }
    if let Some(at) = key.chars().position(|c| c.is_control()) {
        return Err(PyValueError::new_err(format!(
            "api_key has a control character (at character {}): an API key is one line of printable text",
            at + 1
        )));
    }
    Ok(Secret::new(key))
}

/// An optional str argument.
fn opt_str(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<String>> {
    value.filter(|v| !v.is_none()).map(|v| str_arg(v, name).map(str::to_owned)).transpose()
}

fn list_params(limit: Option<u64>, after: Option<&Bound<'_, PyAny>>) -> PyResult<ListParams> {
    Ok(ListParams { limit, after: opt_str(after, "after")? })
}

#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct ApiClient {
    client: Client,
}

#[pymethods]
impl ApiClient {
    /// `base_url` None: FastRouter's hosted API.
    #[new]
    #[pyo3(signature = (*, api_key, base_url=None, timeout=600.0, max_retries=2))]
    fn new(api_key: &str, base_url: Option<&str>, timeout: f64, max_retries: u32) -> errors::Result<Self> {
        let mut cfg = ClientConfig::new(base_url, self::api_key(api_key)?);
        cfg.timeout = seconds("timeout", timeout, Seconds::Positive)?;
        cfg.retry.max_retries = max_retries;
        cfg.on_retry = Some(Arc::new(log_retry));
        Ok(Self { client: Client::new(cfg)? })
    }

    /// A copy with other settings, sharing connections.
    #[pyo3(signature = (*, timeout=None, max_retries=None))]
    fn with_options(&self, timeout: Option<f64>, max_retries: Option<u32>) -> PyResult<Self> {
        let mut cfg = self.client.config().clone();
        if let Some(t) = timeout {
            cfg.timeout = seconds("timeout", t, Seconds::Positive)?;
        }
        if let Some(r) = max_retries {
            cfg.retry.max_retries = r;
        }
        Ok(Self { client: self.client.with_config(cfg) })
    }

    /// The API root, credentials in it (`http://user:KEY@host`) shown as `***`.
    #[getter]
    fn base_url(&self) -> String {
        self.client.config().shown_base_url()
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
        format!("ApiClient(base_url={:?})", self.client.config().shown_base_url())
    }

    /// `POST /v1/files`: `file` is a path (streamed from disk) or bytes.
    #[pyo3(signature = (file, *, filename, purpose=String::from("batch")), text_signature = "($self, file, *, filename, purpose='batch')")]
    fn create_file(
        &self,
        py: Python<'_>,
        file: &Bound<'_, PyAny>,
        filename: String,
        purpose: String,
    ) -> errors::Result<Py<PyAny>> {
        blocking(py, self.create_file_op(file, filename, purpose)?)
    }

    #[pyo3(signature = (file, *, filename, purpose=String::from("batch")), text_signature = "($self, file, *, filename, purpose='batch')")]
    fn acreate_file<'py>(
        &self,
        py: Python<'py>,
        file: &Bound<'_, PyAny>,
        filename: String,
        purpose: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.create_file_op(file, filename, purpose)?)
    }

    fn retrieve_file(&self, py: Python<'_>, file_id: &Bound<'_, PyAny>) -> errors::Result<Py<PyAny>> {
        blocking(py, self.retrieve_file_op(file_id)?)
    }

    fn aretrieve_file<'py>(&self, py: Python<'py>, file_id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.retrieve_file_op(file_id)?)
    }

    #[pyo3(signature = (*, purpose=None, limit=None, after=None))]
    fn list_files(
        &self,
        py: Python<'_>,
        purpose: Option<&Bound<'_, PyAny>>,
        limit: Option<u64>,
        after: Option<&Bound<'_, PyAny>>,
    ) -> errors::Result<Py<PyAny>> {
        blocking(py, self.list_files_op(purpose, limit, after)?)
    }

    #[pyo3(signature = (*, purpose=None, limit=None, after=None))]
    fn alist_files<'py>(
        &self,
        py: Python<'py>,
        purpose: Option<&Bound<'_, PyAny>>,
        limit: Option<u64>,
        after: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.list_files_op(purpose, limit, after)?)
    }

    fn delete_file(&self, py: Python<'_>, file_id: &Bound<'_, PyAny>) -> errors::Result<Py<PyAny>> {
        blocking(py, self.delete_file_op(file_id)?)
    }

    fn adelete_file<'py>(&self, py: Python<'py>, file_id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.delete_file_op(file_id)?)
    }

    /// The file's whole content, in memory.
    fn file_content(&self, py: Python<'_>, file_id: &Bound<'_, PyAny>) -> errors::Result<Py<PyAny>> {
        blocking(py, self.file_content_op(file_id)?)
    }

    fn afile_content<'py>(&self, py: Python<'py>, file_id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.file_content_op(file_id)?)
    }

    /// The file's content streamed to `path`; the bytes written.
    fn download_file(&self, py: Python<'_>, file_id: &Bound<'_, PyAny>, path: PathBuf) -> errors::Result<Py<PyAny>> {
        blocking(py, self.download_file_op(file_id, path)?)
    }

    fn adownload_file<'py>(
        &self,
        py: Python<'py>,
        file_id: &Bound<'_, PyAny>,
        path: PathBuf,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.download_file_op(file_id, path)?)
    }

    /// The file's lines (without newlines), streamed, for `for` and `async for`.
    fn file_lines(&self, file_id: &Bound<'_, PyAny>) -> errors::Result<LineStream> {
        let file_id = str_arg(file_id, "file_id")?;
        let lines = self.client.files().lines(file_id)?;
        LineStream::start(lines)
    }

    /// `POST /v1/batches` (a key is made for this call unless `idempotency_key` is given).
    #[pyo3(signature = (*, input_file_id, endpoint, completion_window, metadata=None, idempotency_key=None))]
    fn create_batch(
        &self,
        py: Python<'_>,
        input_file_id: &Bound<'_, PyAny>,
        endpoint: &Bound<'_, PyAny>,
        completion_window: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<&Bound<'_, PyAny>>,
    ) -> errors::Result<Py<PyAny>> {
        let request = create_request(input_file_id, endpoint, completion_window, metadata, idempotency_key)?;
        blocking(py, self.create_batch_op(request))
    }

    #[pyo3(signature = (*, input_file_id, endpoint, completion_window, metadata=None, idempotency_key=None))]
    fn acreate_batch<'py>(
        &self,
        py: Python<'py>,
        input_file_id: &Bound<'_, PyAny>,
        endpoint: &Bound<'_, PyAny>,
        completion_window: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = create_request(input_file_id, endpoint, completion_window, metadata, idempotency_key)?;
        awaitable(py, self.create_batch_op(request))
    }

    fn retrieve_batch(&self, py: Python<'_>, batch_id: &Bound<'_, PyAny>) -> errors::Result<Py<PyAny>> {
        blocking(py, self.retrieve_batch_op(batch_id)?)
    }

    fn aretrieve_batch<'py>(&self, py: Python<'py>, batch_id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.retrieve_batch_op(batch_id)?)
    }

    #[pyo3(signature = (*, limit=None, after=None))]
    fn list_batches(
        &self,
        py: Python<'_>,
        limit: Option<u64>,
        after: Option<&Bound<'_, PyAny>>,
    ) -> errors::Result<Py<PyAny>> {
        blocking(py, self.list_batches_op(limit, after)?)
    }

    #[pyo3(signature = (*, limit=None, after=None))]
    fn alist_batches<'py>(
        &self,
        py: Python<'py>,
        limit: Option<u64>,
        after: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.list_batches_op(limit, after)?)
    }

    fn cancel_batch(&self, py: Python<'_>, batch_id: &Bound<'_, PyAny>) -> errors::Result<Py<PyAny>> {
        blocking(py, self.cancel_batch_op(batch_id)?)
    }

    fn acancel_batch<'py>(&self, py: Python<'py>, batch_id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.cancel_batch_op(batch_id)?)
    }

    fn batch_providers(&self, py: Python<'_>, batch_id: &Bound<'_, PyAny>) -> errors::Result<Py<PyAny>> {
        blocking(py, self.batch_providers_op(batch_id)?)
    }

    fn abatch_providers<'py>(&self, py: Python<'py>, batch_id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, self.batch_providers_op(batch_id)?)
    }
}

/// The operations as owned futures (their arguments converted first, the GIL held), for
/// `blocking` and `awaitable` alike.
impl ApiClient {
    /// An operation on one object, given its id (a str argument named `name`).
    fn by_id<T, F, Fut>(&self, id: &Bound<'_, PyAny>, name: &str, op: F) -> PyResult<Fut>
    where
        F: FnOnce(Client, String) -> Fut,
        Fut: Future<Output = Op<T>> + Send + 'static,
    {
        Ok(op(self.client.clone(), str_arg(id, name)?.to_owned()))
    }

    fn create_file_op(
        &self,
        file: &Bound<'_, PyAny>,
        filename: String,
        purpose: String,
    ) -> PyResult<impl Future<Output = Op<FileObject>> + Send + 'static> {
        let source = match args::path_or_bytes(file)? {
            Some(PathOrBytes::Path(p)) => Upload::Path(p),
            Some(PathOrBytes::Bytes(b)) => Upload::Bytes(bytes::Bytes::from_owner(b)),
            None => {
                return Err(PyTypeError::new_err(format!(
                    "file must be a path or bytes, got {}",
                    args::type_name(file)
                )))
            }
        };
        let client = self.client.clone();
        Ok(async move { client.files().create(&source, &filename, &purpose).await })
    }

    fn retrieve_file_op(
        &self,
        file_id: &Bound<'_, PyAny>,
    ) -> PyResult<impl Future<Output = Op<FileObject>> + Send + 'static> {
        self.by_id(file_id, "file_id", |client, id| async move { client.files().retrieve(&id).await })
    }

    fn list_files_op(
        &self,
        purpose: Option<&Bound<'_, PyAny>>,
        limit: Option<u64>,
        after: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<impl Future<Output = Op<Page<FileObject>>> + Send + 'static> {
        let (client, purpose, page) = (self.client.clone(), opt_str(purpose, "purpose")?, list_params(limit, after)?);
        Ok(async move { client.files().list(purpose.as_deref(), &page).await })
    }

    fn delete_file_op(
        &self,
        file_id: &Bound<'_, PyAny>,
    ) -> PyResult<impl Future<Output = Op<FileDeleted>> + Send + 'static> {
        self.by_id(file_id, "file_id", |client, id| async move { client.files().delete(&id).await })
    }

    fn file_content_op(
        &self,
        file_id: &Bound<'_, PyAny>,
    ) -> PyResult<impl Future<Output = Op<Vec<u8>>> + Send + 'static> {
        self.by_id(file_id, "file_id", |client, id| async move { client.files().content(&id).await })
    }

    fn download_file_op(
        &self,
        file_id: &Bound<'_, PyAny>,
        path: PathBuf,
    ) -> PyResult<impl Future<Output = Op<u64>> + Send + 'static> {
        self.by_id(file_id, "file_id", |client, id| async move { client.files().download(&id, &path).await })
    }

    fn create_batch_op(&self, request: CreateBatch) -> impl Future<Output = Op<Batch>> + Send + 'static {
        let client = self.client.clone();
        async move { client.batches().create(&request).await }
    }

    fn retrieve_batch_op(
        &self,
        batch_id: &Bound<'_, PyAny>,
    ) -> PyResult<impl Future<Output = Op<Batch>> + Send + 'static> {
        self.by_id(batch_id, "batch_id", |client, id| async move { client.batches().retrieve(&id).await })
    }

    fn cancel_batch_op(
        &self,
        batch_id: &Bound<'_, PyAny>,
    ) -> PyResult<impl Future<Output = Op<Batch>> + Send + 'static> {
        self.by_id(batch_id, "batch_id", |client, id| async move { client.batches().cancel(&id).await })
    }

    fn batch_providers_op(
        &self,
        batch_id: &Bound<'_, PyAny>,
    ) -> PyResult<impl Future<Output = Op<ProviderBreakdownList>> + Send + 'static> {
        self.by_id(batch_id, "batch_id", |client, id| async move { client.batches().providers(&id).await })
    }

    fn list_batches_op(
        &self,
        limit: Option<u64>,
        after: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<impl Future<Output = Op<Page<Batch>>> + Send + 'static> {
        let (client, page) = (self.client.clone(), list_params(limit, after)?);
        Ok(async move { client.batches().list(&page).await })
    }
}

fn create_request(
    input_file_id: &Bound<'_, PyAny>,
    endpoint: &Bound<'_, PyAny>,
    completion_window: &Bound<'_, PyAny>,
    metadata: Option<&Bound<'_, PyAny>>,
    idempotency_key: Option<&Bound<'_, PyAny>>,
) -> PyResult<CreateBatch> {
    let metadata = match metadata.filter(|m| !m.is_none()) {
        None => None,
        Some(m) => {
            let dict = m
                .cast::<PyDict>()
                .map_err(|_| PyTypeError::new_err(format!("metadata must be a dict, got {}", args::type_name(m))))?;
            let mut out = Vec::new();
            py_json::write_value(dict.as_any(), &mut out).map_err(|e| e.into_py("metadata"))?;
            match serde_json::from_slice(&out) {
                Ok(Value::Object(map)) => Some(map),
                _ => return Err(PyValueError::new_err("metadata must be a JSON object")),
            }
        }
    };
    Ok(CreateBatch {
        input_file_id: str_arg(input_file_id, "input_file_id")?.to_owned(),
        endpoint: str_arg(endpoint, "endpoint")?.to_owned(),
        completion_window: str_arg(completion_window, "completion_window")?.to_owned(),
        metadata,
        idempotency_key: opt_str(idempotency_key, "idempotency_key")?,
    })
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
