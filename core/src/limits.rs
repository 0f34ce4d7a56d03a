//! Limits a batch file is checked against. Defaults follow the contract: 50,000 requests
//! per batch and a 200 MB guard (OpenAI's input-file limit; Anthropic's is 256 MB).

/// Size and count limits for one batch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most requests (non-blank lines) in one file.
    pub max_requests: u64,
    /// Most bytes in one file.
    pub max_bytes: u64,
    /// Most bytes in one line; also bounds the validator's memory per line.
    pub max_line_bytes: u64,
    /// Most problems kept in detail; every problem is still counted.
    pub max_issues: u64,
}

pub const DEFAULT_MAX_REQUESTS: u64 = 50_000;
pub const DEFAULT_MAX_BYTES: u64 = 200_000_000;
pub const DEFAULT_MAX_LINE_BYTES: u64 = 8 * 1024 * 1024;
pub const DEFAULT_MAX_ISSUES: u64 = 100_000;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_requests: DEFAULT_MAX_REQUESTS,
            max_bytes: DEFAULT_MAX_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_issues: DEFAULT_MAX_ISSUES,
        }
    }
}
