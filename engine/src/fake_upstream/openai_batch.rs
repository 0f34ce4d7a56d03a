//! One OpenAI batch and its life: `validating` → `in_progress` (request counts growing) →
//! `finalizing` → `completed`, or `failed` with `errors.data` when the input file breaks
//! a rule, `cancelling` → `cancelled` and `expired` with partial results.
//!
//! The file is checked when the batch is made but the verdict shows only at the first
//! step, as OpenAI does. Codes: `empty_file`, `too_many_tasks`, `invalid_json_line`,
//! `url_mismatch`, `duplicate_custom_id`, `model_mismatch`, `token_limit_exceeded` (from
//! OpenAI's reports), and for a line that parses but lacks a field or has a wrong value
//! `missing_required_parameter` / `invalid_value` (inferred: OpenAI documents no code).
//!
//! Lines a cancel stopped before they ran appear in neither file (OpenAI documents no
//! error-file code for them); lines an expiry stopped are `batch_expired` error lines and
//! count as failed.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::answers;
use super::knobs::FakeKnobs;
use super::progress::{next_share, Clock};
use super::state::{Files, StoredFile, FILE_LIFETIME_SECS};
use super::wire::{new_id, shuffled_jsonl};

/// OpenAI's per-batch request limit.
pub const MAX_TASKS: usize = 50_000;
/// The batch's 24 h completion window.
const WINDOW_SECS: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Validating,
    Failed,
    InProgress,
    Finalizing,
    Completed,
    Expired,
    Cancelling,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Validating => "validating",
            Status::Failed => "failed",
            Status::InProgress => "in_progress",
            Status::Finalizing => "finalizing",
            Status::Completed => "completed",
            Status::Expired => "expired",
            Status::Cancelling => "cancelling",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Failed | Status::Completed | Status::Expired | Status::Cancelled)
    }
}

/// A line of the input file that passed the checks.
#[derive(Debug)]
pub struct Line {
    pub custom_id: String,
    pub body: Map<String, Value>,
}

/// What the input file's checks found: its lines and model, or `errors.data`.
#[derive(Debug)]
pub enum Verdict {
    Valid { lines: Vec<Line>, model: String, tokens: u64 },
    Invalid(Vec<Value>),
}

fn error(code: &str, message: String, param: Option<&str>, line: Option<usize>) -> Value {
    json!({"code": code, "message": message, "param": param, "line": line})
}

/// About four characters a token, as the simulator counts.
fn prompt_tokens(body: &Map<String, Value>) -> u64 {
    let text = serde_json::to_string(body.get("messages").or(body.get("input")).unwrap_or(&Value::Null));
    (text.map_or(0, |t| t.chars().count()) as u64).div_ceil(4).max(1)
}

/// Checks an input file against the batch's endpoint.
pub fn check_file(bytes: &[u8], endpoint: &str) -> Verdict {
    let text = String::from_utf8_lossy(bytes);
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut model: Option<String> = None;
    let mut tasks = 0usize;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(raw) else {
            errors.push(error("invalid_json_line", "This line is not parseable as valid JSON.".into(), None, Some(n)));
            continue;
        };
        let Value::Object(mut obj) = value else {
            errors.push(error("invalid_json_line", "This line is not a JSON object.".into(), None, Some(n)));
            continue;
        };
        let missing = ["custom_id", "method", "url", "body"].into_iter().find(|k| !obj.contains_key(*k));
        if let Some(field) = missing {
            let message = format!("Missing required parameter: '{field}'.");
            errors.push(error("missing_required_parameter", message, Some(field), Some(n)));
            continue;
        }
        let (Some(custom_id), Some(method), Some(url), Some(Value::Object(body))) = (
            obj.get("custom_id").and_then(Value::as_str).map(str::to_owned),
            obj.get("method").and_then(Value::as_str).map(str::to_owned),
            obj.get("url").and_then(Value::as_str).map(str::to_owned),
            obj.remove("body"),
        ) else {
            let message = "custom_id, method and url must be strings and body an object.".to_owned();
            errors.push(error("invalid_value", message, None, Some(n)));
            continue;
        };
        if method != "POST" {
            let message = format!("Invalid method '{method}': only POST is supported.");
            errors.push(error("invalid_value", message, Some("method"), Some(n)));
        }
        if url != endpoint {
            let message = format!(
                "The URL provided for this request does not match the batch endpoint: '{url}' is not '{endpoint}'."
            );
            errors.push(error("url_mismatch", message, Some("url"), Some(n)));
        }
        if let Some(first) = seen.insert(custom_id.clone(), n) {
            let message = format!("The custom_id '{custom_id}' is a duplicate of line {first}'s.");
            errors.push(error("duplicate_custom_id", message, Some("custom_id"), Some(n)));
        }
        match (body.get("model").and_then(Value::as_str), &model) {
            (None, _) => {
                let message = "Missing required parameter: 'body.model'.".to_owned();
                errors.push(error("missing_required_parameter", message, Some("body.model"), Some(n)));
            }
            (Some(m), Some(first)) if m != first => {
                let message = format!("The model '{m}' differs from the file's model '{first}'. Each input file can only include requests to a single model.");
                errors.push(error("model_mismatch", message, Some("body.model"), Some(n)));
            }
            (Some(m), _) => model = Some(m.to_owned()),
        }
        // An embeddings batch counts each input (50,000 in all), others each line.
        tasks += match body.get("input") {
            Some(Value::Array(items)) if endpoint == "/v1/embeddings" => items.len(),
            _ => 1,
        };
        lines.push(Line { custom_id, body });
    }
    if lines.is_empty() && errors.is_empty() {
        errors.push(error("empty_file", "The input file is empty.".into(), None, None));
    }
    if tasks > MAX_TASKS {
        let message = format!("The batch has {tasks} requests; at most {MAX_TASKS} are allowed.");
        errors.push(error("too_many_tasks", message, None, None));
    }
    if !errors.is_empty() {
        return Verdict::Invalid(errors);
    }
    let tokens = lines.iter().map(|l| prompt_tokens(&l.body)).sum();
    Verdict::Valid { lines, model: model.unwrap_or_default(), tokens }
}

