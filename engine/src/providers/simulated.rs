//! The built-in provider: a deterministic reply derived from the request, shaped like
//! the real thing (`chat.completion`, embedding list, usage), with configurable latency
//! and a transient fault rate. Also the answer source of the fake upstream.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Map, Value};

use fastrouter_batch_core::translate::{self, SamplingTable};

use super::{Attempt, LineRequest};
use crate::config::SimulatedConfig;

mod chat;
mod schema;

pub use chat::{answer, anthropic_message, content_text, openai_chat, Ask, ChatAnswer, Choice, Format, Reply};
pub use schema::example as schema_example;

fn digest(value: &impl Hash) -> u64 {
    // DefaultHasher::new() has fixed keys: the same request always gets the same reply.
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Rough token count: about four characters a token, at least one.
fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// The answer to an OpenAI chat body.
pub fn chat_answer(body: &Map<String, Value>) -> ChatAnswer {
    answer(&Ask::from_openai(body))
}

/// A deterministic unit vector for one input text.
fn embed(text: &str, dims: usize) -> Vec<f64> {
    let mut state = digest(&text) | 1;
    let mut v: Vec<f64> = (0..dims)
        .map(|_| {
            // xorshift64: cheap and deterministic.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x = (*x / norm * 1e6).round() / 1e6);
    v
}

/// An OpenAI embedding list for the body's `input` (a string or a list).
pub fn openai_embeddings(body: &Map<String, Value>, default_dims: usize) -> Value {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("unknown");
    let dims = body.get("dimensions").and_then(Value::as_u64).map_or(default_dims, |d| d.clamp(1, 4096) as usize);
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect()
        }
        Some(Value::String(s)) => vec![s.clone()],
        Some(other) => vec![other.to_string()],
        None => vec![],
    };
    let prompt_tokens: u64 = inputs.iter().map(|t| tokens(t)).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embed(t, dims)}))
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
}

/// A transient failure, as a provider would send it.
pub fn fault(retry_after: Duration) -> Attempt {
    if rand::rng().random_bool(0.5) {
        Attempt::Reply {
            status: 429,
            body: json!({"error": {"message": "Simulated rate limit", "type": "rate_limit_error", "param": null, "code": "rate_limited"}}),
            request_id: None,
            retry_after: Some(retry_after),
        }
    } else {
        Attempt::Reply {
            status: 500,
            body: json!({"error": {"message": "Simulated server error", "type": "server_error", "param": null, "code": "server_error"}}),
            request_id: None,
            retry_after: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Simulator {
    pub cfg: SimulatedConfig,
    /// For Anthropic lines, which go through the same translation as upstream.
    pub sampling: SamplingTable,
}

impl Simulator {
    pub async fn attempt(&self, req: &LineRequest) -> Attempt {
        if !self.cfg.latency.is_zero() {
            tokio::time::sleep(self.cfg.latency).await;
        }
        if self.cfg.fault_rate > 0.0 && rand::rng().random::<f64>() < self.cfg.fault_rate {
            return fault(self.cfg.latency.max(Duration::from_millis(5)));
        }
        let body = if req.url == fastrouter_batch_core::model::EMBEDDINGS_URL {
            openai_embeddings(&req.body, self.cfg.embedding_dims)
        } else if req.provider == "anthropic" {
            // Translated there and back, as a real Anthropic line is: offline runs see the
            // same refusals and the same reply shapes.
            match translate::to_anthropic(&req.body, &self.sampling) {
                Ok(request) => {
                    let mut ask = Ask::from_anthropic(&request);
                    ask.model = req.body.get("model").and_then(Value::as_str).unwrap_or("unknown").to_owned();
                    translate::chat_completion(&anthropic_message(&answer(&ask)), &ask.model, crate::ids::now_secs())
                }
                Err(refusals) => return super::anthropic::refused(&refusals),
            }
        } else {
            openai_chat(&chat_answer(&req.body), crate::ids::now_secs())
        };
        Attempt::Reply { status: 200, body, request_id: Some(crate::ids::new_id("req_sim_")), retry_after: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn chat_is_deterministic_and_honours_max_tokens() {
        let b = body(json!({"model": "openai/gpt-4.1-nano", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}]}));
        let a = chat_answer(&b);
        assert_eq!(a, chat_answer(&b));
        assert_eq!(a.text(), Some("Simulated answer from openai/gpt-4.1-nano: What is the capital of France?"));
        assert!(!a.truncated);
        let mut short = b.clone();
        short.insert("max_tokens".into(), json!(3));
        let s = chat_answer(&short);
        assert_eq!(s.text(), Some("Simulated answer from"));
        assert!(s.truncated);
        assert_eq!(openai_chat(&s, 0)["choices"][0]["finish_reason"], "length");
        assert_eq!(anthropic_message(&s)["stop_reason"], "max_tokens");
    }

    #[test]
    fn embeddings_are_unit_vectors_per_input() {
        let e = openai_embeddings(&body(json!({"model": "m", "input": ["a", "b"], "dimensions": 8})), 64);
        let data = e["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        let v: Vec<f64> = data[0]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(v.len(), 8);
        let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    }
}
