//! One Anthropic message batch and its life: `in_progress` (every request counted as
//! `processing` until the end, as Anthropic reports them) → `ended`, or `canceling` →
//! `ended` with the unanswered requests `canceled`; an expiry ends it with them `expired`.
//! Each request's `params` is checked only as it runs: a bad one ends as an `errored`
//! result with `invalid_request_error`, never as a refused create.

use serde_json::{json, Map, Value};

use super::answers;
use super::knobs::FakeKnobs;
use super::progress::{next_share, Clock};
use super::wire::{new_id, rfc3339, shuffled_jsonl};

/// One request of a batch: its `custom_id` and `params`.
pub type Request = (String, Map<String, Value>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Canceling,
    Ended,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Canceling => "canceling",
            Status::Ended => "ended",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    succeeded: usize,
    errored: usize,
    canceled: usize,
    expired: usize,
}

#[derive(Debug)]
pub struct AnthropicBatch {
    pub id: String,
    pub created_ms: i64,
    pub status: Status,
    requests: Vec<Request>,
    /// Lines answered so far (in input order), and their result lines.
    done: usize,
    results: Vec<Value>,
    counts: Counts,
    ended_ms: Option<i64>,
    cancel_ms: Option<i64>,
    results_url: Option<String>,
    /// The results JSONL, once ended.
    pub results_body: Option<Vec<u8>>,
    pub clock: Clock,
}

impl AnthropicBatch {
    pub fn new(requests: Vec<Request>) -> Self {
        Self {
            id: new_id("msgbatch_01").chars().take(35).collect(),
            created_ms: crate::ids::now_ms(),
            status: Status::InProgress,
            requests,
            done: 0,
            results: Vec::new(),
            counts: Counts::default(),
            ended_ms: None,
            cancel_ms: None,
            results_url: None,
            results_body: None,
            clock: Clock::new(),
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    fn answer(&mut self, upto: usize) {
        for (custom_id, params) in &self.requests[self.done..upto] {
            let result = match answers::anthropic(params, true) {
                Ok(message) => {
                    self.counts.succeeded += 1;
                    json!({"type": "succeeded", "message": message})
                }
                Err((_, mut envelope)) => {
                    self.counts.errored += 1;
                    envelope["error"]["details"] = Value::Null;
                    json!({"type": "errored", "error": envelope})
                }
            };
            self.results.push(json!({"custom_id": custom_id, "result": result}));
        }
        self.done = upto;
    }

    /// Ends the batch: the requests not answered get `unanswered` (`canceled`/`expired`).
    fn end(&mut self, unanswered: &str, knobs: &FakeKnobs, base_url: &str) {
        for (custom_id, _) in &self.requests[self.done..] {
            self.results.push(json!({"custom_id": custom_id, "result": {"type": unanswered}}));
        }
        let left = self.requests.len() - self.done;
        if unanswered == "canceled" {
            self.counts.canceled += left;
        } else {
            self.counts.expired += left;
        }
        self.done = self.requests.len();
        self.results_body = Some(shuffled_jsonl(std::mem::take(&mut self.results), knobs.crlf));
        self.results_url = Some(format!("{base_url}/v1/messages/batches/{}/results", self.id));
        self.ended_ms = Some(crate::ids::now_ms());
        self.status = Status::Ended;
    }

    fn step(&mut self, knobs: &FakeKnobs, base_url: &str) -> bool {
        match self.status {
            Status::InProgress => match next_share(self.requests.len(), self.done, knobs) {
                None => return false,
                Some(next) => {
                    self.answer(next);
                    if self.done == self.requests.len() {
                        self.end("canceled", knobs, base_url);
                    }
                }
            },
            Status::Canceling => self.end("canceled", knobs, base_url),
            Status::Ended => return false,
        }
        true
    }

    pub fn advance(&mut self, knobs: &FakeKnobs, base_url: &str) {
        if self.clock.expired(knobs) {
            self.expire(knobs, base_url);
        }
        for _ in 0..self.clock.take(knobs) {
            if !self.step(knobs, base_url) {
                break;
            }
        }
    }

    /// Asks for a cancel; false when the batch has already ended.
    pub fn cancel(&mut self) -> bool {
        match self.status {
            Status::Ended => false,
            Status::Canceling => true,
            Status::InProgress => {
                self.status = Status::Canceling;
                self.cancel_ms = Some(crate::ids::now_ms());
                true
            }
        }
    }

    /// The 24 h ran out: unanswered requests end `expired` (a cancel under way still ends
    /// them `canceled`).
    pub fn expire(&mut self, knobs: &FakeKnobs, base_url: &str) {
        match self.status {
            Status::InProgress => self.end("expired", knobs, base_url),
            Status::Canceling => self.end("canceled", knobs, base_url),
            Status::Ended => {}
        }
    }

    pub fn json(&self) -> Value {
        let ended = self.status == Status::Ended;
        let c = &self.counts;
        // Anthropic moves requests out of `processing` only when the whole batch ends.
        let counts = if ended {
            json!({"processing": 0, "succeeded": c.succeeded, "errored": c.errored, "canceled": c.canceled, "expired": c.expired})
        } else {
            json!({"processing": self.requests.len(), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0})
        };
        json!({
            "id": self.id, "type": "message_batch", "processing_status": self.status.as_str(),
            "request_counts": counts, "ended_at": self.ended_ms.map(rfc3339),
            "created_at": rfc3339(self.created_ms), "expires_at": rfc3339(self.created_ms + 86_400_000),
            "archived_at": null, "cancel_initiated_at": self.cancel_ms.map(rfc3339), "results_url": self.results_url,
        })
    }
}
