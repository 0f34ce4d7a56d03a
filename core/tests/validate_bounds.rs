//! Validation stops past the byte limit whatever the source (an endless one included), and
//! checking on the caller's thread (small inputs) reports exactly what the pipeline does.

use std::io::{self, Read};
use std::sync::atomic::AtomicBool;

use fastrouter_batch_core::validate::{runs_inline, validate_reader, validate_slice, Options, Report};
use fastrouter_batch_core::Limits;

const OK_OPENAI: &str = r#"{"custom_id":"a","provider":"openai","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4.1","messages":[{"role":"user","content":"hi"}]}}"#;

fn triples(r: &Report) -> Vec<(u64, &'static str)> {
    r.issues.iter().map(|i| (i.line, i.code.as_str())).collect()
}

fn limits(max_bytes: u64, max_line_bytes: u64) -> Options {
    Options { limits: Limits { max_bytes, max_line_bytes, ..Limits::default() }, ..Options::default() }
}

#[test]
fn an_endless_line_stops_at_the_byte_limit() {
    // /dev/zero: no newline ever. Skipped past the line limit, stopped at the byte limit.
    let opts = limits(5_000_000, 1000);
    let r = validate_reader(io::repeat(0), &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!(triples(&r), [(1, "line_too_large"), (1, "file_too_large")]);
    assert!(r.issues[1].message.contains("nothing after it is read"), "{}", r.issues[1]);
    assert_eq!((r.total_bytes, r.num_lines), (5_000_001, 1));
}

#[test]
fn endless_lines_stop_at_the_byte_limit() {
    // A FIFO fed valid lines for ever: file_too_large on the line holding byte max + 1.
    let line = format!("{OK_OPENAI}\n");
    let endless = Cycle(line.as_bytes().to_vec(), 0);
    let max = 100 * line.len() as u64 + 10;
    let r = validate_reader(endless, &limits(max, 1 << 20), &AtomicBool::new(false)).unwrap();
    let codes: Vec<_> = triples(&r).into_iter().filter(|(_, c)| *c != "duplicate_custom_id").collect();
    assert_eq!(codes, [(101, "file_too_large")]);
    assert_eq!((r.num_lines, r.total_bytes), (101, max + 1));
}

/// Its bytes, over and over.
struct Cycle(Vec<u8>, usize);

impl Read for Cycle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        for b in buf.iter_mut() {
            *b = self.0[self.1];
            self.1 = (self.1 + 1) % self.0.len();
        }
        Ok(buf.len())
    }
}

#[test]
fn inline_and_pipelined_validation_report_the_same() {
    // Around the threshold (one block), with problems of every kind near block edges:
    // the same bytes through the caller's thread and through the workers.
    let block = 4096;
    let inline = Options { block_size: block, threads: 4, ..Options::default() };
    let mut lines = vec![];
    for i in 0.. {
        let line = match i % 7 {
            0 => OK_OPENAI.replace(r#""a""#, r#""dup""#), // duplicates
            1 => "{not json".to_owned(),
            2 => OK_OPENAI.replace(r#""user""#, r#""usr""#).replace(r#""a""#, &format!("\"r{i}\"")),
            3 => String::new(),
            4 => OK_OPENAI.replace("/v1/chat/completions", "/v1/embeddings").replace(r#""a""#, &format!("\"e{i}\"")),
            5 => format!("{}\r", OK_OPENAI.replace(r#""a""#, &format!("\"c{i}\""))),
            _ => OK_OPENAI.replace(r#""a""#, &format!("\"ok{i}\"")),
        };
        lines.push(line);
        let text = lines.join("\n");
        if text.len() > 3 * block {
            break;
        }
    }
    let text = lines.join("\n");
    let mut checked = 0;
    for end in (0..text.len()).filter(|&e| e < 40 || (block - 300..block + 300).contains(&e) || e % 997 == 0) {
        let data = &text.as_bytes()[..end];
        let opts =
            Options { limits: Limits { max_requests: 20, max_issues: 15, ..Limits::default() }, ..inline.clone() };
        let small = validate_slice(data, &opts, &AtomicBool::new(false)).unwrap();
        // A reader of unknown size always goes through the pipeline's workers.
        let piped = validate_reader(data, &opts, &AtomicBool::new(false)).unwrap();
        assert_eq!(small, piped, "first {end} bytes");
        assert_eq!(runs_inline(Some(end as u64), &opts), end <= block);
        checked += 1;
    }
    assert!(checked > 600, "{checked}");
}