#[derive(Debug)]
pub struct OpenAiBatch {
    pub id: String,
    pub endpoint: String,
    pub input_file_id: String,
    pub metadata: Option<Map<String, Value>>,
    pub created_at: i64,
    pub status: Status,
    verdict: Verdict,
    embedding_dims: usize,
    /// Lines answered so far (in input order).
    done: usize,
    output: Vec<Value>,
    errors: Vec<Value>,
    usage: (u64, u64),
    /// Request counts: lines answered 2xx, and lines failed (non-2xx or expired).
    completed: usize,
    failed: usize,
    /// When each status was entered.
    entered: HashMap<&'static str, i64>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    pub clock: Clock,
    /// `output_expires_after.seconds` of the create: the result files' lifetime.
    pub output_lifetime: Option<i64>,
}

impl OpenAiBatch {
    pub fn new(
        endpoint: String,
        input_file_id: String,
        metadata: Option<Map<String, Value>>,
        verdict: Verdict,
        embedding_dims: usize,
    ) -> Self {
        Self {
            id: new_id("batch_"),
            endpoint,
            input_file_id,
            metadata,
            created_at: crate::ids::now_secs(),
            status: Status::Validating,
            verdict,
            embedding_dims,
            done: 0,
            output: Vec::new(),
            errors: Vec::new(),
            usage: (0, 0),
            completed: 0,
            failed: 0,
            entered: HashMap::new(),
            output_file_id: None,
            error_file_id: None,
            clock: Clock::new(),
            output_lifetime: None,
        }
    }

    /// The model whose queue this batch takes tokens from, and how many, while unfinished.
    pub fn enqueued(&self) -> Option<(&str, u64)> {
        match &self.verdict {
            Verdict::Valid { model, tokens, .. } if !self.status.is_terminal() => Some((model, *tokens)),
            _ => None,
        }
    }

    /// Fails the batch at validation with `token_limit_exceeded` (decided at create time,
    /// against the queue then).
    pub fn over_token_limit(&mut self, limit: u64) {
        if let Verdict::Valid { model, .. } = &self.verdict {
            let message = format!("Enqueued token limit reached for {model} in organization org-fake. Limit: {limit} enqueued tokens. Please try again once some in_progress batches have been completed.");
            self.verdict = Verdict::Invalid(vec![error("token_limit_exceeded", message, None, None)]);
        }
    }

    pub fn request_count(&self) -> usize {
        match &self.verdict {
            Verdict::Valid { lines, .. } => lines.len(),
            Verdict::Invalid(_) => 0,
        }
    }

    fn enter(&mut self, status: Status) {
        self.status = status;
        let key = match status {
            Status::Validating => return,
            Status::Failed => "failed_at",
            Status::InProgress => "in_progress_at",
            Status::Finalizing => "finalizing_at",
            Status::Completed => "completed_at",
            Status::Expired => "expired_at",
            Status::Cancelling => "cancelling_at",
            Status::Cancelled => "cancelled_at",
        };
        self.entered.insert(key, crate::ids::now_secs());
    }

    /// Answers lines up to `upto`.
    fn answer(&mut self, upto: usize) {
        let Verdict::Valid { lines, .. } = &self.verdict else { return };
        for line in &lines[self.done..upto] {
            let (status, body) = answers::openai(&self.endpoint, &line.body, self.embedding_dims);
            if status == 200 {
                let usage = &body["usage"];
                self.usage.0 += usage["prompt_tokens"].as_u64().unwrap_or(0);
                self.usage.1 += usage["completion_tokens"].as_u64().unwrap_or(0);
            }
            let out = json!({
                "id": new_id("batch_req_"), "custom_id": line.custom_id,
                "response": {"status_code": status, "request_id": new_id("req_"), "body": body}, "error": null,
            });
            if status == 200 {
                self.completed += 1;
                self.output.push(out);
            } else {
                self.failed += 1;
                self.errors.push(out);
            }
        }
        self.done = upto;
    }

