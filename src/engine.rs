//! `LocalServer`: the engine started inside the Python process, on the shared runtime, on a
//! loopback port.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use fastrouter_batch_engine::{
    Engine, EngineConfig, EngineError, ProviderMode, RetryPolicy, Secret, SimulatedConfig, UpstreamConfig, UpstreamMode,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::args::{seconds, Seconds};
use crate::errors;
use crate::gate;
use crate::serving::Serving;
use crate::validation::Limits;

pub(crate) fn probability(name: &str, value: f64) -> PyResult<f64> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(PyValueError::new_err(format!("{name} must be between 0 and 1, got {value}")))
    }
}

/// `api_key` as given: one key, several, or none (the engine makes one).
fn api_keys(value: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Secret>> {
    let Some(value) = value.filter(|v| !v.is_none()) else { return Ok(Vec::new()) };
    let keys: Vec<String> = match value.extract::<String>() {
        Ok(one) => vec![one],
        Err(_) => value
            .extract::<Vec<String>>()
            .map_err(|_| PyValueError::new_err("api_key must be a string, a list of strings or None"))?,
    };
    if keys.iter().any(|k| k.trim().is_empty() || k.contains(char::is_whitespace)) {
        return Err(PyValueError::new_err("api_key must be non-empty and contain no whitespace"));
    }
    Ok(keys.into_iter().map(Secret::new).collect())
}

/// What a server told about itself when it last started: still readable once stopped
/// (to start another on the same `data_dir` with the same key, say).
#[derive(Clone)]
struct Info {
    url: String,
    api_key: Secret,
    data_dir: PathBuf,
    resumed: usize,
}

/// The local engine in this process: `with LocalServer() as server: ...`.
#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct LocalServer {
    cfg: EngineConfig,
    provider_name: &'static str,
    running: Serving<Engine>,
    last: Mutex<Option<Info>>,
    /// One `start` at a time (two threads must not start two engines).
    starting: tokio::sync::Mutex<()>,
}

