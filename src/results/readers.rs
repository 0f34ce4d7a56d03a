//! `read_results()` and `read_texts()`: output and error files through the core's reader.
//! Its workers parse blocks of lines with the GIL released; this thread takes each parsed
//! block back in file order and turns its few decoded fields into Python objects at once.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use fastrouter_batch_core::results::{
    Input, Next, ParsedBlock, ReadError, ReaderOptions, ResultReader, DEFAULT_MAX_BYTES, DEFAULT_MAX_LINE,
};

use super::pyclasses::ResultSet;
use super::store::{Data, Filter, Source, Store, StoreBuilder, View};
use crate::args::{self, PathOrBytes};
use crate::errors::{self, Error};
use crate::gate;

impl Source {
    /// A path (str or os.PathLike), opened now, or bytes. `what` names the argument.
    fn from_arg(obj: &Bound<'_, PyAny>, what: &str) -> errors::Result<Self> {
        match args::path_or_bytes(obj)? {
            Some(PathOrBytes::Bytes(b)) => Ok(Self { path: None, data: Data::Bytes(b.to_shared()), cached: false }),
            Some(PathOrBytes::Path(path)) => {
                let file = File::open(&path).map_err(|e| Error::io_at(e, &path))?;
                Ok(Self { path: Some(path), data: Data::File(Arc::new(file)), cached: false })
            }
            None => {
                let name = args::type_name(obj);
                Err(PyTypeError::new_err(format!("{what} must be paths (str or os.PathLike) or bytes, not {name}"))
                    .into())
            }
        }
    }
}

fn sources(items: &Bound<'_, PyAny>, what: &str) -> errors::Result<Vec<Source>> {
    items.try_iter()?.map(|item| Source::from_arg(&item?, what)).collect()
}

/// A reading error, naming its source.
fn read_error(sources: &[Source], error: ReadError, prefix: &'static str) -> Error {
    let label = sources.get(error.source).map(|s| s.label(error.source)).unwrap_or_default();
    Error::Read { error, label, prefix }
}

/// Reads `inputs` to the end, handing each block to `f` (GIL held) as it comes; waits go
/// through the gate (GIL released, Ctrl-C heard: the reader's threads stop with it).
/// Gives the problem that stopped the reading, if one did.
fn drain(
    py: Python<'_>,
    inputs: Vec<Input>,
    opts: ReaderOptions,
    mut f: impl FnMut(&ParsedBlock) -> PyResult<()>,
) -> PyResult<Option<ReadError>> {
    ResultReader::read(inputs, opts, |reader| loop {
        // A block ready is taken at once, the GIL held. Otherwise, without the GIL, this
        // thread parses a block still waiting for a worker, or waits for the next one.
        let next = gate::poll(py, |wait| {
            let next = if !wait.is_zero() && reader.help() { reader.next(Duration::ZERO) } else { reader.next(wait) };
            (!matches!(next, Next::Pending)).then_some(next)
        })?;
        match next {
            Next::Block(b) => {
                f(&b)?;
                reader.recycle(b);
            }
            Next::Pending => {}
            Next::Done => return Ok(None),
            Next::Failed(e) => return Ok(Some(e)),
        }
    })
}

fn inputs(sources: &[Source]) -> Vec<Input> {
    sources.iter().map(Source::input).collect()
}

// The signatures below spell the defaults out (Python's signature shows them, stubtest
// checks them): they are the core's.
const _: () = assert!(DEFAULT_MAX_BYTES == 8589934592 && DEFAULT_MAX_LINE == 67108864);

/// `max_bytes=` and `max_line_bytes=`: where a reader stops (`file_too_large`,
/// `line_too_large`), so an endless or hostile source ends with an error.
fn reader_options(max_bytes: u64, max_line_bytes: u64) -> ReaderOptions {
    let max_line = usize::try_from(max_line_bytes).unwrap_or(usize::MAX);
    ReaderOptions { max_bytes, max_line, ..ReaderOptions::default() }
}

