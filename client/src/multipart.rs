//! A `multipart/form-data` upload body streamed from a file (or bytes), with its exact
//! length known up front so the server can refuse an oversized upload at once.

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use rand::Rng;

pub struct Form {
    pub content_type: String,
    pub head: Bytes,
    pub tail: Bytes,
}

impl Form {
    pub fn new(filename: &str, purpose: &str) -> Self {
        let boundary = format!("fastrouter-batch-{:032x}", rand::rng().random::<u128>());
        let filename: String = filename.chars().filter(|c| !matches!(c, '"' | '\r' | '\n')).collect();
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/jsonl\r\n\r\n"
        );
        Self {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            head: Bytes::from(head),
            tail: Bytes::from(format!("\r\n--{boundary}--\r\n")),
        }
    }

    pub fn len(&self, content: u64) -> u64 {
        self.head.len() as u64 + content + self.tail.len() as u64
    }

    /// The whole body: head, the content's chunks, tail.
    pub fn body<S>(&self, content: S) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let head = stream::once(std::future::ready(Ok(self.head.clone())));
        let tail = stream::once(std::future::ready(Ok(self.tail.clone())));
        head.chain(content).chain(tail)
    }
}
