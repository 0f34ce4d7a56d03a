//! Reading batch output and error files (the contract's section 4): `line` decodes one result
//! line, `reader` streams whole files through the JSONL pipeline into compact records.

mod line;
mod reader;

pub use line::{parse_line, ErrorInfo, Line, Usage};
pub use reader::{
    read_line_at, Input, Next, ParsedBlock, ReadError, ReaderOptions, Record, ResultReader, Span, BLOCK_SIZE,
    DEFAULT_MAX_BYTES, DEFAULT_MAX_LINE,
};

#[cfg(test)]
pub(crate) mod tests {
    /// A successful chat result line.
    pub fn ok_line(id: &str, content: &str) -> String {
        format!(
            r#"{{"id":"batch_req_1","custom_id":"{id}","response":{{"status_code":200,"request_id":"r","body":{{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4.1-nano","choices":[{{"index":0,"message":{{"role":"assistant","content":{content}}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}}}}},"error":null}}"#
        )
    }
}
