//! JSONL plumbing: bounded block reading and line writing.
pub mod blocks;
pub mod writer;
