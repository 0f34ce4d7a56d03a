//! `FakeUpstream`: the fake provider (realtime and native batch APIs of OpenAI and
//! Anthropic) started inside the Python process, with its fault knobs, counters and batches.

use std::sync::Mutex;

use fastrouter_batch_engine::{FakeKnobs, FakeProvider, FakeUpstream as CoreFakeUpstream, Secret, SimulatedConfig};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::args::{seconds, Seconds};
use crate::engine::probability;
use crate::errors;
use crate::gate;
use crate::serving::Serving;

/// A fake upstream provider on loopback speaking the OpenAI and Anthropic wire formats
/// (realtime and batch) with simulated answers: point `LocalServer(provider="upstream", ...)`
/// or an SDK's `base_url` at it.
#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct FakeUpstream {
    cfg: SimulatedConfig,
    port: u16,
    running: Serving<CoreFakeUpstream>,
    /// The knobs the next start begins with (and, while running, a copy of what was set).
    knobs: Mutex<FakeKnobs>,
}

fn faults_for(value: &str) -> PyResult<Option<FakeProvider>> {
    match value {
        "both" => Ok(None),
        "openai" => Ok(Some(FakeProvider::OpenAi)),
        "anthropic" => Ok(Some(FakeProvider::Anthropic)),
        other => {
            Err(PyValueError::new_err(format!("faults_for must be 'openai', 'anthropic' or 'both', got {other:?}")))
        }
    }
}

/// The knobs `configure` was given (None: leave as is).
#[derive(Default)]
struct KnobArgs {
    steps_per_poll: Option<u32>,
    step_interval: Option<f64>,
    progress_steps: Option<u32>,
    stall: Option<bool>,
    expire_after: Option<f64>,
    crlf: Option<bool>,
    hold_creates: Option<bool>,
    drop_create_replies: Option<u32>,
    drop_create_at: Option<u64>,
    rate_limit_creates: Option<u32>,
    rate_limit_polls: Option<u32>,
    retry_after: Option<f64>,
    hidden_file_reads: Option<u32>,
    enqueued_token_limit: Option<u64>,
    max_request_bytes: Option<usize>,
    api_key: Option<String>,
    faults_for: Option<String>,
}

impl KnobArgs {
    /// Checks every value first, so a bad one changes nothing.
    fn into_change(self) -> PyResult<impl FnOnce(&mut FakeKnobs) + Send> {
        let step_interval =
            self.step_interval.map(|s| seconds("step_interval", s, Seconds::NonNegative)).transpose()?;
        let expire_after = self.expire_after.map(|s| seconds("expire_after", s, Seconds::NonNegative)).transpose()?;
        let retry_after = self.retry_after.map(|s| seconds("retry_after", s, Seconds::NonNegative)).transpose()?;
        let faults = self.faults_for.as_deref().map(faults_for).transpose()?;
        if self.progress_steps == Some(0) {
            return Err(PyValueError::new_err("progress_steps must be at least 1"));
        }
        if self.api_key.as_deref().is_some_and(|k| k.trim() != k) {
            return Err(PyValueError::new_err("api_key must contain no surrounding whitespace"));
        }
        Ok(move |k: &mut FakeKnobs| {
            let set = |slot: &mut u32, v: Option<u32>| {
                if let Some(v) = v {
                    *slot = v;
                }
            };
            set(&mut k.steps_per_poll, self.steps_per_poll);
            set(&mut k.progress_steps, self.progress_steps);
            set(&mut k.drop_create_replies, self.drop_create_replies);
            set(&mut k.rate_limit_creates, self.rate_limit_creates);
            set(&mut k.rate_limit_polls, self.rate_limit_polls);
            set(&mut k.hidden_file_reads, self.hidden_file_reads);
            if let Some(d) = step_interval {
                k.step_interval = (!d.is_zero()).then_some(d);
            }
            if let Some(d) = expire_after {
                k.expire_after = (!d.is_zero()).then_some(d);
            }
            if let Some(d) = retry_after {
                k.retry_after = d;
            }
            if let Some(v) = self.stall {
                k.stall = v;
            }
            if let Some(v) = self.crlf {
                k.crlf = v;
            }
            if let Some(v) = self.hold_creates {
                k.hold_creates = v;
            }
            if let Some(n) = self.drop_create_at {
                k.drop_create_at = (n > 0).then_some(n);
            }
            if let Some(n) = self.enqueued_token_limit {
                k.enqueued_token_limit = (n > 0).then_some(n);
            }
            if let Some(n) = self.max_request_bytes {
                k.max_request_bytes = n;
            }
            if let Some(key) = self.api_key {
                k.api_key = (!key.is_empty()).then(|| Secret::new(key));
            }
            if let Some(p) = faults {
                k.faults_for = p;
            }
        })
    }
}

fn knobs_dict<'py>(py: Python<'py>, k: &FakeKnobs) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("steps_per_poll", k.steps_per_poll)?;
    d.set_item("step_interval", k.step_interval.map_or(0.0, |d| d.as_secs_f64()))?;
    d.set_item("progress_steps", k.progress_steps)?;
    d.set_item("stall", k.stall)?;
    d.set_item("expire_after", k.expire_after.map_or(0.0, |d| d.as_secs_f64()))?;
    d.set_item("crlf", k.crlf)?;
    d.set_item("hold_creates", k.hold_creates)?;
    d.set_item("drop_create_replies", k.drop_create_replies)?;
    d.set_item("drop_create_at", k.drop_create_at.unwrap_or(0))?;
    d.set_item("rate_limit_creates", k.rate_limit_creates)?;
    d.set_item("rate_limit_polls", k.rate_limit_polls)?;
    d.set_item("retry_after", k.retry_after.as_secs_f64())?;
    d.set_item("hidden_file_reads", k.hidden_file_reads)?;
    d.set_item("enqueued_token_limit", k.enqueued_token_limit.unwrap_or(0))?;
    d.set_item("max_request_bytes", k.max_request_bytes)?;
    // The key itself is never shown: only whether one is required.
    d.set_item("api_key_required", k.api_key.is_some())?;
    d.set_item("faults_for", k.faults_for.map_or("both", FakeProvider::name))?;
    Ok(d)
}

