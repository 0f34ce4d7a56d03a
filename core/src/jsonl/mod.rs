//! JSONL plumbing: bounded block reading, the parallel ordered pipeline over the blocks, and
//! line writing.
pub mod blocks;
pub mod pipeline;
pub mod writer;