/// Reads every source into a store.
fn read_store(
    py: Python<'_>,
    sources: Vec<Source>,
    owned_dir: Option<PathBuf>,
    opts: ReaderOptions,
) -> errors::Result<Store> {
    let inputs = inputs(&sources);
    let mut builder = StoreBuilder::new(sources, owned_dir)?;
    match drain(py, inputs, opts, |block| builder.add(py, block))? {
        Some(e) => Err(read_error(builder.sources(), e, "")),
        None => Ok(builder.finish()),
    }
}

/// The custom_ids of request files (bytes or opened paths), in order.
fn read_input_ids(py: Python<'_>, sources: Vec<Source>, opts: ReaderOptions) -> errors::Result<Vec<String>> {
    let opts = ReaderOptions { ids_only: true, ..opts };
    let mut ids = vec![];
    let failed = drain(py, inputs(&sources), opts, |block| {
        ids.extend(block.records.iter().map(|r| block.str(r.custom_id).to_owned()));
        Ok(())
    })?;
    match failed {
        Some(e) => Err(read_error(&sources, e, "inputs: ")),
        None => Ok(ids),
    }
}

/// Reads output and error files (paths or bytes) into one `ResultSet`.
///
/// `inputs` gives the order: custom_ids (str) and request files (os.PathLike or bytes),
/// in order. `owned_dir` is a directory removed once the results are garbage collected
/// (where `batches.results()` downloads the files). `cached`: more sources, whose lines
/// came from the result cache (`Result.cached` is True for them). Each file (inputs too) is
/// read up to `max_bytes` bytes and lines of `max_line_bytes`: past them, ValueError naming
/// the file, the line and `file_too_large` / `line_too_large`.
#[pyfunction]
#[pyo3(signature = (sources, *, inputs=None, owned_dir=None, cached=None, max_bytes=8589934592, max_line_bytes=67108864))]
pub fn read_results(
    py: Python<'_>,
    sources: &Bound<'_, PyAny>,
    inputs: Option<&Bound<'_, PyAny>>,
    owned_dir: Option<PathBuf>,
    cached: Option<&Bound<'_, PyAny>>,
    max_bytes: u64,
    max_line_bytes: u64,
) -> errors::Result<ResultSet> {
    let mut list = self::sources(sources, "read_results() sources")?;
    if let Some(cached) = cached {
        list.extend(self::sources(cached, "read_results() cached")?.into_iter().map(|s| Source { cached: true, ..s }));
    }
    let opts = reader_options(max_bytes, max_line_bytes);
    let store = Arc::new(read_store(py, list, owned_dir, opts.clone())?);
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
                    let source = Source::from_arg(&item, "inputs")?;
                    for id in read_input_ids(py, vec![source], opts.clone())? {
                        place(py, &id);
                    }
                }
            }
            // Lines for no input (or a repeated custom_id's earlier lines) come last.
            order.extend((0..store.len as u32).filter(|&i| !used[i as usize]));
            View { order: Some(order), filter: Filter::All, missing: Arc::new(missing) }
        }
    };
    Ok(ResultSet::new(store, view))
}

/// `{custom_id: text}` straight from output and error files (paths or bytes), in file
/// order, None where a line has no text. Nothing else is kept: each parsed block's two
/// strings per line become Python strings at once and the block goes back to the reader,
/// so the peak is the dict itself plus a few blocks in flight. A custom_id seen twice keeps
/// its last line's text (as `BatchResults.texts()`). `max_bytes` and `max_line_bytes` as
/// for `read_results`.
#[pyfunction]
#[pyo3(signature = (sources, *, max_bytes=8589934592, max_line_bytes=67108864))]
pub fn read_texts<'py>(
    py: Python<'py>,
    sources: &Bound<'py, PyAny>,
    max_bytes: u64,
    max_line_bytes: u64,
) -> errors::Result<Bound<'py, PyDict>> {
    let list = self::sources(sources, "read_texts() sources")?;
    let texts = PyDict::new(py);
    let failed = drain(py, inputs(&list), reader_options(max_bytes, max_line_bytes), |block| {
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
