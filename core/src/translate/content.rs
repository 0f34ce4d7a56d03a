//! Message contents: OpenAI content parts as Anthropic content blocks.

use serde_json::{json, Value};

use super::Refusals;
use crate::validate::Code;

/// Image types Anthropic reads.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Anthropic rejects text that is empty or only whitespace.
pub fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// `data:<media type>;base64,<data>` split in two.
fn data_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("data:")?.split_once(";base64,")
}

/// A text block, refusing blank text.
fn text_block(text: &str, path: &str, out: &mut Refusals) -> Option<Value> {
    if is_blank(text) {
        out.refuse(path, Code::InvalidValue, "Anthropic rejects empty or whitespace-only text");
        return None;
    }
    Some(json!({"type": "text", "text": text}))
}

/// What a content part may be, by the role of its message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One OpenAI content part as an Anthropic block (refusals go to `out`).
fn part(p: &Value, role: Role, path: &str, out: &mut Refusals) -> Option<Value> {
    let kind = p.get("type").and_then(Value::as_str);
    let str_at = |ptr: &str| p.pointer(ptr).and_then(Value::as_str);
    match (kind, role) {
        (Some("text"), _) => match str_at("/text") {
            Some(t) => text_block(t, &format!("{path}.text"), out),
            None => {
                out.refuse(format!("{path}.text"), Code::InvalidType, "a text part needs its text as a string");
                None
            }
        },
        // An earlier refusal by the assistant, kept as what it said.
        (Some("refusal"), Role::Assistant) => match str_at("/refusal") {
            Some(t) => text_block(t, &format!("{path}.refusal"), out),
            None => {
                out.refuse(
                    format!("{path}.refusal"),
                    Code::InvalidType,
                    "a refusal part needs its refusal as a string",
                );
                None
            }
        },
        (Some("image_url"), Role::User) => image(str_at("/image_url/url"), path, out),
        (Some("file"), Role::User) => document(p.get("file"), path, out),
        (Some("input_audio"), Role::User) => {
            out.refuse(path, Code::UnsupportedContent, "Anthropic takes no audio input");
            None
        }
        (Some(other), _) => {
            let role = if role == Role::User { "user" } else { "assistant" };
            out.refuse(
                format!("{path}.type"),
                Code::UnsupportedContent,
                format!("{other:?} parts in {role} messages have no Anthropic counterpart"),
            );
            None
        }
        (None, _) => {
            out.refuse(format!("{path}.type"), Code::MissingField, "a content part needs its type");
            None
        }
    }
}

fn image(url: Option<&str>, path: &str, out: &mut Refusals) -> Option<Value> {
    let url_path = format!("{path}.image_url.url");
    let Some(url) = url else {
        out.refuse(url_path, Code::MissingField, "an image_url part needs image_url.url");
        return None;
    };
    if let Some((media_type, data)) = data_url(url) {
        if !IMAGE_TYPES.contains(&media_type) {
            out.refuse(
                url_path,
                Code::UnsupportedContent,
                format!("Anthropic reads {} images, not {media_type:?}", IMAGE_TYPES.join(", ")),
            );
            return None;
        }
        return Some(json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Some(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    out.refuse(url_path, Code::UnsupportedContent, "an image must be an http(s) URL or a base64 data: URL");
    None
}

/// A `file` part: PDF data becomes a `document` block; file ids and other types are refused.
fn document(file: Option<&Value>, path: &str, out: &mut Refusals) -> Option<Value> {
    let get = |k: &str| file.and_then(|f| f.get(k)).and_then(Value::as_str);
    if get("file_id").is_some() {
        out.refuse(
            format!("{path}.file.file_id"),
            Code::UnsupportedContent,
            "OpenAI file ids mean nothing to Anthropic: send the PDF as file_data (a base64 data: URL)",
        );
        return None;
    }
    let Some(data) = get("file_data") else {
        out.refuse(format!("{path}.file.file_data"), Code::MissingField, "a file part needs file_data");
        return None;
    };
    let filename = get("filename");
    let pdf = match data_url(data) {
        Some(("application/pdf", d)) => Some(d),
        Some(_) => None,
        // Bare base64: a PDF only if its name says so.
        None if filename.is_some_and(|n| n.to_ascii_lowercase().ends_with(".pdf")) => Some(data),
        None => None,
    };
    let Some(pdf) = pdf else {
        out.refuse(
            format!("{path}.file.file_data"),
            Code::UnsupportedContent,
            "Anthropic documents are PDFs here: send data:application/pdf;base64,...",
        );
        return None;
    };
    let mut block =
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}});
    if let Some(name) = filename {
        block["title"] = json!(name);
    }
    Some(block)
}

