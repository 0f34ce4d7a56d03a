//! Identifiers and clock readings the engine hands out.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

/// A fresh id such as `file-3f9c...`: the prefix and 24 random hex digits.
pub fn new_id(prefix: &str) -> String {
    let n: u128 = rand::rng().random();
    format!("{prefix}{:024x}", n >> 32)
}

pub const FILE_PREFIX: &str = "file-";
pub const BATCH_PREFIX: &str = "fr_batch-";
pub const REQUEST_PREFIX: &str = "batch_req_";

/// Seconds since the Unix epoch (the wire's timestamps).
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch (deadlines, which tests make short).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
