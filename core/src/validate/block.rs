//! Checking one block of lines: everything that needs only the block itself. Line numbers
//! here are block-relative (0-based); the merge makes them absolute.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::issue::{Code, Issue};
use super::rules;
use crate::jsonl::blocks::{for_each_line, is_blank, strip_bom};
use crate::model::Endpoint;
use crate::translate::SamplingTable;

/// A 128-bit fingerprint of a custom_id, so the merge can detect duplicates without keeping
/// every id string: two foldhash values under independent random seeds (collisions
/// ~ n²/2¹²⁹). Several times faster than SipHash on short ids; the random seeds (new for
/// every validation) keep crafted collisions impractical.
#[derive(Clone)]
pub struct IdHasher([foldhash::fast::SeedableRandomState; 2]);

impl IdHasher {
    pub fn new() -> Self {
        Self(id_seeds().each_ref().map(|shared| {
            // A fresh per-validation seed from std's random keys, on top of per-process shared seeds.
            let seed = std::collections::hash_map::RandomState::new().hash_one(0u64);
            foldhash::fast::SeedableRandomState::with_seed(seed, shared)
        }))
    }

    #[inline]
    pub fn hash(&self, id: &str) -> u128 {
        let [a, b] = self.0.each_ref().map(|state| {
            let mut h = state.build_hasher();
            h.write(id.as_bytes());
            h.finish()
        });
        (u128::from(a) << 64) | u128::from(b)
    }
}

impl Default for IdHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Two independent random foldhash seed sets, made once per process.
fn id_seeds() -> &'static [foldhash::SharedSeed; 2] {
    static SEEDS: std::sync::OnceLock<[foldhash::SharedSeed; 2]> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        [1u64, 2].map(|i| foldhash::SharedSeed::from_u64(std::collections::hash_map::RandomState::new().hash_one(i)))
    })
}

/// A custom_id seen on a line: its fingerprint and its text's place in `BlockResult::id_text`.
pub struct IdSeen {
    pub hash: u128,
    pub line: u32,
    pub text: (u32, u32),
}

/// Consecutive lines using the same url (a run ends at any line without one).
pub struct UrlRun {
    pub url: String,
    pub first: u32,
    pub last: u32,
}

#[derive(Default)]
pub struct BlockResult {
    pub lines: u64,
    pub requests: u64,
    pub issues: Vec<Issue>,
    pub ids: Vec<IdSeen>,
    pub id_text: String,
    pub url_runs: Vec<UrlRun>,
    pub providers: Counts,
    pub models: Counts,
    pub urls: Counts,
}

/// The text of a custom_id recorded in a block's `id_text`.
pub fn id_of<'t>(id_text: &'t str, seen: &IdSeen) -> &'t str {
    &id_text[seen.text.0 as usize..(seen.text.0 + seen.text.1) as usize]
}

/// Counts per name (provider, model, url). A file has few distinct names, looked up once
/// per line, so a short table scanned in order beats hashing every value; past
/// `TABLE_MAX` distinct names it moves to a map.
#[derive(Default, Debug)]
pub struct Counts {
    table: Vec<(String, u64)>,
    map: HashMap<String, u64>,
    /// Index in `table` of the last name found there.
    last: usize,
}

/// String equality for short names, without a call to `memcmp` when they fit in 16 bytes.
#[inline(always)]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or_default());
    if (8..=16).contains(&n) {
        // Two overlapping 8-byte words cover the whole name.
        word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
    } else {
        a == b
    }
}

const TABLE_MAX: usize = 16;

impl Counts {
    pub fn bump(&mut self, key: &str) {
        // Most lines repeat the previous line's name: try it first.
        if let Some(entry) = self.table.get_mut(self.last) {
            if same(&entry.0, key) {
                entry.1 += 1;
                return;
            }
        }
        if let Some(i) = self.table.iter().position(|(k, _)| same(k, key)) {
            self.table[i].1 += 1;
            self.last = i;
        } else if self.table.len() < TABLE_MAX {
            self.table.push((key.to_owned(), 1));
        } else if let Some(n) = self.map.get_mut(key) {
            *n += 1;
        } else {
            self.map.insert(key.to_owned(), 1);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &u64)> {
        self.table.iter().map(|(k, v)| (k, v)).chain(self.map.iter())
    }
}

/// Checks a block; `first` says it starts the file (whose first line may carry a BOM).
pub fn check_block(
    block: &[u8],
    first: bool,
    max_line: u64,
    providers: &[String],
    sampling: &SamplingTable,
    ids: &IdHasher,
) -> BlockResult {
    let mut r = BlockResult::default();
    // One SIMD pass over the whole block; lines are checked one by one only if it fails.
    let block_is_utf8 = simdutf8::basic::from_utf8(block).is_ok();
    for_each_line(block, |index, line| {
        let line = if first && index == 0 { strip_bom(line) } else { line };
        r.lines += 1;
        let rel = index as u32;
        if is_blank(line) {
            return;
        }
        r.requests += 1;
        let no = u64::from(rel);
        if line.len() as u64 > max_line {
            r.issues.push(too_large(no, line.len() as u64, max_line));
            return;
        }
        let text = if block_is_utf8 {
            // SAFETY: the whole block was just checked, and lines split at ASCII '\n'.
            unsafe { std::str::from_utf8_unchecked(line) }
        } else {
            match std::str::from_utf8(line) {
                Ok(text) => text,
                Err(e) => {
                    r.issues.push(Issue {
                        line: no,
                        path: None,
                        code: Code::InvalidUtf8,
                        message: format!("not valid UTF-8 (bad byte at column {})", e.valid_up_to() + 1),
                    });
                    return;
                }
            }
        };
        let facts = rules::check_line(text, no, providers, sampling, &mut r.issues);
        if let Some(id) = &facts.custom_id {
            let start = r.id_text.len() as u32;
            r.id_text.push_str(id);
            r.ids.push(IdSeen { hash: ids.hash(id), line: rel, text: (start, id.len() as u32) });
        }
        if let Some(p) = &facts.provider {
            r.providers.bump(p);
        }
        if let Some(m) = &facts.model {
            r.models.bump(m);
        }
        if let Some(u) = &facts.url {
            r.urls.bump(u);
        }
        // Only batch endpoints compete for the file's url; others are already reported.
        if let Some(u) = facts.url.as_deref().filter(|u| Endpoint::from_url(u).is_some()) {
            match r.url_runs.last_mut() {
                Some(run) if run.last + 1 == rel && run.url == u => run.last = rel,
                _ => r.url_runs.push(UrlRun { url: u.to_string(), first: rel, last: rel }),
            }
        }
    });
    r
}

pub fn too_large(line: u64, bytes: u64, max_line: u64) -> Issue {
    Issue {
        line,
        path: None,
        code: Code::LineTooLarge,
        message: format!("line is {bytes} bytes, over the {max_line}-byte limit per line"),
    }
}
