//! OpenAI chat-completions ⇄ Anthropic Messages, as pure functions (no HTTP).
//!
//! A batch line for an Anthropic model is written in OpenAI's chat format. `to_anthropic`
//! turns its body into a Messages API request, or refuses it naming every parameter it
//! cannot carry faithfully; `chat_completion` turns Anthropic's `message` back into an
//! OpenAI `chat.completion`. The realtime path (`POST /v1/messages`) and the native batch
//! path (`POST /v1/messages/batches` params, `message` results) share them, and the
//! validator reports the same refusals before upload. `params::PARAMS` is the table of
//! every OpenAI parameter and what becomes of it (docs/anthropic-translation.md).

mod content;
mod messages;
pub mod params;
mod reply;
mod request;
pub mod sampling;
mod tools;

pub use reply::{chat_completion, finish_reason, openai_error, refusal_error};
pub use request::{refusals, to_anthropic};
pub use sampling::{Sampling, SamplingTable};
pub use tools::check_tools;

use crate::validate::Code;

/// Something the translation cannot carry faithfully: where (a path like the validator's,
/// `body.messages[2].content[0]`), a stable code, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: String,
    pub code: Code,
    pub message: String,
}

impl Refusal {
    pub fn new(path: impl Into<String>, code: Code, message: impl Into<String>) -> Self {
        Self { path: path.into(), code, message: message.into() }
    }

    /// The path inside the body (`messages[2].content`), for OpenAI's error `param`.
    pub fn param(&self) -> &str {
        self.path.strip_prefix("body.").unwrap_or(&self.path)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} [{}]", self.path, self.message, self.code)
    }
}

/// Refusals collected while translating: the translation goes on after one, so every
/// problem of a body is reported at once.
#[derive(Debug, Default)]
pub struct Refusals(Vec<Refusal>);

impl Refusals {
    pub fn push(&mut self, r: Refusal) {
        self.0.push(r);
    }

    pub fn refuse(&mut self, path: impl Into<String>, code: Code, message: impl Into<String>) {
        self.0.push(Refusal::new(path, code, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<Refusal> {
        self.0
    }
}
