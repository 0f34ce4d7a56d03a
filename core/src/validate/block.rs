//! Checking one block of lines: everything that needs only the block itself. Line numbers
//! here are block-relative (0-based); the merge makes them absolute.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::issue::{Code, Issue};
use super::rules;
use crate::jsonl::blocks::{for_each_line, is_blank, strip_bom};
use crate::model::Endpoint;

/// A 128-bit fingerprint of a custom_id: two independent SipHash keys, so the merge can
/// detect duplicates without keeping every id string (collisions ~ n²/2¹²⁹).
#[derive(Clone)]
pub struct IdHasher(std::collections::hash_map::RandomState, std::collections::hash_map::RandomState);

impl IdHasher {
    pub fn new() -> Self {
        Self(Default::default(), Default::default())
    }

    pub fn hash(&self, id: &str) -> u128 {
        (u128::from(self.0.hash_one(id)) << 64) | u128::from(self.1.hash_one(id))
    }
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
}

const TABLE_MAX: usize = 16;

impl Counts {
    pub fn bump(&mut self, key: &str) {
        if let Some(entry) = self.table.iter_mut().find(|(k, _)| k == key) {
            entry.1 += 1;
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
pub fn check_block(block: &[u8], first: bool, max_line: u64, providers: &[String], ids: &IdHasher) -> BlockResult {
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
        let facts = rules::check_line(text, no, providers, &mut r.issues);
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