impl FakeUpstream {
    fn with_running<T>(&self, f: impl FnOnce(&CoreFakeUpstream) -> T) -> PyResult<T> {
        match self.running.lock().as_ref() {
            Some((up, _)) => Ok(f(up)),
            None => {
                Err(PyRuntimeError::new_err("the FakeUpstream is not running: call start() or use it in a with block"))
            }
        }
    }
}

#[pymethods]
impl FakeUpstream {
    #[new]
    #[pyo3(signature = (*, latency=0.0, fault_rate=0.0, port=0, embedding_dims=64))]
    fn new(latency: f64, fault_rate: f64, port: u16, embedding_dims: usize) -> PyResult<Self> {
        let cfg = SimulatedConfig {
            latency: seconds("latency", latency, Seconds::NonNegative)?,
            fault_rate: probability("fault_rate", fault_rate)?,
            embedding_dims: embedding_dims.max(1),
        };
        Ok(Self { cfg, port, running: Serving::default(), knobs: Mutex::new(FakeKnobs::default()) })
    }

    fn start(&self, py: Python<'_>) -> errors::Result<()> {
        if self.running.is_running() {
            return Ok(());
        }
        let up = gate::block_on(py, CoreFakeUpstream::start(self.cfg.clone(), self.port))??;
        up.configure(self.knobs.lock().unwrap_or_else(|e| e.into_inner()).clone());
        self.running.set(up);
        Ok(())
    }

    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.running.stop(py)
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

    #[getter]
    fn url(&self) -> PyResult<String> {
        self.with_running(CoreFakeUpstream::url)
    }

    /// Sets fault knobs and speeds, now and for the next start; the others stay as they are.
    #[pyo3(signature = (*, steps_per_poll=None, step_interval=None, progress_steps=None, stall=None, expire_after=None, crlf=None,
        hold_creates=None, drop_create_replies=None, drop_create_at=None, rate_limit_creates=None,
        rate_limit_polls=None, retry_after=None, hidden_file_reads=None, enqueued_token_limit=None,
        max_request_bytes=None, api_key=None, faults_for=None))]
    #[allow(clippy::too_many_arguments)]
    fn configure(
        &self,
        steps_per_poll: Option<u32>,
        step_interval: Option<f64>,
        progress_steps: Option<u32>,
        stall: Option<bool>,
        expire_after: Option<f64>,
        crlf: Option<bool>,
        hold_creates: Option<bool>,
        drop_create_replies: Option<u32>,
        drop_create_at: Option<u64>,
        rate_limit_creates: Option<u32>,
        rate_limit_polls: Option<u32>,
        retry_after: Option<f64>,
        hidden_file_reads: Option<u32>,
        enqueued_token_limit: Option<u64>,
        max_request_bytes: Option<usize>,
        api_key: Option<String>,
        faults_for: Option<String>,
    ) -> PyResult<()> {
        let args = KnobArgs {
            steps_per_poll,
            step_interval,
            progress_steps,
            stall,
            expire_after,
            crlf,
            hold_creates,
            drop_create_replies,
            drop_create_at,
            rate_limit_creates,
            rate_limit_polls,
            retry_after,
            hidden_file_reads,
            enqueued_token_limit,
            max_request_bytes,
            api_key,
            faults_for,
        };
        let change = args.into_change()?;
        let running = self.running.lock();
        let mut knobs = self.knobs.lock().unwrap_or_else(|e| e.into_inner());
        match running.as_ref() {
            Some((up, _)) => {
                up.update_knobs(change);
                *knobs = up.knobs();
            }
            None => change(&mut knobs),
        }
        Ok(())
    }

    /// The knobs now, as a dict (`api_key_required` instead of the key).
    fn knobs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let knobs = match self.running.lock().as_ref() {
            Some((up, _)) => up.knobs(),
            None => self.knobs.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        };
        knobs_dict(py, &knobs)
    }

    /// What the fake has been asked since it started, by name.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counters = self.with_running(CoreFakeUpstream::counters)?;
        let d = PyDict::new(py);
        for (name, value) in counters.fields() {
            d.set_item(name, value)?;
        }
        Ok(d)
    }

    /// Every batch the fake holds, oldest first: provider, id, state, request_count,
    /// metadata, input_file_id, created_at.
    fn batches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let batches = self.with_running(CoreFakeUpstream::batches)?;
        let list = PyList::empty(py);
        for b in batches {
            let d = PyDict::new(py);
            d.set_item("provider", b.provider.name())?;
            d.set_item("id", b.id)?;
            d.set_item("state", b.state)?;
            d.set_item("request_count", b.request_count)?;
            d.set_item("metadata", crate::py_json::to_py(py, &serde_json::Value::Object(b.metadata))?)?;
            d.set_item("input_file_id", b.input_file_id)?;
            d.set_item("created_at", b.created_at)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Expires every unfinished batch now, keeping the results each has.
    fn expire_all(&self) -> PyResult<()> {
        self.with_running(CoreFakeUpstream::expire_all)
    }

    fn __repr__(&self) -> String {
        match self.running.lock().as_ref() {
            Some((up, _)) => format!("FakeUpstream(url={:?})", up.url()),
            None => "FakeUpstream(not running)".to_owned(),
        }
    }
}
