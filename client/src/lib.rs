//! The Batch API client: one typed method per operation (`client.files().create(...)`,
//! `client.batches().retrieve(...)`), one place that sends requests, retries what is worth
//! retrying and turns error bodies into typed errors. Uploads stream from disk; downloads
//! stream to disk or line by line. Plain Rust; the `_core` extension wraps it for the sync
//! and asyncio clients.

mod batches;
mod config;
mod download;
mod error;
mod files;
mod multipart;
mod transport;
mod types;

pub use batches::Batches;
pub use config::{ClientConfig, RetryEvent, RetryHook, HOSTED_BASE_URL};
pub use error::{ClientError, StatusError};
pub use files::{Files, Upload};
pub use transport::Client;
pub use types::{
    ApiObject, Batch, CreateBatch, FileDeleted, FileObject, ListParams, Page, ProviderBreakdownList, RequestCounts,
    TERMINAL_STATUSES,
};
