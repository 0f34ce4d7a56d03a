//! The result of validating a file: every problem plus what the file holds.

use std::collections::BTreeMap;

use super::issue::{Code, Issue};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Problems in line order; at most `Limits::max_issues` of them (see `truncated`).
    pub issues: Vec<Issue>,
    /// How many problems of each code were found, kept or not.
    pub issue_counts: BTreeMap<Code, u64>,
    /// Physical lines in the file, blank ones included.
    pub num_lines: u64,
    /// Non-blank lines: one request each.
    pub num_requests: u64,
    pub total_bytes: u64,
    pub providers: BTreeMap<String, u64>,
    pub models: BTreeMap<String, u64>,
    pub urls: BTreeMap<String, u64>,
    /// The url the file uses: the most common one (the first line's on a tie).
    pub url: Option<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.issue_counts.is_empty()
    }

    /// All problems found, including those not kept in detail.
    pub fn total_issues(&self) -> u64 {
        self.issue_counts.values().sum()
    }

    /// True when more problems were found than are kept in `issues`.
    pub fn truncated(&self) -> bool {
        self.total_issues() > self.issues.len() as u64
    }

    /// A short text listing the first `shown` problems and how many more there are.
    pub fn summary(&self, shown: usize) -> String {
        if self.is_ok() {
            return format!(
                "valid: {} requests on {} lines, {} bytes",
                self.num_requests, self.num_lines, self.total_bytes
            );
        }
        let total = self.total_issues();
        // "in a file of N lines": N counts every line, not the ones with problems.
        let mut out = format!(
            "{} problem{} in a file of {} line{}:",
            total,
            if total == 1 { "" } else { "s" },
            self.num_lines,
            if self.num_lines == 1 { "" } else { "s" }
        );
        for issue in self.issues.iter().take(shown) {
            out.push_str("\n  ");
            out.push_str(&issue.to_string());
        }
        let listed = self.issues.len().min(shown) as u64;
        if total > listed {
            out.push_str(&format!("\n  ... and {} more", total - listed));
        }
        out
    }
}

/// The key with the highest count; `first` wins a tie.
pub(crate) fn majority<'a>(counts: &'a BTreeMap<String, u64>, first: Option<&'a str>) -> Option<&'a str> {
    let top = counts.values().copied().max()?;
    match first {
        Some(f) if counts.get(f) == Some(&top) => Some(f),
        _ => counts.iter().find(|(_, &v)| v == top).map(|(k, _)| k.as_str()),
    }
}
