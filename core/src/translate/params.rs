//! The table: every OpenAI chat-completions parameter, and what becomes of it on an
//! Anthropic line. The translator dispatches on it, the validator reports the same
//! refusals, and docs/anthropic-translation.md prints it (a test keeps them equal).

/// What happens to a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Sent to Anthropic under its Anthropic name and shape.
    Translated,
    /// Refused by the validator (and the translator) with `unsupported_parameter`, unless
    /// its value is the one that asks for nothing (see `rule`).
    Refused,
    /// Not sent: a hint that does not change what is asked.
    Dropped,
}

impl Fate {
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Translated => "translated",
            Fate::Refused => "refused",
            Fate::Dropped => "dropped",
        }
    }
}

pub struct Param {
    pub name: &'static str,
    pub fate: Fate,
    /// What happens, in a sentence (the docs' third column; refusal messages reuse it).
    pub rule: &'static str,
}

const fn p(name: &'static str, fate: Fate, rule: &'static str) -> Param {
    Param { name, fate, rule }
}

use Fate::{Dropped, Refused, Translated};

/// Sorted by name. `top_k` is not OpenAI's but is accepted for Anthropic lines.
pub const PARAMS: &[Param] = &[
    p("audio", Refused, "audio output: Anthropic answers with text only"),
    p("frequency_penalty", Dropped, "a sampling hint Anthropic has no counterpart for"),
    p("function_call", Refused, "the deprecated functions API: use tools and tool_choice"),
    p("functions", Refused, "the deprecated functions API: use tools and tool_choice"),
    p("logit_bias", Refused, "token biases have no Anthropic counterpart (an empty {} is left out)"),
    p("logprobs", Refused, "Anthropic returns no log probabilities (false is left out)"),
    p("max_completion_tokens", Translated, "becomes max_tokens (refused if max_tokens is also given with another value)"),
    p("max_tokens", Translated, "max_tokens; required (or max_completion_tokens)"),
    p("messages", Translated, "system and developer messages become the top-level system; see the message table"),
    p("metadata", Dropped, "OpenAI's stored-completion tags do not change the answer; Anthropic's metadata carries only user_id (from user)"),
    p("modalities", Refused, "Anthropic answers with text only ([\"text\"] is left out)"),
    p("model", Translated, "the anthropic/ prefix is removed"),
    p("moderation", Refused, "OpenAI's moderation of input and output has no Anthropic counterpart"),
    p("n", Refused, "Anthropic gives one choice per request (n: 1 is left out)"),
    p("parallel_tool_calls", Translated, "false becomes tool_choice.disable_parallel_tool_use: true"),
    p("prediction", Dropped, "a latency hint (predicted output) that does not change the answer"),
    p("presence_penalty", Dropped, "a sampling hint Anthropic has no counterpart for"),
    p("prompt_cache_key", Dropped, "a routing hint for OpenAI's prompt cache"),
    p("prompt_cache_options", Dropped, "OpenAI's prompt-cache settings"),
    p("prompt_cache_retention", Dropped, "OpenAI's prompt-cache settings"),
    p("reasoning_effort", Refused, "no faithful counterpart: Anthropic's extended thinking takes a token budget, per model"),
    p("response_format", Translated, "json_schema becomes output_config.format; text is left out; json_object is refused (Anthropic has no schema-less JSON mode: give a json_schema)"),
    p("safety_identifier", Translated, "becomes metadata.user_id"),
    p("seed", Dropped, "a sampling hint (best-effort determinism) Anthropic has no counterpart for"),
    p("service_tier", Translated, "auto is left out, default becomes standard_only; flex, scale, priority and fast are refused"),
    p("stop", Translated, "becomes stop_sequences (a string becomes a list of one)"),
    p("store", Dropped, "OpenAI-side storage of the completion; does not change the answer"),
    p("stream", Refused, "batch lines cannot stream (false is left out)"),
    p("stream_options", Refused, "batch lines cannot stream"),
    p("temperature", Translated, "sent only to models that take it (the model table); 0 to 1; 1 is Anthropic's default and is left out"),
    p("tool_choice", Translated, "auto, none, required and a named function become auto, none, any and {type: tool, name}; allowed_tools and custom are refused"),
    p("tools", Translated, "function tools become {name, description, input_schema, strict}; custom tools are refused"),
    p("top_k", Translated, "not OpenAI's; sent only to models that take it (the model table)"),
    p("top_logprobs", Refused, "Anthropic returns no log probabilities"),
    p("top_p", Translated, "sent only to models that take it, never with temperature to Claude 4.x; 1 is left out"),
    p("user", Translated, "becomes metadata.user_id (refused if safety_identifier differs)"),
    p("verbosity", Refused, "no Anthropic counterpart"),
    p("web_search_options", Refused, "Anthropic's web search is a server tool with its own settings"),
];

pub fn lookup(name: &str) -> Option<&'static Param> {
    PARAMS.binary_search_by(|p| p.name.cmp(name)).ok().map(|i| &PARAMS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_found() {
        assert!(PARAMS.windows(2).all(|w| w[0].name < w[1].name));
        assert!(PARAMS.iter().all(|p| lookup(p.name).is_some_and(|q| q.name == p.name)));
        assert!(lookup("thinking").is_none());
    }
}
