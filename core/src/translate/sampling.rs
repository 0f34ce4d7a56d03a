//! Which Anthropic models take `temperature`, `top_p` and `top_k`, and what a line's
//! sampling parameters become for its model.
//!
//! In 2026 the Messages API deprecates them: models newer than claude-opus-4-6 answer 400
//! to any of them, Claude 4.x models answer 400 to `temperature` and `top_p` together, and
//! older models take all three. A batch must not fail line by line on this, so the table
//! below decides before upload: the validator refuses what the model would refuse, and
//! the translator never sends what the model does not take. Unknown models get the safe
//! default, `None`; users extend the table (their entries are tried first).

use std::fmt;

use super::{Refusal, Refusals};
use crate::validate::Code;

/// What a model accepts among `temperature`, `top_p` and `top_k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// All three, together (Claude 3 and older).
    Both,
    /// `temperature` or `top_p`, not both; `top_k` too (Claude 4.x up to claude-opus-4-6).
    Either,
    /// None of them (newer models, and the default for models not in the table).
    None,
}

impl Sampling {
    pub fn as_str(self) -> &'static str {
        match self {
            Sampling::Both => "both",
            Sampling::Either => "either",
            Sampling::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "both" => Some(Sampling::Both),
            "either" => Some(Sampling::Either),
            "none" => Some(Sampling::None),
            _ => None,
        }
    }
}

impl fmt::Display for Sampling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The built-in table: (model pattern, what it takes), first match wins. Patterns are
/// matched against the model name without its `anthropic/` prefix, lower-cased, with `.`
/// read as `-` (so FastRouter's `claude-4.5-sonnet` and Anthropic's `claude-sonnet-4-5`
/// both match); `*` matches any run of characters.
pub const BUILTIN: &[(&str, Sampling)] = &[
    // Claude 4.x up to claude-opus-4-6, in Anthropic's naming...
    ("claude-opus-4", Sampling::Either),
    ("claude-opus-4-0*", Sampling::Either),
    ("claude-opus-4-1*", Sampling::Either),
    ("claude-opus-4-5*", Sampling::Either),
    ("claude-opus-4-6*", Sampling::Either),
    ("claude-opus-4-2025*", Sampling::Either),
    ("claude-sonnet-4", Sampling::Either),
    ("claude-sonnet-4-0*", Sampling::Either),
    ("claude-sonnet-4-5*", Sampling::Either),
    ("claude-sonnet-4-6*", Sampling::Either),
    ("claude-sonnet-4-2025*", Sampling::Either),
    ("claude-haiku-4-5*", Sampling::Either),
    // ... and in FastRouter's (`anthropic/claude-4.5-sonnet`).
    ("claude-4-opus*", Sampling::Either),
    ("claude-4-sonnet*", Sampling::Either),
    ("claude-4-1-opus*", Sampling::Either),
    ("claude-4-5-*", Sampling::Either),
    ("claude-4-6-*", Sampling::Either),
    // Claude 3 and older.
    ("claude-3*", Sampling::Both),
    ("claude-2*", Sampling::Both),
    ("claude-instant*", Sampling::Both),
];

/// The model table: the user's entries first, then the built-in ones.
#[derive(Debug, Clone)]
pub struct SamplingTable {
    entries: Vec<(String, Sampling)>,
    /// Tells tables apart in the per-thread lookup cache (clones share it: same entries).
    id: u64,
}

impl PartialEq for SamplingTable {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for SamplingTable {}

impl Default for SamplingTable {
    fn default() -> Self {
        Self::new(BUILTIN.iter().map(|(p, s)| (normalize(p), *s)).collect())
    }
}

/// The last few (table, model) → entry lookups of this thread: a batch file names a
/// handful of models, so most lines find theirs here.
struct Recent {
    slots: [(u64, String, Option<usize>); 4],
    next: usize,
}

thread_local! {
    static RECENT: std::cell::RefCell<Recent> = std::cell::RefCell::new(Recent {
        slots: std::array::from_fn(|_| (0, String::new(), None)),
        next: 0,
    });
}

impl SamplingTable {
    /// The built-in table with `extra` entries tried first, in their order.
    pub fn with_entries<I, S>(extra: I) -> Self
    where
        I: IntoIterator<Item = (S, Sampling)>,
        S: AsRef<str>,
    {
        let mut entries: Vec<(String, Sampling)> = extra.into_iter().map(|(p, s)| (normalize(p.as_ref()), s)).collect();
        entries.extend(Self::default().entries);
        Self::new(entries)
    }

