//! `validate()`, `Limits`, `ValidationReport` and `ValidationIssue`: the Python face of
//! the core validator.

use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use fastrouter_batch_core::limits::{self, Limits as CoreLimits};
use fastrouter_batch_core::translate::{Sampling, SamplingTable};
use fastrouter_batch_core::validate::{self as core_validate, Options, Report};

use crate::args::{self, PathOrBytes};
use crate::errors::{self, Error};
use crate::gate;

/// How many problems a raised `BatchValidationError` lists before "... and N more".
const SHOWN_IN_ERROR: usize = 10;

#[pyclass(module = "fastrouter_batch._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct Limits {
    #[pyo3(get)]
    max_requests: u64,
    #[pyo3(get)]
    max_bytes: u64,
    #[pyo3(get)]
    max_line_bytes: u64,
    #[pyo3(get)]
    max_issues: u64,
}

impl Limits {
    pub fn core(&self) -> CoreLimits {
        CoreLimits {
            max_requests: self.max_requests,
            max_bytes: self.max_bytes,
            max_line_bytes: self.max_line_bytes,
            max_issues: self.max_issues,
        }
    }
}

#[pymethods]
impl Limits {
    #[new]
    #[pyo3(text_signature = "(*, max_requests=50000, max_bytes=200000000, max_line_bytes=8388608, max_issues=100000)")]
    #[pyo3(signature = (*, max_requests=limits::DEFAULT_MAX_REQUESTS, max_bytes=limits::DEFAULT_MAX_BYTES, max_line_bytes=limits::DEFAULT_MAX_LINE_BYTES, max_issues=limits::DEFAULT_MAX_ISSUES))]
    fn new(max_requests: u64, max_bytes: u64, max_line_bytes: u64, max_issues: u64) -> PyResult<Self> {
        for (name, v) in [("max_requests", max_requests), ("max_bytes", max_bytes), ("max_line_bytes", max_line_bytes)]
        {
            if v == 0 {
                return Err(pyo3::exceptions::PyValueError::new_err(format!("Limits: {name} must be at least 1")));
            }
        }
        Ok(Self { max_requests, max_bytes, max_line_bytes, max_issues })
    }

    fn __repr__(&self) -> String {
        format!(
            "Limits(max_requests={}, max_bytes={}, max_line_bytes={}, max_issues={})",
            self.max_requests, self.max_bytes, self.max_line_bytes, self.max_issues
        )
    }
}

#[pyclass(module = "fastrouter_batch._core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct ValidationIssue {
    /// 1-based line number.
    #[pyo3(get)]
    line: u64,
    /// JSON path of the field, e.g. `body.messages[2].role`; None for the whole line.
    #[pyo3(get)]
    path: Option<String>,
    #[pyo3(get)]
    code: &'static str,
    #[pyo3(get)]
    message: String,
}

#[pymethods]
impl ValidationIssue {
    fn __repr__(&self) -> String {
        format!(
            "ValidationIssue(line={}, path={}, code={:?}, message={:?})",
            self.line,
            self.path.as_deref().map_or("None".to_owned(), |p| format!("{p:?}")),
            self.code,
            self.message
        )
    }

    fn __str__(&self) -> String {
        match &self.path {
            Some(p) => format!("line {}: {}: {} [{}]", self.line, p, self.message, self.code),
            None => format!("line {}: {} [{}]", self.line, self.message, self.code),
        }
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("line", self.line)?;
        d.set_item("path", &self.path)?;
        d.set_item("code", self.code)?;
        d.set_item("message", &self.message)?;
        Ok(d)
    }
}

#[pyclass(module = "fastrouter_batch._core", frozen)]
pub struct ValidationReport {
    report: Report,
    issues: OnceLock<Vec<Py<ValidationIssue>>>,
}

impl ValidationReport {
    pub fn new(report: Report) -> Self {
        Self { report, issues: OnceLock::new() }
    }

