//! fastrouter-batch's core: the batch-file model, JSONL reading and writing, and
//! validation. Plain Rust with no Python: the `_core` extension binds it.

pub mod json_scan;
pub mod jsonl;
pub mod limits;
pub mod model;
pub mod results;
pub mod retry;
pub mod secret;
#[cfg(feature = "tls")]
pub mod tls;
pub mod translate;
pub mod validate;

pub use limits::Limits;
pub use model::BatchRequest;
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use validate::{validate_bytes, validate_path, validate_reader, Code, Issue, Options, Report};
