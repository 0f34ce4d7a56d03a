//! The Batch API client: one place that sends requests, retries what is worth retrying,
//! and turns error bodies into typed errors. Uploads stream from disk; downloads stream
//! to disk. Plain Rust; the `_core` extension wraps it for the sync and asyncio clients.

mod error;
mod multipart;
mod transport;

pub use error::ClientError;
pub use transport::{Client, ClientConfig, RetryEvent, RetryHook, Upload, HOSTED_BASE_URL};

/// rustls needs a process-wide crypto provider; ring builds with a C compiler alone.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
