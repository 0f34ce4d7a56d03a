//! The output and error file line formats of the contract.

use serde_json::{json, Value};

use crate::ids::{new_id, REQUEST_PREFIX};
use crate::providers::Outcome;

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