#[pymethods]
impl LocalServer {
    #[new]
    #[pyo3(signature = (*, provider="simulated", latency=0.0, fault_rate=0.0, data_dir=None, api_key=None,
        host="127.0.0.1", port=0, limits=None, completion_window=86400.0, concurrency=64, max_retries=5,
        retry_delay=0.5, openai_base_url=None, openai_api_key=None, anthropic_base_url=None,
        anthropic_api_key=None, embedding_dims=64, upstream_timeout=600.0, anthropic_sampling=None,
        metrics_public=false, upstream_mode="native", poll_interval=60.0, native_chunk_size=None,
        delete_input_files=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        provider: &str,
        latency: f64,
        fault_rate: f64,
        data_dir: Option<PathBuf>,
        api_key: Option<&Bound<'_, PyAny>>,
        host: &str,
        port: u16,
        limits: Option<PyRef<'_, Limits>>,
        completion_window: f64,
        concurrency: usize,
        max_retries: u32,
        retry_delay: f64,
        openai_base_url: Option<String>,
        openai_api_key: Option<String>,
        anthropic_base_url: Option<String>,
        anthropic_api_key: Option<String>,
        embedding_dims: usize,
        upstream_timeout: f64,
        anthropic_sampling: Option<&Bound<'_, PyAny>>,
        metrics_public: bool,
        upstream_mode: &str,
        poll_interval: f64,
        native_chunk_size: Option<usize>,
        delete_input_files: bool,
    ) -> PyResult<Self> {
        let host: IpAddr =
            host.parse().map_err(|_| PyValueError::new_err(format!("host must be an IP address, got {host:?}")))?;
        if concurrency == 0 {
            return Err(PyValueError::new_err("concurrency must be at least 1"));
        }
        let window = seconds("completion_window", completion_window, Seconds::Positive)?;
        let (provider_name, mode) = match provider {
            "simulated" => (
                "simulated",
                ProviderMode::Simulated(SimulatedConfig {
                    latency: seconds("latency", latency, Seconds::NonNegative)?,
                    fault_rate: probability("fault_rate", fault_rate)?,
                    embedding_dims: embedding_dims.max(1),
                }),
            ),
            "upstream" => {
                let mut up = UpstreamConfig::from_env();
                if let Some(url) = openai_base_url {
                    up.openai.base_url = url;
                }
                if let Some(key) = openai_api_key {
                    up.openai.api_key = Some(Secret::new(key));
                }
                if let Some(url) = anthropic_base_url {
                    up.anthropic.base_url = url;
                }
                if let Some(key) = anthropic_api_key {
                    up.anthropic.api_key = Some(Secret::new(key));
                }
                up.timeout = seconds("upstream_timeout", upstream_timeout, Seconds::Positive)?;
                up.mode = UpstreamMode::parse(upstream_mode).ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "upstream_mode must be 'native' or 'realtime', got {upstream_mode:?}"
                    ))
                })?;
                up.native.poll_interval = seconds("poll_interval", poll_interval, Seconds::Positive)?;
                up.native.delete_input_files = delete_input_files;
                if let Some(n) = native_chunk_size {
                    if n == 0 {
                        return Err(PyValueError::new_err("native_chunk_size must be at least 1"));
                    }
                    up.native = up.native.clone().with_chunk_size(n);
                }
                ("upstream", ProviderMode::Upstream(up))
            }
            other => {
                return Err(PyValueError::new_err(format!("provider must be 'simulated' or 'upstream', got {other:?}")))
            }
        };
        let base_delay = seconds("retry_delay", retry_delay, Seconds::NonNegative)?;
        let cfg = EngineConfig {
            host,
            port,
            data_dir,
            api_keys: api_keys(api_key)?,
            provider: mode,
            limits: limits.map(|l| l.core()).unwrap_or_default(),
            completion_window: window,
            concurrency_per_provider: concurrency,
            retry: RetryPolicy {
                max_retries,
                base_delay,
                max_delay: base_delay.max(Duration::from_secs(30)),
                ..RetryPolicy::default()
            },
            anthropic_sampling: crate::validation::sampling_table(anthropic_sampling)?,
            metrics_public,
            ..EngineConfig::default()
        };
        Ok(Self {
            cfg,
            provider_name,
            running: Serving::default(),
            last: Mutex::new(None),
            starting: tokio::sync::Mutex::new(()),
        })
    }

    /// Starts serving (a no-op if already running). A key the engine made up is kept for
    /// the next start, so a restart on the same `data_dir` sees the same batches.
    fn start(&self, py: Python<'_>) -> errors::Result<()> {
        let starting = async {
            // One start at a time: two threads must not start two engines. The other one
            // waits here, in the gate (without the GIL, Ctrl-C heard).
            let _one_at_a_time = self.starting.lock().await;
            if self.running.is_running() {
                return Ok(());
            }
            let mut cfg = self.cfg.clone();
            if cfg.api_keys.is_empty() {
                if let Some(last) = &*self.last_info() {
                    cfg.api_keys.push(last.api_key.clone());
                }
            }
            let engine = Engine::start(cfg).await?;
            let info = Info {
                url: engine.url(),
                api_key: engine.api_key().clone(),
                data_dir: engine.data_dir().to_path_buf(),
                resumed: engine.resumed(),
            };
            *self.last_info() = Some(info);
            self.running.set(engine);
            Ok::<_, EngineError>(())
        };
        Ok(gate::block_on(py, starting)??)
    }

    /// Stops serving. Unfinished batches resume when a server starts on the same data_dir.
    /// Interrupted (Ctrl-C), the stop still completes in the background.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.running.stop(py)
    }

    /// Blocks until interrupted (Ctrl-C), serving meanwhile.
    fn serve_forever(&self, py: Python<'_>) -> errors::Result<()> {
        self.start(py)?;
        Ok(gate::block_on(py, std::future::pending::<()>())?)
    }

    fn __enter__(slf: Bound<'_, Self>) -> errors::Result<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    /// The base URL, e.g. `http://127.0.0.1:53211` (of the last start, once stopped).
    #[getter]
    fn url(&self) -> PyResult<String> {
        self.with_info(|i| i.url.clone())
    }

    /// The dashboard's address: the engine's root (it asks for the key in the browser).
    #[getter]
    fn dashboard_url(&self) -> PyResult<String> {
        self.with_info(|i| format!("{}/", i.url))
    }

    /// The accepted key (the generated one when none was given).
    #[getter]
    fn api_key(&self) -> PyResult<String> {
        self.with_info(|i| i.api_key.expose().to_owned())
    }

    /// Where the state lives (a temporary directory is gone once stopped).
    #[getter]
    fn data_dir(&self) -> PyResult<PathBuf> {
        self.with_info(|i| i.data_dir.clone())
    }

    /// Unfinished batches picked up from the data directory at start.
    #[getter]
    fn resumed(&self) -> PyResult<usize> {
        self.with_info(|i| i.resumed)
    }

    #[getter]
    fn running(&self) -> bool {
        self.running.is_running()
    }

    #[getter]
    fn provider(&self) -> &'static str {
        self.provider_name
    }

    fn __repr__(&self) -> String {
        match (&*self.last_info(), self.running.is_running()) {
            (Some(i), true) => format!(
                "LocalServer(url={:?}, dashboard={:?}, provider={:?}, data_dir={:?})",
                i.url,
                format!("{}/", i.url),
                self.provider_name,
                i.data_dir.display().to_string()
            ),
            _ => format!("LocalServer(provider={:?}, not running)", self.provider_name),
        }
    }
}

impl LocalServer {
    fn last_info(&self) -> std::sync::MutexGuard<'_, Option<Info>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_info<T>(&self, f: impl FnOnce(&Info) -> T) -> PyResult<T> {
        match &*self.last_info() {
            Some(i) => Ok(f(i)),
            None => {
                Err(PyRuntimeError::new_err("the LocalServer has not started: call start() or use it in a with block"))
            }
        }
    }
}
