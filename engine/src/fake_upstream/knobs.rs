//! What a test can turn on the fake at run time (`FakeKnobs`), what the fake counts
//! (`FakeCounters`) and what it shows of its batches (`FakeBatch`).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::Secret;

/// Which provider's calls a fault knob hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

/// The fake's run-time settings. The "next K" knobs count down as the fake uses them.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeKnobs {
    /// How far a batch moves each time it is polled (retrieved, or shown on a list page).
    /// 0: polls do not move batches (only `step_interval` does).
    pub steps_per_poll: u32,
    /// Batches also move one step every `step_interval` of wall time, polled or not.
    pub step_interval: Option<Duration>,
    /// Steps a batch spends answering its lines (each answers an equal share of them).
    pub progress_steps: u32,
    /// Batches stop moving once half their lines are answered (until turned off).
    pub stall: bool,
    /// An unfinished batch this old (from its create) expires when next looked at, as
    /// `expire_all` expires it: the completion window, made short.
    pub expire_after: Option<Duration>,
    /// Result files (OpenAI output/error files, Anthropic results) end lines with `\r\n`.
    pub crlf: bool,
    /// A batch create makes its batch, then waits for the reply until this is turned off.
    pub hold_creates: bool,
    /// The next K creates make their batch, then close the connection without an answer.
    pub drop_create_replies: u32,
    /// The Nth create (1-based, counted as `FakeCounters` counts creates, of the providers
    /// `faults_for` selects) makes its batch, then closes the connection without an answer.
    pub drop_create_at: Option<u64>,
    /// The next K creates answer 429 with `retry-after` (no batch is made).
    pub rate_limit_creates: u32,
    /// The next K polls (retrieve or list) answer 429 with `retry-after`.
    pub rate_limit_polls: u32,
    /// The wait a 429 asks for (`retry-after` in whole seconds, rounded up, and `retry-after-ms`).
    pub retry_after: Duration,
    /// Each file uploaded from now on is invisible for its first K reads (`GET /v1/files/{id}`,
    /// its content, or a batch create naming it): 404, or the create's 400 "Cannot find file".
    pub hidden_file_reads: u32,
    /// OpenAI's enqueued-token limit per model: a batch whose prompt tokens, with those of the
    /// model's other unfinished batches, pass it ends `failed` with `token_limit_exceeded`.
    pub enqueued_token_limit: Option<u64>,
    /// An Anthropic batch create whose body is larger answers 413 `request_too_large`.
    pub max_request_bytes: usize,
    /// When set, batch and file calls need exactly this key (`Authorization: Bearer` or
    /// `x-api-key`), and so do realtime calls. Unset: any non-empty key for batch and file
    /// calls, none for realtime calls.
    pub api_key: Option<Secret>,
    /// The fault knobs (drop, rate limits, hold) hit only this provider's calls; `None`: both.
    pub faults_for: Option<Provider>,
}

/// Anthropic's documented batch size limit: 256 MB.
pub const ANTHROPIC_MAX_REQUEST_BYTES: usize = 256 * 1000 * 1000;

impl Default for FakeKnobs {
    fn default() -> Self {
        Self {
            steps_per_poll: 1,
            step_interval: None,
            progress_steps: 2,
            stall: false,
            expire_after: None,
            crlf: false,
            hold_creates: false,
            drop_create_replies: 0,
            drop_create_at: None,
            rate_limit_creates: 0,
            rate_limit_polls: 0,
            retry_after: Duration::from_secs(1),
            hidden_file_reads: 0,
            enqueued_token_limit: None,
            max_request_bytes: ANTHROPIC_MAX_REQUEST_BYTES,
            api_key: None,
            faults_for: None,
        }
    }
}

impl FakeKnobs {
    /// Whether the fault knobs apply to a call of `provider`.
    pub fn faults_hit(&self, provider: Provider) -> bool {
        self.faults_for.is_none_or(|p| p == provider)
    }
}

/// What the fake has been asked, counted since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeCounters {
    /// Batches made (a create whose reply was dropped or held counts; one refused does not).
    pub openai_batch_creates: u64,
    pub anthropic_batch_creates: u64,
    /// `POST /v1/files` calls that stored a file.
    pub file_uploads: u64,
    /// `DELETE /v1/files/{id}` calls that deleted a file.
    pub file_deletes: u64,
    /// `GET /v1/files/{id}/content` calls.
    pub file_downloads: u64,
    /// `GET /v1/files` calls.
    pub file_lists: u64,
    /// Retrieve calls (`GET .../batches/{id}`), 429s included.
    pub openai_polls: u64,
    pub anthropic_polls: u64,
    /// List calls, 429s included.
    pub openai_lists: u64,
    pub anthropic_lists: u64,
    /// Cancel calls.
    pub openai_cancels: u64,
    pub anthropic_cancels: u64,
    /// `GET .../results` calls on Anthropic batches.
    pub anthropic_results: u64,
    /// Realtime calls: `/v1/chat/completions`, `/v1/embeddings`, `/v1/messages`.
    pub chat_calls: u64,
    pub embedding_calls: u64,
    pub messages_calls: u64,
    /// Calls answered 429 by `rate_limit_creates` / `rate_limit_polls`.
    pub rate_limited: u64,
    /// Create replies dropped by `drop_create_replies` / `drop_create_at`.
    pub dropped_replies: u64,
    /// Creates waiting right now on `hold_creates`.
    pub held_creates: u64,
}

impl FakeCounters {
    /// Every counter with its name (the Python binding's dict).
    pub fn fields(&self) -> [(&'static str, u64); 20] {
        [
            ("openai_batch_creates", self.openai_batch_creates),
            ("anthropic_batch_creates", self.anthropic_batch_creates),
            ("file_uploads", self.file_uploads),
            ("file_deletes", self.file_deletes),
            ("file_downloads", self.file_downloads),
            ("file_lists", self.file_lists),
            ("openai_polls", self.openai_polls),
            ("anthropic_polls", self.anthropic_polls),
            ("openai_lists", self.openai_lists),
            ("anthropic_lists", self.anthropic_lists),
            ("openai_cancels", self.openai_cancels),
            ("anthropic_cancels", self.anthropic_cancels),
            ("anthropic_results", self.anthropic_results),
            ("chat_calls", self.chat_calls),
            ("embedding_calls", self.embedding_calls),
            ("messages_calls", self.messages_calls),
            ("rate_limited", self.rate_limited),
            ("dropped_replies", self.dropped_replies),
            ("held_creates", self.held_creates),
            ("realtime_calls", self.chat_calls + self.embedding_calls + self.messages_calls),
        ]
    }
}

/// One batch the fake holds, as a test sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeBatch {
    pub provider: Provider,
    pub id: String,
    /// OpenAI's `status` or Anthropic's `processing_status`.
    pub state: String,
    /// Lines in the batch (0 for an OpenAI batch whose file could not be read).
    pub request_count: usize,
    /// The create's `metadata` (OpenAI; always empty for Anthropic, which has none).
    pub metadata: Map<String, Value>,
    /// OpenAI only.
    pub input_file_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let knobs = FakeKnobs { api_key: Some(Secret::new("sk-fake-secret")), ..FakeKnobs::default() };
        assert!(!format!("{knobs:?}").contains("sk-fake-secret"));
    }
}
