//! A deterministic JSON value that conforms to a JSON schema: the simulator's tool-call
//! arguments and structured-output answers.
//!
//! Covers what tool and response schemas use: `type` (one or a list), `properties` (every
//! one filled), `items`, `enum`, `const`, `anyOf` / `oneOf` / `allOf`, local `$ref`s
//! (`#/$defs/...`, `#/definitions/...`), string `format`s, `minLength` / `maxLength`,
//! `minimum` / `maximum` (exclusive too) and `minItems` / `maxItems`. Not `pattern`.

use serde_json::{json, Map, Value};

/// Deepest nesting (and `$ref` chain) followed; past it, `null` or the smallest value.
const MAX_DEPTH: u32 = 12;

/// An example of `schema`, the same for the same `seed`.
pub fn example(schema: &Value, seed: u64) -> Value {
    let mut g = Gen { root: schema, state: seed | 1 };
    g.value(schema, "value", 0)
}

struct Gen<'a> {
    root: &'a Value,
    state: u64,
}

impl<'a> Gen<'a> {
    /// xorshift64: cheap and deterministic.
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let root: &'a Value = self.root;
        root.pointer(reference.strip_prefix('#')?)
    }

    fn value(&mut self, schema: &'a Value, name: &str, depth: u32) -> Value {
        let Value::Object(s) = schema else {
            return json!(format!("sample {name}"));
        };
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if let Some(target) = s.get("$ref").and_then(Value::as_str).and_then(|r| self.resolve(r)) {
            return self.value(target, name, depth + 1);
        }
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(Value::Array(options)) = s.get("enum") {
            if !options.is_empty() {
                let i = (self.next() % options.len() as u64) as usize;
                return options[i].clone();
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(options)) = s.get(key) {
                // The first option that is not just null: an answer says something.
                let pick = options.iter().find(|o| o.get("type") != Some(&json!("null"))).or(options.first());
                if let Some(o) = pick {
                    return self.value(o, name, depth + 1);
                }
            }
        }
        if let Some(Value::Array(parts)) = s.get("allOf") {
            let mut merged = Map::new();
            for p in parts {
                if let Value::Object(o) = self.value(p, name, depth + 1) {
                    merged.extend(o);
                }
            }
            return Value::Object(merged);
        }
        let kind = match s.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
            _ if s.contains_key("properties") => "object",
            _ if s.contains_key("items") => "array",
            _ => "string",
        };
        match kind {
            "object" => self.object(s, depth),
            "array" => self.array(s, name, depth),
            "integer" => json!(self.number(s, true) as i64),
            "number" => json!(self.number(s, false)),
            "boolean" => json!(self.next().is_multiple_of(2)),
            "null" => Value::Null,
            _ => json!(self.string(s, name)),
        }
    }

    fn object(&mut self, s: &'a Map<String, Value>, depth: u32) -> Value {
        let mut out = Map::new();
        if let Some(Value::Object(props)) = s.get("properties") {
            for (k, v) in props {
                let value = self.value(v, k, depth + 1);
                out.insert(k.clone(), value);
            }
        }
        Value::Object(out)
    }

    fn array(&mut self, s: &'a Map<String, Value>, name: &str, depth: u32) -> Value {
        let min = s.get("minItems").and_then(Value::as_u64).unwrap_or(1);
        let max = s.get("maxItems").and_then(Value::as_u64).unwrap_or(u64::MAX);
        let n = min.max(2).min(max);
        let items = s.get("items").unwrap_or(&Value::Null);
        let singular = name.strip_suffix('s').unwrap_or(name);
        Value::Array((0..n).map(|_| self.value(items, singular, depth + 1)).collect())
    }

    fn number(&mut self, s: &Map<String, Value>, integer: bool) -> f64 {
        let bound = |k: &str| s.get(k).and_then(Value::as_f64);
        let step = if integer { 1.0 } else { 0.5 };
        let lo = bound("minimum").or(bound("exclusiveMinimum").map(|m| m + step)).unwrap_or(0.0);
        let hi = bound("maximum").or(bound("exclusiveMaximum").map(|m| m - step)).unwrap_or(lo + 100.0).max(lo);
        let span = ((hi - lo) / step).floor() as u64;
        let v = lo + (self.next() % (span + 1)) as f64 * step;
        if integer {
            v.ceil().min(hi.floor())
        } else {
            v
        }
    }

    fn string(&mut self, s: &Map<String, Value>, name: &str) -> String {
        let n = self.next() % 1000;
        let text = match s.get("format").and_then(Value::as_str) {
            Some("date") => format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
            Some("date-time") => format!("2026-{:02}-{:02}T12:00:00Z", 1 + n % 12, 1 + n % 28),
            Some("time") => format!("{:02}:{:02}:00", n % 24, n % 60),
            Some("email") => format!("user{n}@example.com"),
            Some("uri" | "url") => format!("https://example.com/{n}"),
            Some("uuid") => format!("00000000-0000-4000-8000-{:012}", n),
            _ => format!("sample {name} {n}"),
        };
        let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = s.get("maxLength").and_then(Value::as_u64).map_or(usize::MAX, |m| m as usize);
        let mut chars: Vec<char> = text.chars().take(max).collect();
        while chars.len() < min {
            chars.push('x');
        }
        chars.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conforms_to_common_shapes() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 12},
                "unit": {"enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 3},
                "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3},
                "when": {"type": "string", "format": "date"},
                "maybe": {"type": ["null", "boolean"]},
                "kind": {"const": "weather"},
                "place": {"$ref": "#/$defs/place"},
                "either": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 5, "maximum": 5}]},
                "code": {"type": "string", "minLength": 40}
            },
            "required": ["city"],
            "$defs": {"place": {"type": "object", "properties": {"lat": {"type": "number"}}}}
        });
        let v = example(&schema, 42);
        assert_eq!(v, example(&schema, 42));
        assert!(v["city"].as_str().unwrap().len() <= 12);
        assert!(["celsius", "fahrenheit"].contains(&v["unit"].as_str().unwrap()));
        assert!((1..=3).contains(&v["days"].as_i64().unwrap()));
        let score = v["score"].as_f64().unwrap();
        assert!(score > 0.0 && score < 1.0, "{score}");
        assert_eq!(v["tags"].as_array().unwrap().len(), 3);
        assert!(v["tags"][0].is_string());
        assert_eq!(v["when"].as_str().unwrap().len(), 10);
        assert!(v["maybe"].is_boolean());
        assert_eq!(v["kind"], "weather");
        assert!(v["place"]["lat"].is_number());
        assert_eq!(v["either"], 5);
        assert!(v["code"].as_str().unwrap().len() >= 40);
        assert_ne!(example(&schema, 1), example(&schema, 2));
    }

    #[test]
    fn recursive_refs_stop() {
        let schema = json!({"$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}}, "$ref": "#/$defs/node"});
        let v = example(&schema, 7);
        assert!(v.is_object());
    }
}
