//! `Idempotency-Key` on `POST /v1/batches`: the same key with the same request answers the
//! batch it made; with a different request, 422 `idempotency_key_reused` (as Stripe and the
//! IETF draft do). Requests are compared by a hash of their JSON body in a canonical form
//! (keys sorted, top-level nulls dropped), so spacing and key order do not matter.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::{quote, ApiError, ApiResult};
use crate::store::{BatchRow, Idempotent};

/// Stripe's limit.
const MAX_KEY_CHARS: usize = 255;

/// A request's key and the hash of its body.
pub struct Key {
    pub key: String,
    pub hash: String,
}

/// The request's `Idempotency-Key`, if it sent one (an empty one counts as none).
pub fn key(headers: &HeaderMap, body: &Map<String, Value>) -> ApiResult<Option<Key>> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let bad =
        |why: &str| ApiError::bad_request("invalid_idempotency_key", format!("The Idempotency-Key header {why}."));
    let key = value.to_str().map_err(|_| bad("must be printable ASCII text"))?;
    if key.is_empty() {
        return Ok(None);
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(bad(&format!("'{}' is longer than {MAX_KEY_CHARS} characters", quote(key))));
    }
    Ok(Some(Key { key: key.to_owned(), hash: hash(body) }))
}

fn hash(body: &Map<String, Value>) -> String {
    let mut canonical = String::new();
    let top: Map<String, Value> =
        body.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    write_canonical(&Value::Object(top), &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON with every object's keys in sorted order.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The answer to a key already used: its batch, or the conflict.
pub fn replay(found: Idempotent, key: &str) -> ApiResult<BatchRow> {
    match found {
        Idempotent::Same(row) => Ok(row),
        Idempotent::Different(row) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "idempotency_key_reused",
            format!(
                "The Idempotency-Key '{}' was already used for batch '{}' with different parameters; \
                 send a new key for a different request.",
                quote(key),
                row.id
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::hash;

    fn h(v: serde_json::Value) -> String {
        hash(v.as_object().unwrap())
    }

    #[test]
    fn the_hash_ignores_order_and_nulls_but_not_values() {
        let a = h(json!({"a": "1", "m": {"x": "1", "y": [1, {"b": 2, "a": 1}]}}));
        assert_eq!(a, h(json!({"m": {"y": [1, {"a": 1, "b": 2}], "x": "1"}, "a": "1", "z": null})));
        assert_ne!(a, h(json!({"a": "1", "m": {"x": "1", "y": [{"b": 2, "a": 1}, 1]}})));
        assert_ne!(a, h(json!({"a": "2", "m": {"x": "1", "y": [1, {"b": 2, "a": 1}]}})));
        assert_ne!(h(json!({"a": "1"})), h(json!({"a": "1", "b": "1"})));
    }
}
