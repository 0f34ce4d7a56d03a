//! The column store behind `ResultSet` and `Result`: what stays per line is a 56-byte
//! record (the custom_id and text as Python strings made as the block arrived, so no Rust
//! copy of the texts outlives its block; the status; the model, an index into the distinct
//! models; the token counts; the error, an index into the distinct errors; and where the
//! line is in its file), kept in chunks; and views over it (an order, a filter). `body` is
//! read back from the file (kept open) and parsed only when asked for.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use fastrouter_batch_core::results::{read_line_at, Input, ParsedBlock};
use fastrouter_batch_core::validate::block::IdHasher;

/// Records are kept in chunks, so a growing store never copies (or doubles) them all.
const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;
pub(super) const NO_MODEL: u16 = u16::MAX;
pub(super) const NO_ERROR: u32 = u32::MAX;
const NO_COUNT: u32 = u32::MAX;

/// One line. 56 bytes: this is what a result costs beyond its two strings.
pub(super) struct Rec {
    pub(super) custom_id: Py<PyString>,
    pub(super) text: Option<Py<PyString>>,
    pub(super) offset: u64,
    pub(super) len: u32,
    pub(super) line: u32,
    pub(super) source: u16,
    /// 0 when the line has no response.
    pub(super) status: u16,
    pub(super) model: u16,
    pub(super) ok: bool,
    pub(super) has_usage: bool,
    pub(super) prompt: u32,
    pub(super) completion: u32,
    pub(super) total: u32,
    pub(super) error: u32,
}

pub(super) enum Data {
    File(Arc<File>),
    Bytes(Arc<[u8]>),
}

pub(super) struct Source {
    /// The path as given (for messages and `Result.file`); None for bytes.
    pub(super) path: Option<PathBuf>,
    pub(super) data: Data,
    /// Lines that came from the result cache, not from a batch run now.
    pub(super) cached: bool,
}