    fn counts<'py>(py: Python<'py>, map: &std::collections::BTreeMap<String, u64>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in map {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Raises `BatchValidationError` (with `.report`) when the report has problems.
    pub fn raise_if_invalid(slf: &Bound<'_, Self>) -> PyResult<()> {
        let r = &slf.get().report;
        if r.is_ok() {
            return Ok(());
        }
        Err(errors::validation_failed(slf.py(), r.summary(SHOWN_IN_ERROR), slf.clone().into_any().unbind()))
    }
}

#[pymethods]
impl ValidationReport {
    /// True when the file has no problem at all.
    #[getter]
    fn ok(&self) -> bool {
        self.report.is_ok()
    }

    /// The problems in line order (at most `Limits.max_issues`; see `truncated`).
    #[getter]
    fn issues<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = match self.issues.get() {
            Some(items) => items,
            None => {
                let built = self
                    .report
                    .issues
                    .iter()
                    .map(|i| {
                        Py::new(
                            py,
                            ValidationIssue {
                                line: i.line,
                                path: i.path.clone(),
                                code: i.code.as_str(),
                                message: i.message.clone(),
                            },
                        )
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                self.issues.get_or_init(|| built)
            }
        };
        PyList::new(py, items.iter().map(|i| i.clone_ref(py)))
    }

    /// How many problems of each code were found.
    #[getter]
    fn issue_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (code, n) in &self.report.issue_counts {
            d.set_item(code.as_str(), n)?;
        }
        Ok(d)
    }

    #[getter]
    fn total_issues(&self) -> u64 {
        self.report.total_issues()
    }

    #[getter]
    fn truncated(&self) -> bool {
        self.report.truncated()
    }

    #[getter]
    fn num_lines(&self) -> u64 {
        self.report.num_lines
    }

    #[getter]
    fn num_requests(&self) -> u64 {
        self.report.num_requests
    }

    #[getter]
    fn total_bytes(&self) -> u64 {
        self.report.total_bytes
    }

    #[getter]
    fn providers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        Self::counts(py, &self.report.providers)
    }

    #[getter]
    fn models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        Self::counts(py, &self.report.models)
    }

    #[getter]
    fn urls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        Self::counts(py, &self.report.urls)
    }

    /// The file's url (the most common one), or None if no line has one.
    #[getter]
    fn url(&self) -> Option<String> {
        self.report.url.clone()
    }

    /// Raises `BatchValidationError` listing the first problems if there are any.
    fn raise_for_errors(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::raise_if_invalid(slf)
    }

    #[pyo3(signature = (max_issues=SHOWN_IN_ERROR), text_signature = "($self, max_issues=10)")]
    fn summary(&self, max_issues: usize) -> String {
        self.report.summary(max_issues)
    }

    fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let this = slf.get();
        let d = PyDict::new(py);
        d.set_item("ok", this.ok())?;
        let issues = PyList::empty(py);
        for i in this.issues(py)?.iter() {
            issues.append(i.cast::<ValidationIssue>()?.get().to_dict(py)?)?;
        }
        d.set_item("issues", issues)?;
        d.set_item("issue_counts", this.issue_counts(py)?)?;
        d.set_item("total_issues", this.total_issues())?;
        d.set_item("truncated", this.truncated())?;
        d.set_item("num_lines", this.report.num_lines)?;
        d.set_item("num_requests", this.report.num_requests)?;
        d.set_item("total_bytes", this.report.total_bytes)?;
        d.set_item("providers", this.providers(py)?)?;
        d.set_item("models", this.models(py)?)?;
        d.set_item("urls", this.urls(py)?)?;
        d.set_item("url", this.url())?;
        Ok(d)
    }

    fn __str__(&self) -> String {
        self.report.summary(SHOWN_IN_ERROR)
    }

    /// Notebooks' rich display. The HTML is made by `fastrouter_batch._display`, where the
    /// batch's and the results' are too: one stylesheet and one escaping for all three.
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        let display = slf.py().import("fastrouter_batch._display")?;
        display.call_method1("validation_report_html", (slf,))?.extract()
    }

    fn __repr__(&self) -> String {
        let r = &self.report;
        let codes: Vec<String> = r.issue_counts.iter().map(|(c, n)| format!("{c}={n}")).collect();
        format!(
            "ValidationReport(ok={}, requests={}, lines={}, bytes={}, issues={}{})",
            if r.is_ok() { "True" } else { "False" },
            r.num_requests,
            r.num_lines,
            r.total_bytes,
            r.total_issues(),
            if codes.is_empty() { String::new() } else { format!(" [{}]", codes.join(", ")) }
        )
    }
}

