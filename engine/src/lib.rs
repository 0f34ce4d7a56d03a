//! fastrouter-batch's local engine: a FastRouter-compatible Batch API server with durable
//! state (SQLite + files in a data directory) and real provider dispatch. Plain Rust; the
//! `_core` extension starts it inside the Python process, the CLI as a process of its own.

pub mod api;
pub mod auth;
pub mod config;
pub mod fake_upstream;
pub mod ids;
pub mod metrics;
pub mod native;
pub mod providers;
pub mod server;
pub mod store;
pub mod worker;

pub use config::{
    EngineConfig, NativeConfig, ProviderMode, RetryPolicy, Sampling, SamplingTable, Secret, SimulatedConfig, Upstream,
    UpstreamConfig, UpstreamMode,
};
pub use fake_upstream::{FakeBatch, FakeCounters, FakeKnobs, FakeUpstream, Provider as FakeProvider};
pub use server::{Engine, EngineError};
