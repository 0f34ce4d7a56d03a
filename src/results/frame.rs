//! The columns of a DataFrame of results (`to_pandas()`, `join(df)`), gathered in one pass
//! over the records: text columns as lists of the store's own strings, numbers and booleans
//! as native-endian arrays in bytes (numpy takes them without a Python object per value).
//!
//! `join(df)` asks for the rows in the frame's order, which is not the files' order: each
//! row's record and its text are then somewhere else in memory. The pass reads each record
//! once, having asked for it (and for its text) a few rows ahead, so those cache misses
//! overlap instead of following one another.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::store::{Rec, Store, NO_ERROR, NO_MODEL};

/// Rows ahead whose record is fetched, and (half as far) whose text is.
const AHEAD: usize = 16;

/// `{name: list | None}` for `custom_id` (if asked for), `text`, `model`, `error_code`,
/// `error_message` (`missing` where a row has no value; None for a column without any
/// value), and `{name: (values, missing)}` for `ok`, `cached` (a byte each) and
/// `status_code`, `prompt_tokens`, `completion_tokens` (int64), `missing` a byte per row.
/// `rows`: the records, None for a row without one (every value missing).
pub(super) fn frame_columns<'py>(
    py: Python<'py>,
    store: &Store,
    rows: &[Option<u32>],
    missing: &Py<PyAny>,
    with_custom_id: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let n = rows.len();
    let mut texts: [Vec<Py<PyAny>>; 5] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut present = [0usize; 5];
    let [mut status, mut prompt, mut completion] = [(); 3].map(|_| (Vec::with_capacity(n * 8), vec![1u8; n]));
    let [mut ok, mut cached] = [(); 2].map(|_| (vec![0u8; n], vec![1u8; n]));
    let text_of = |s: &Option<Py<PyString>>| s.as_ref().map(|s| s.clone_ref(py).into_any());
    // The text columns filled: all, or all but custom_id.
    let first = usize::from(!with_custom_id);
    for (row, r) in rows.iter().enumerate() {
        prefetch(store, rows, row);
        let Some(i) = *r else {
            for column in &mut texts[first..] {
                column.push(missing.clone_ref(py));
            }
            for column in [&mut status, &mut prompt, &mut completion] {
                column.0.extend_from_slice(&0i64.to_ne_bytes());
            }
            continue;
        };
        let rec = store.rec(i);
        let error = (rec.error != NO_ERROR).then(|| &store.errors[rec.error as usize]);
        let values = [
            with_custom_id.then(|| rec.custom_id.clone_ref(py).into_any()),
            text_of(&rec.text),
            (rec.model != NO_MODEL).then(|| store.models[rec.model as usize].clone_ref(py).into_any()),
            error.and_then(|(code, _)| text_of(code)),
            error.and_then(|(_, message)| text_of(message)),
        ];
        let filled = texts[first..].iter_mut().zip(&mut present[first..]).zip(values.into_iter().skip(first));
        for ((column, count), value) in filled {
            *count += usize::from(value.is_some());
            column.push(value.unwrap_or_else(|| missing.clone_ref(py)));
        }
        let counts =
            [(rec.status != 0, rec.status.into()), (rec.has_usage, rec.prompt), (rec.has_usage, rec.completion)];
        for (column, (has, value)) in [&mut status, &mut prompt, &mut completion].into_iter().zip(counts) {
            column.0.extend_from_slice(&if has { i64::from(value) } else { 0 }.to_ne_bytes());
            column.1[row] = u8::from(!has);
        }
        for (column, flag) in [(&mut ok, rec.ok), (&mut cached, store.sources[rec.source as usize].cached)] {
            column.0[row] = u8::from(flag);
            column.1[row] = 0;
        }
    }
    let d = PyDict::new(py);
    let names = ["custom_id", "text", "model", "error_code", "error_message"];
    for ((name, column), count) in names.into_iter().zip(texts).zip(present) {
        if name == "custom_id" && !with_custom_id {
            continue;
        }
        if count == 0 {
            d.set_item(name, py.None())?;
        } else {
            d.set_item(name, PyList::new(py, column)?)?;
        }
    }
    let arrays = [("ok", ok), ("status_code", status), ("prompt_tokens", prompt), ("completion_tokens", completion)];
    for (name, (values, missing)) in arrays.into_iter().chain([("cached", cached)]) {
        d.set_item(name, (PyBytes::new(py, &values), PyBytes::new(py, &missing)))?;
    }
    Ok(d)
}

/// Starts loading the record `AHEAD` rows on and the text of the one `AHEAD / 2` on (whose
/// record was asked for earlier), so the loop finds them in cache.
#[inline]
fn prefetch(store: &Store, rows: &[Option<u32>], row: usize) {
    if let Some(Some(i)) = rows.get(row + AHEAD) {
        fetch(store.rec(*i) as *const Rec as *const u8);
    }
    if let Some(Some(i)) = rows.get(row + AHEAD / 2) {
        if let Some(text) = &store.rec(*i).text {
            fetch(text.as_ptr() as *const u8);
        }
    }
}

#[inline(always)]
fn fetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
