//! Reads a results file and prints the time: `cargo run --release --example read_results_file -- FILE [WORKERS]`
//! (`BLOCK_KB=N` for another block size). For profiling the results reader without Python.
use std::sync::Arc;
use std::time::Duration;

use fastrouter_batch_core::results::{Input, Next, ReaderOptions, ResultReader};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: read_results_file FILE [WORKERS]");
    let workers = args.next().map_or(ReaderOptions::default().workers, |t| t.parse().expect("WORKERS is a number"));
    for _ in 0..5 {
        let file = Arc::new(std::fs::File::open(&path).expect("readable file"));
        let t = std::time::Instant::now();
        let block_size = std::env::var("BLOCK_KB")
            .map_or(ReaderOptions::default().block_size, |b| b.parse::<usize>().expect("BLOCK_KB is a number") * 1024);
        let opts = ReaderOptions { workers, block_size, ..Default::default() };
        let (records, bytes) = ResultReader::read(vec![Input::File(file)], opts, |reader| {
            let (mut records, mut bytes) = (0usize, 0usize);
            loop {
                let wait = if reader.help() { Duration::ZERO } else { Duration::from_secs(3600) };
                match reader.next(wait) {
                    Next::Block(b) => {
                        records += b.records.len();
                        bytes += b.strings.len();
                        reader.recycle(b);
                    }
                    Next::Pending => {}
                    Next::Done => return (records, bytes),
                    Next::Failed(e) => panic!("{e:?}"),
                }
            }
        });
        println!("{:.1} ms, {records} records, {bytes} string bytes", t.elapsed().as_secs_f64() * 1e3);
    }
}