pub fn options(limits: Option<&Limits>, providers: Option<Vec<String>>, sampling: SamplingTable) -> Options {
    let mut opts = Options { sampling, ..Options::default() };
    if let Some(l) = limits {
        opts.limits = l.core();
    }
    // `providers=` opens the built-in set (openai, anthropic) to more, as documented: it
    // adds to it, never replaces it.
    for p in providers.into_iter().flatten() {
        if !opts.providers.contains(&p) {
            opts.providers.push(p);
        }
    }
    opts
}

/// `anthropic_sampling={"claude-opus-4-7*": "either", ...}`: the model table, these entries
/// tried first (in order) before the built-in ones.
pub fn sampling_table(value: Option<&Bound<'_, PyAny>>) -> PyResult<SamplingTable> {
    let Some(value) = value.filter(|v| !v.is_none()) else { return Ok(SamplingTable::default()) };
    let bad = || {
        pyo3::exceptions::PyTypeError::new_err(
            "anthropic_sampling must be a mapping of model pattern to 'both', 'either' or 'none'",
        )
    };
    let items = value.call_method0("items").map_err(|_| bad())?;
    let mut entries = Vec::new();
    for item in items.try_iter()? {
        let (pattern, support): (String, String) = item?.extract().map_err(|_| bad())?;
        let Some(s) = Sampling::parse(&support) else {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "anthropic_sampling[{pattern:?}] must be 'both', 'either' or 'none', not {support:?}"
            )));
        };
        entries.push((pattern, s));
    }
    Ok(SamplingTable::with_entries(entries))
}

/// Validates through the gate (GIL released, Ctrl-C honoured); small inputs right here.
pub fn run(py: Python<'_>, source: PathOrBytes, opts: Options) -> errors::Result<ValidationReport> {
    if let Some(report) = run_inline(py, &source, &opts) {
        return Ok(ValidationReport::new(report?));
    }
    let report = gate::run_blocking(py, move |cancel| validate_source(&source, &opts, cancel))?;
    Ok(ValidationReport::new(report?))
}

fn validate_source(source: &PathOrBytes, opts: &Options, cancel: &AtomicBool) -> errors::Result<Report> {
    match source {
        PathOrBytes::Path(p) => {
            core_validate::validate_path(p, opts, cancel).map_err(|e| Error::Validate(e, Some(p.clone())))
        }
        PathOrBytes::Bytes(b) => {
            core_validate::validate_slice(b.as_slice(), opts, cancel).map_err(|e| Error::Validate(e, None))
        }
    }
}

/// An input the core checks on the caller's thread (one block: a millisecond at most) is
/// checked on this one, the GIL released: no trip through the runtime's blocking pool,
/// which costs more than checking a few lines. None for a larger input (or a path that is
/// not a small regular file).
fn run_inline(py: Python<'_>, source: &PathOrBytes, opts: &Options) -> Option<errors::Result<Report>> {
    let size = match source {
        PathOrBytes::Bytes(b) => b.as_slice().len() as u64,
        PathOrBytes::Path(p) => std::fs::metadata(p).ok().filter(|m| m.is_file())?.len(),
    };
    if !core_validate::runs_inline(Some(size), opts) {
        return None;
    }
    Some(py.detach(|| validate_source(source, opts, &AtomicBool::new(false))))
}

/// Checks a batch file against the contract and reports every problem.
#[pyfunction]
#[pyo3(signature = (source, *, limits=None, providers=None, anthropic_sampling=None))]
pub fn validate(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    limits: Option<Bound<'_, Limits>>,
    providers: Option<Vec<String>>,
    anthropic_sampling: Option<&Bound<'_, PyAny>>,
) -> errors::Result<ValidationReport> {
    let Some(source) = args::path_or_bytes(source)? else {
        let name = args::type_name(source);
        return Err(
            PyTypeError::new_err(format!("validate() takes a path (str or os.PathLike) or bytes, not {name}")).into()
        );
    };
    let sampling = sampling_table(anthropic_sampling)?;
    run(py, source, options(limits.as_ref().map(|l| l.get()), providers, sampling))
}
