//! Cursor pagination: `?after=<id>&limit=<n>` in, an OpenAI list object out.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ApiResult};
use crate::store::Page;

#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub after: Option<String>,
    pub limit: Option<u32>,
    pub purpose: Option<String>,
}

pub fn params(q: Result<Query<ListParams>, QueryRejection>) -> ApiResult<ListParams> {
    let Query(mut p) =
        q.map_err(|e| ApiError::bad_request("invalid_query", format!("Invalid query: {}", e.body_text())))?;
    // `?after=` (the contract's own template) means "from the start".
    p.after = p.after.filter(|a| !a.is_empty());
    p.purpose = p.purpose.filter(|a| !a.is_empty());
    if let Some(limit) = p.limit {
        if !(1..=100).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be between 1 and 100, got {limit}."),
            )
            .with_param("limit"));
        }
    }
    Ok(p)
}

/// `{"object": "list", "data": [...], "first_id", "last_id", "has_more"}`.
pub fn list<T>(page: Page<T>, id: impl Fn(&T) -> &str, to_json: impl Fn(&T) -> Value) -> Value {
    json!({
        "object": "list",
        "first_id": page.items.first().map(&id),
        "last_id": page.items.last().map(&id),
        "has_more": page.has_more,
        "data": page.items.iter().map(to_json).collect::<Vec<_>>(),
    })
}
