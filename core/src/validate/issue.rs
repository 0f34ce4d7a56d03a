//! What the validator reports: stable codes, one issue per problem.

use std::fmt;

/// A stable, machine-readable problem code. The string forms are part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    InvalidUtf8,
    LineTooLarge,
    InvalidJson,
    NotAnObject,
    MissingField,
    InvalidType,
    InvalidValue,
    DuplicateCustomId,
    CustomIdFormat,
    UnknownProvider,
    ProviderModelMismatch,
    MethodNotPost,
    UnsupportedUrl,
    UrlMismatch,
    UnsupportedEndpoint,
    EmptyMessages,
    InvalidRole,
    MissingMaxTokens,
    EmptyInput,
    TooManyRequests,
    FileTooLarge,
    UnsupportedParameter,
    UnsupportedContent,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidUtf8 => "invalid_utf8",
            Code::LineTooLarge => "line_too_large",
            Code::InvalidJson => "invalid_json",
            Code::NotAnObject => "not_an_object",
            Code::MissingField => "missing_field",
            Code::InvalidType => "invalid_type",
            Code::InvalidValue => "invalid_value",
            Code::DuplicateCustomId => "duplicate_custom_id",
            Code::CustomIdFormat => "custom_id_format",
            Code::UnknownProvider => "unknown_provider",
            Code::ProviderModelMismatch => "provider_model_mismatch",
            Code::MethodNotPost => "method_not_post",
            Code::UnsupportedUrl => "unsupported_url",
            Code::UrlMismatch => "url_mismatch",
            Code::UnsupportedEndpoint => "unsupported_endpoint",
            Code::EmptyMessages => "empty_messages",
            Code::InvalidRole => "invalid_role",
            Code::MissingMaxTokens => "missing_max_tokens",
            Code::EmptyInput => "empty_input",
            Code::TooManyRequests => "too_many_requests",
            Code::FileTooLarge => "file_too_large",
            Code::UnsupportedParameter => "unsupported_parameter",
            Code::UnsupportedContent => "unsupported_content",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem: where (1-based line, JSON path of the field) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub line: u64,
    /// `body.messages[2].role`; `None` when the problem is the whole line or file.
    pub path: Option<String>,
    pub code: Code,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "line {}: {}: {} [{}]", self.line, p, self.message, self.code),
            None => write!(f, "line {}: {} [{}]", self.line, self.message, self.code),
        }
    }
}

/// Quotes a user value for a message, cut short so a 10 MB value cannot flood a report.
pub fn quote(value: &str) -> String {
    const MAX_CHARS: usize = 60;
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{:?}…", head)
    } else {
        format!("{head:?}")
    }
}