    /// Writes the output and error files (each only when it has a line).
    fn write_files(&mut self, files: &mut Files, knobs: &FakeKnobs) {
        for (lines, suffix) in
            [(std::mem::take(&mut self.output), "output"), (std::mem::take(&mut self.errors), "error")]
        {
            if lines.is_empty() {
                continue;
            }
            let name = format!("{}_{suffix}.jsonl", self.id);
            let bytes = shuffled_jsonl(lines, knobs.crlf);
            let lifetime = self.output_lifetime.unwrap_or(FILE_LIFETIME_SECS);
            let id = files.add(StoredFile::new(name, "batch_output", bytes, Some(lifetime)));
            if suffix == "output" {
                self.output_file_id = Some(id);
            } else {
                self.error_file_id = Some(id);
            }
        }
    }

    /// One step of the batch's life; false when it cannot move (terminal, or stalled).
    fn step(&mut self, knobs: &FakeKnobs, files: &mut Files) -> bool {
        match self.status {
            Status::Validating => match &self.verdict {
                Verdict::Invalid(_) => self.enter(Status::Failed),
                Verdict::Valid { .. } => self.enter(Status::InProgress),
            },
            Status::InProgress => {
                let total = self.request_count();
                match next_share(total, self.done, knobs) {
                    None => return false,
                    Some(next) if next > self.done => self.answer(next),
                    Some(_) => self.enter(Status::Finalizing),
                }
            }
            Status::Finalizing => {
                self.write_files(files, knobs);
                self.enter(Status::Completed);
            }
            Status::Cancelling => {
                self.write_files(files, knobs);
                self.enter(Status::Cancelled);
            }
            _ => return false,
        }
        true
    }

    /// Takes the steps the clock owes.
    pub fn advance(&mut self, knobs: &FakeKnobs, files: &mut Files) {
        if self.clock.expired(knobs) {
            self.expire(knobs, files);
        }
        for _ in 0..self.clock.take(knobs) {
            if !self.step(knobs, files) {
                break;
            }
        }
    }

    /// Asks for a cancel; Err(status) when the batch has already ended.
    pub fn cancel(&mut self) -> Result<(), Status> {
        match self.status {
            s if s.is_terminal() => Err(s),
            Status::Cancelling => Ok(()),
            _ => {
                self.enter(Status::Cancelling);
                Ok(())
            }
        }
    }

    /// The completion window ran out: lines not yet answered become `batch_expired` error
    /// lines, answered ones stay. A batch finishing (finalizing) or being cancelled is left
    /// to finish; a batch still validating an invalid file just expires.
    pub fn expire(&mut self, knobs: &FakeKnobs, files: &mut Files) {
        if !matches!(self.status, Status::Validating | Status::InProgress) {
            return;
        }
        if let Verdict::Valid { lines, .. } = &self.verdict {
            for line in &lines[self.done..] {
                self.failed += 1;
                self.errors.push(json!({
                    "id": new_id("batch_req_"), "custom_id": line.custom_id, "response": null,
                    "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."},
                }));
            }
        }
        self.write_files(files, knobs);
        self.enter(Status::Expired);
    }

    pub fn json(&self) -> Value {
        // The total is known once the file has been validated.
        let total = if matches!(self.status, Status::Validating | Status::Failed) { 0 } else { self.request_count() };
        let errors = match (&self.verdict, self.status) {
            (Verdict::Invalid(data), Status::Failed) => json!({"object": "list", "data": data}),
            _ => Value::Null,
        };
        let model = match &self.verdict {
            Verdict::Valid { model, .. } if self.status != Status::Validating => json!(model),
            _ => Value::Null,
        };
        let at = |k: &str| self.entered.get(k).copied();
        json!({
            "id": self.id, "object": "batch", "endpoint": self.endpoint, "model": model, "errors": errors,
            "input_file_id": self.input_file_id, "completion_window": "24h", "status": self.status.as_str(),
            "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
            "created_at": self.created_at, "in_progress_at": at("in_progress_at"),
            "expires_at": self.created_at + WINDOW_SECS, "finalizing_at": at("finalizing_at"),
            "completed_at": at("completed_at"), "failed_at": at("failed_at"), "expired_at": at("expired_at"),
            "cancelling_at": at("cancelling_at"), "cancelled_at": at("cancelled_at"),
            "request_counts": {"total": total, "completed": self.completed, "failed": self.failed},
            "usage": {
                "input_tokens": self.usage.0, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.usage.1, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.usage.0 + self.usage.1,
            },
            "metadata": self.metadata,
        })
    }
}