impl Source {
    pub(super) fn label(&self, index: usize) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => format!("<bytes #{}>", index + 1),
        }
    }

    pub(super) fn input(&self) -> Input {
        match &self.data {
            Data::File(f) => Input::File(f.clone()),
            Data::Bytes(b) => Input::Bytes(b.clone()),
        }
    }

    /// The line at `offset`, read back.
    pub(super) fn line(&self, offset: u64, len: u32) -> std::io::Result<Vec<u8>> {
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
pub(super) type ErrorPair = (Option<Py<PyString>>, Option<Py<PyString>>);

pub(super) struct Index {
    hasher: IdHasher,
    /// The id's 128-bit fingerprint → the last record with it. Two ids with one
    /// fingerprint are never seen (~n²/2¹²⁹, with seeds fresh per store, as the
    /// validator's duplicate check): a lookup is one probe, without reading the record
    /// back (which would be two more cache misses per lookup on a large store).
    map: HashMap<u128, u32, BuildHasherDefault<PreHashed>>,
}

/// A `Hasher` for keys that are already well-mixed hashes: it keeps their low 64 bits.
#[derive(Default)]
pub(super) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used (by `u128`'s Hash); anything else still hashes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// Everything read: the records and what they point into.
pub(super) struct Store {
    pub(super) chunks: Vec<Vec<Rec>>,
    pub(super) len: usize,
    pub(super) models: Vec<Py<PyString>>,
    /// Distinct (code, message) pairs.
    pub(super) errors: Vec<ErrorPair>,
    pub(super) sources: Vec<Source>,
    pub(super) index: OnceLock<Index>,
    /// A directory of downloaded files, removed with the store.
    pub(super) owned_dir: Option<PathBuf>,
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
    pub(super) fn rec(&self, i: u32) -> &Rec {
        &self.chunks[(i >> CHUNK_BITS) as usize][i as usize & (CHUNK - 1)]
    }

    fn index(&self, py: Python<'_>) -> &Index {
        self.index.get_or_init(|| {
            let hasher = IdHasher::new();
            let mut map = HashMap::with_capacity_and_hasher(self.len, BuildHasherDefault::default());
            for i in 0..self.len as u32 {
                if let Ok(id) = self.rec(i).custom_id.bind(py).to_str() {
                    map.insert(hasher.hash(id), i);
                }
            }
            Index { hasher, map }
        })
    }

    /// The last record with this custom_id.
    pub(super) fn find(&self, py: Python<'_>, id: &str) -> Option<u32> {
        let index = self.index(py);
        index.map.get(&index.hasher.hash(id)).copied()
    }
}

/// Fills a store with parsed blocks, in file order.
pub(super) struct StoreBuilder {
    store: Store,
    /// Model name → index in `store.models`, and the last one seen (consecutive lines
    /// mostly name the same model).
    models: HashMap<String, u16>,
    last_model: Option<(String, u16)>,
    /// (code, message) → index in `store.errors`.
    errors: HashMap<(Option<String>, Option<String>), u32>,
}

fn count(n: u64) -> u32 {
    n.min(u64::from(NO_COUNT - 1)) as u32
}

impl StoreBuilder {
    pub(super) fn new(sources: Vec<Source>, owned_dir: Option<PathBuf>) -> PyResult<Self> {
        if sources.len() >= usize::from(u16::MAX) {
            return Err(PyValueError::new_err("read_results: too many files (at most 65534)"));
        }
        let store = Store {
            chunks: vec![],
            len: 0,
            models: vec![],
            errors: vec![],
            sources,
            index: OnceLock::new(),
            owned_dir,
        };
        Ok(Self { store, models: HashMap::new(), last_model: None, errors: HashMap::new() })
    }

    pub(super) fn sources(&self) -> &[Source] {
        &self.store.sources
    }

    /// Appends a block's records, making their strings Python strings now.
    pub(super) fn add(&mut self, py: Python<'_>, block: &ParsedBlock) -> PyResult<()> {
        for r in &block.records {
            if self.store.len >= (NO_ERROR - 1) as usize {
                return Err(PyValueError::new_err("read_results: too many lines (at most 4,294,967,294)"));
            }
            let model = match r.model {
                None => NO_MODEL,
                Some(span) => self.model(py, block.str(span)),
            };
            let error = match r.error {
                None => NO_ERROR,
                Some((code, message)) => {
                    let key = (code.map(|c| block.str(c).to_owned()), message.map(|m| block.str(m).to_owned()));
                    let errs = &mut self.store.errors;
                    *self.errors.entry(key).or_insert_with_key(|(c, m)| {
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
            let chunks = &mut self.store.chunks;
            match chunks.last_mut() {
                Some(c) if c.len() < CHUNK => c.push(rec),
                _ => {
                    let mut c = Vec::with_capacity(CHUNK);
                    c.push(rec);
                    chunks.push(c);
                }
            }
            self.store.len += 1;
        }
        Ok(())
    }

    /// The index of a model name (NO_MODEL past 65,535 distinct ones).
    fn model(&mut self, py: Python<'_>, name: &str) -> u16 {
        if let Some((last, m)) = &self.last_model {
            if last == name {
                return *m;
            }
        }
        let list = &mut self.store.models;
        let m = match self.models.get(name) {
            Some(&m) => m,
            None if list.len() < usize::from(NO_MODEL) => {
                let m = list.len() as u16;
                list.push(PyString::new(py, name).unbind());
                self.models.insert(name.to_owned(), m);
                m
            }
            None => NO_MODEL,
        };
        self.last_model = Some((name.to_owned(), m));
        m
    }

    pub(super) fn finish(self) -> Store {
        self.store
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    All,
    Ok,
    Failed,
}

/// Which records a `ResultSet` holds, in which order.
pub(super) struct View {
    /// None: every record, in file order.
    pub(super) order: Option<Vec<u32>>,
    pub(super) filter: Filter,
    /// Input custom_ids with no result.
    pub(super) missing: Arc<Vec<String>>,
}

impl View {
    pub(super) fn len(&self, store: &Store) -> usize {
        self.order.as_ref().map_or(store.len, Vec::len)
    }

    #[inline]
    pub(super) fn at(&self, pos: usize) -> u32 {
        self.order.as_ref().map_or(pos as u32, |o| o[pos])
    }

    pub(super) fn admits(&self, store: &Store, i: u32) -> bool {
        match self.filter {
            Filter::All => true,
            Filter::Ok => store.rec(i).ok,
            Filter::Failed => !store.rec(i).ok,
        }
    }
}