    fn new(entries: Vec<(String, Sampling)>) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self { entries, id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed) }
    }

    /// What `model` takes (`anthropic/` prefix or not), and the pattern that said so
    /// (`None`: no entry matched, the safe default). The validator asks once per line:
    /// recent answers are kept per thread, and a miss allocates nothing for names up to
    /// 128 bytes but the cached name.
    pub fn lookup(&self, model: &str) -> (Sampling, Option<&str>) {
        let cached = RECENT
            .with(|r| r.borrow().slots.iter().find(|(id, m, _)| *id == self.id && m == model).map(|(_, _, e)| *e));
        let entry = cached.unwrap_or_else(|| {
            let e = self.find(model);
            RECENT.with(|r| {
                let mut r = r.borrow_mut();
                let slot = r.next;
                r.slots[slot] = (self.id, model.to_owned(), e);
                r.next = (slot + 1) % 4;
            });
            e
        });
        entry.map_or((Sampling::None, None), |i| (self.entries[i].1, Some(self.entries[i].0.as_str())))
    }

    /// The index of the first entry matching `model`.
    fn find(&self, model: &str) -> Option<usize> {
        let bare = model.strip_prefix("anthropic/").unwrap_or(model).as_bytes();
        let mut buf = [0u8; 128];
        let owned;
        let name: &[u8] = if bare.len() <= buf.len() {
            for (d, &b) in buf.iter_mut().zip(bare) {
                *d = normal(b);
            }
            &buf[..bare.len()]
        } else {
            owned = bare.iter().map(|&b| normal(b)).collect::<Vec<u8>>();
            &owned
        };
        self.entries.iter().position(|(p, _)| glob(p.as_bytes(), name))
    }
}

/// Lower case, `.` read as `-` (ASCII only: model names are ASCII).
fn normal(b: u8) -> u8 {
    if b == b'.' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

fn normalize(model: &str) -> String {
    let bare = model.strip_prefix("anthropic/").unwrap_or(model);
    bare.chars().map(|c| if c == '.' { '-' } else { c.to_ascii_lowercase() }).collect()
}

/// `*` matches any run of bytes; everything else matches itself.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let mut parts = pattern.split(|&b| b == b'*').peekable();
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    if parts.peek().is_none() {
        return rest.is_empty();
    }
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return rest.len() >= part.len() && rest.ends_with(part);
        }
        if part.is_empty() {
            continue;
        }
        match rest.windows(part.len()).position(|w| w == part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// A line's sampling parameters (numbers as given; `null` already read as absent).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Asked {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<f64>,
}

