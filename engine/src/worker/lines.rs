//! The output and error file line formats of the contract.

use serde_json::{json, Value};

use crate::ids::{new_id, REQUEST_PREFIX};
use crate::providers::Outcome;
use crate::store::{ResultRow, Usage};

/// What the results writer records for one line's outcome: its output or error-file line,
/// and the provider and tokens it adds to the batch's breakdown.
pub fn result_row(batch_id: &str, provider: &str, line: u64, custom_id: &str, outcome: Outcome) -> ResultRow {
    let usage = match &outcome {
        Outcome::Reply { body, .. } => Usage::of_body(body),
        Outcome::NoReply { .. } => Usage::default(),
    };
    let (ok, data) = result_line(custom_id, outcome);
    ResultRow { batch_id: batch_id.to_owned(), line, ok, data, provider: provider.to_owned(), usage }
}

/// The line for one request's outcome, and whether it belongs in the output file (2xx).
pub fn result_line(custom_id: &str, outcome: Outcome) -> (bool, String) {
    let (ok, line) = match outcome {
        Outcome::Reply { status, body, request_id } => (
            (200..300).contains(&status),
            json!({
                "id": new_id(REQUEST_PREFIX),
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": request_id, "body": body},
                "error": null,
            }),
        ),
        Outcome::NoReply { code, message } => (false, not_run_line(custom_id, code, &message)),
    };
    (ok, line.to_string())
}

/// An error-file line for a request that never got an answer.
pub fn not_run_line(custom_id: &str, code: &str, message: &str) -> Value {
    json!({
        "id": new_id(REQUEST_PREFIX),
        "custom_id": custom_id,
        "response": null,
        "error": {"code": code, "message": message},
    })
}

/// The line for a request that got an answer (`status`, OpenAI-shaped `body`).
pub fn result_line_for(custom_id: &str, status: u16, body: Value, request_id: Option<String>) -> (bool, String) {
    result_line(custom_id, Outcome::Reply { status, body, request_id })
}