/// A user or assistant message's content: a string stays a string, parts become blocks.
/// `None` when nothing is left (refused or empty).
pub fn blocks(content: &Value, role: Role, path: &str, out: &mut Refusals) -> Option<Vec<Value>> {
    match content {
        Value::String(s) => text_block(s, path, out).map(|b| vec![b]),
        Value::Array(parts) => {
            let blocks: Vec<Value> =
                parts.iter().enumerate().filter_map(|(j, p)| part(p, role, &format!("{path}[{j}]"), out)).collect();
            Some(blocks)
        }
        _ => {
            out.refuse(path, Code::InvalidType, "must be a string or a list of content parts");
            None
        }
    }
}

/// The text of a system, developer or tool message: a string, or text parts.
pub fn text_only(content: &Value, path: &str, out: &mut Refusals) -> Option<Vec<String>> {
    match content {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(parts) => Some(
            parts
                .iter()
                .enumerate()
                .filter_map(|(j, p)| {
                    match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                        (Some("text"), Some(t)) => Some(t.to_owned()),
                        _ => {
                            out.refuse(format!("{path}[{j}]"), Code::UnsupportedContent, "only text parts can go here");
                            None
                        }
                    }
                })
                .collect(),
        ),
        _ => {
            out.refuse(path, Code::InvalidType, "must be a string or a list of text parts");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(p: Value) -> (Option<Value>, Vec<String>) {
        let mut out = Refusals::default();
        let b = part(&p, Role::User, "p", &mut out);
        (b, out.into_vec().into_iter().map(|r| format!("{} {}", r.path, r.code)).collect())
    }

    #[test]
    fn images_documents_and_refusals() {
        let (b, _) =
            one(json!({"type": "image_url", "image_url": {"url": "data:image/webp;base64,QUJD", "detail": "low"}}));
        assert_eq!(
            b.unwrap(),
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "QUJD"}})
        );
        let (b, _) = one(json!({"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}));
        assert_eq!(b.unwrap()["source"], json!({"type": "url", "url": "https://x.test/a.png"}));
        assert_eq!(
            one(json!({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}})).1,
            ["p.image_url.url unsupported_content"]
        );
        assert_eq!(
            one(json!({"type": "image_url", "image_url": {"url": "ftp://x"}})).1,
            ["p.image_url.url unsupported_content"]
        );
        let (b, _) = one(
            json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}),
        );
        assert_eq!(
            b.unwrap(),
            json!({"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}})
        );
        let (b, _) = one(json!({"type": "file", "file": {"file_data": "JVBE", "filename": "A.PDF"}}));
        assert_eq!(b.unwrap()["source"]["data"], "JVBE");
        assert_eq!(
            one(json!({"type": "file", "file": {"file_id": "file-1"}})).1,
            ["p.file.file_id unsupported_content"]
        );
        assert_eq!(
            one(json!({"type": "file", "file": {"file_data": "data:text/csv;base64,AA"}})).1,
            ["p.file.file_data unsupported_content"]
        );
        assert_eq!(one(json!({"type": "input_audio", "input_audio": {}})).1, ["p unsupported_content"]);
        assert_eq!(one(json!({"type": "text", "text": " \n"})).1, ["p.text invalid_value"]);
    }
}
