//! OpenAI-compatible upstreams: the line's body goes to `{base}{url}` with the model's
//! `provider/` prefix removed; the reply comes back as it is.

use std::time::Duration;

use serde_json::Value;

use super::{http, upstream_model, upstream_root, Attempt, LineRequest};
use crate::config::Upstream;

pub fn request_body(req: &LineRequest) -> Value {
    let mut body = req.body.clone();
    if let Some(Value::String(model)) = body.get("model") {
        let bare = upstream_model(model, &req.provider).to_owned();
        body.insert("model".into(), Value::String(bare));
    }
    Value::Object(body)
}

pub async fn attempt(client: &reqwest::Client, up: &Upstream, timeout: Duration, req: &LineRequest) -> Attempt {
    let url = format!("{}{}", upstream_root(&up.base_url), req.url);
    let mut builder = client.post(url);
    if let Some(key) = &up.api_key {
        builder = builder.bearer_auth(key.expose());
    }
    match http::post_json(builder, &request_body(req), timeout).await {
        Ok(r) => {
            Attempt::Reply { status: r.status, body: r.body, request_id: r.request_id, retry_after: r.retry_after }
        }
        Err(a) => a,
    }
}