/// What to send to `model` for `asked`, refusing what Anthropic would answer 400 to.
/// `temperature: 1` and `top_p: 1` are Anthropic's defaults: they are left out rather than
/// refused, which changes nothing.
pub fn resolve(table: &SamplingTable, model: &str, asked: Asked, out: &mut Refusals) -> Asked {
    if asked == Asked::default() {
        return asked;
    }
    if let Some(t) = asked.temperature.filter(|t| !(0.0..=1.0).contains(t)) {
        out.push(Refusal::new(
            "body.temperature",
            Code::InvalidValue,
            format!("Anthropic takes a temperature between 0 and 1, not {t}"),
        ));
    }
    let mut send = Asked {
        temperature: asked.temperature.filter(|t| *t != 1.0),
        top_p: asked.top_p.filter(|p| *p != 1.0),
        top_k: asked.top_k,
    };
    let (support, pattern) = table.lookup(model);
    let bare = model.strip_prefix("anthropic/").unwrap_or(model);
    match support {
        Sampling::Both => {}
        Sampling::Either => {
            if send.temperature.is_some() && send.top_p.is_some() {
                out.push(Refusal::new(
                    "body.top_p",
                    Code::UnsupportedParameter,
                    format!(
                        "{bare} takes temperature or top_p, not both (Anthropic answers 400 to both); \
                         remove one of them"
                    ),
                ));
                send.top_p = None;
            }
        }
        Sampling::None => {
            let why = match pattern {
                Some(p) => format!("the model table says {bare} takes none (entry {p:?})"),
                None => format!(
                    "{bare} is not in the model table, and unknown models are assumed to take none \
                     (models newer than claude-opus-4-6 answer 400 to them)"
                ),
            };
            for (name, v) in [("temperature", send.temperature), ("top_p", send.top_p), ("top_k", send.top_k)] {
                if v.is_some() {
                    out.push(Refusal::new(
                        format!("body.{name}"),
                        Code::UnsupportedParameter,
                        format!(
                            "{name} is not sent to {bare}: {why}; remove it, or declare the model in \
                             anthropic_sampling if it takes it"
                        ),
                    ));
                }
            }
            send = Asked::default();
        }
    }
    send
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_names() {
        let g = |p: &str, t: &str| glob(p.as_bytes(), t.as_bytes());
        assert!(g("claude-3*", "claude-3-5-sonnet-20241022"));
        assert!(g("claude-opus-4", "claude-opus-4"));
        assert!(!g("claude-opus-4", "claude-opus-4-7"));
        assert!(g("a*b*c", "axxbyyc"));
        assert!(!g("a*b*c", "axxbyy"));
        assert!(g("*", ""));
        assert!(g("a**b", "ab"));
        assert!(g("a**", "a"));
        assert!(!g("ab*ba", "aba"));
        assert!(SamplingTable::default().lookup(&format!("claude-3-{}", "x".repeat(200))).0 == Sampling::Both);
    }

    #[test]
    fn lookup_reads_both_namings_and_defaults_to_none() {
        let t = SamplingTable::default();
        assert_eq!(t.lookup("anthropic/claude-4.5-sonnet").0, Sampling::Either);
        assert_eq!(t.lookup("claude-sonnet-4-5-20250929").0, Sampling::Either);
        assert_eq!(t.lookup("anthropic/claude-sonnet-4-20250514").0, Sampling::Either);
        assert_eq!(t.lookup("claude-3-5-haiku-latest").0, Sampling::Both);
        assert_eq!(t.lookup("anthropic/claude-3.7-sonnet").0, Sampling::Both);
        assert_eq!(t.lookup("claude-opus-4-7"), (Sampling::None, None));
        assert_eq!(t.lookup("claude-opus-5").0, Sampling::None);
        assert_eq!(t.lookup("anthropic/claude-4.7-opus").0, Sampling::None);
        let mine = SamplingTable::with_entries([
            ("anthropic/claude-opus-4.7*", Sampling::Either),
            ("claude-3-opus*", Sampling::None),
        ]);
        assert_eq!(mine.lookup("claude-opus-4-7-20260101"), (Sampling::Either, Some("claude-opus-4-7*")));
        assert_eq!(mine.lookup("claude-3-opus-20240229").0, Sampling::None, "user entries come first");
        assert_eq!(mine.lookup("claude-3-haiku").0, Sampling::Both);
    }

    fn run(model: &str, asked: Asked) -> (Asked, Vec<(String, &'static str)>) {
        let mut out = Refusals::default();
        let sent = resolve(&SamplingTable::default(), model, asked, &mut out);
        (sent, out.into_vec().into_iter().map(|r| (r.path, r.code.as_str())).collect())
    }

    #[test]
    fn either_models_refuse_both_and_drop_defaults() {
        let both = Asked { temperature: Some(0.2), top_p: Some(0.9), top_k: None };
        let (_, refused) = run("anthropic/claude-4.5-sonnet", both);
        assert_eq!(refused, vec![("body.top_p".to_owned(), "unsupported_parameter")]);
        let default_t = Asked { temperature: Some(1.0), top_p: Some(0.9), top_k: Some(5.0) };
        assert_eq!(
            run("claude-sonnet-4-5", default_t),
            (Asked { temperature: None, top_p: Some(0.9), top_k: Some(5.0) }, vec![])
        );
        assert_eq!(run("claude-3-opus", both), (both, vec![]));
    }

    #[test]
    fn none_models_refuse_each_and_range_is_zero_to_one() {
        let all = Asked { temperature: Some(0.5), top_p: Some(0.5), top_k: Some(3.0) };
        let (sent, refused) = run("claude-opus-4-7", all);
        assert_eq!(sent, Asked::default());
        let paths: Vec<_> = refused.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["body.temperature", "body.top_p", "body.top_k"]);
        assert_eq!(run("claude-opus-4-7", Asked { temperature: Some(1.0), top_p: Some(1.0), top_k: None }).1, vec![]);
        let (_, refused) = run("claude-3-haiku", Asked { temperature: Some(1.5), ..Asked::default() });
        assert_eq!(refused, vec![("body.temperature".to_owned(), "invalid_value")]);
    }
}
