//! A batch's output and error files as one result per request: `read_results()` and
//! `read_texts()` (`readers.rs`), the column store they fill (`store.rs`), and the Python
//! classes over it, `ResultSet` and `Result` (`pyclasses.rs`), and its DataFrame columns
//! (`frame.rs`).

mod frame;
mod pyclasses;
mod readers;
mod store;

pub use pyclasses::{BatchResult, ResultIterator, ResultSet};
pub use readers::{read_results, read_texts};
