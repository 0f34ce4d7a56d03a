//! Validates a file and prints the time: `cargo run --release --example validate_file -- FILE [THREADS]`.
//! For profiling the core without Python. `--file-only` skips the in-memory run (which
//! reads the whole file, so it would swamp a profile with page faults).
use std::sync::atomic::AtomicBool;

fn main() {
    let file_only = std::env::args().any(|a| a == "--file-only");
    let mut args = std::env::args().skip(1).filter(|a| a != "--file-only");
    let path = args.next().expect("usage: validate_file FILE [THREADS] [--file-only]");
    let threads = args.next().map_or(0, |t| t.parse().expect("THREADS is a number"));
    let mut opts = fastrouter_batch_core::Options { threads, ..Default::default() };
    if let Ok(b) = std::env::var("BLOCK_KB") {
        opts.block_size = b.parse::<usize>().expect("BLOCK_KB is a number") * 1024;
    }
    opts.limits.max_requests = u64::MAX;
    opts.limits.max_bytes = u64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let r =
            fastrouter_batch_core::validate_path(path.as_ref(), &opts, &AtomicBool::new(false)).expect("readable file");
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{:.1} ms, {:.0} MB/s, {} requests, {} issues",
            dt * 1e3,
            r.total_bytes as f64 / dt / 1e6,
            r.num_requests,
            r.total_issues()
        );
    }
    if file_only {
        return;
    }
    let data = std::fs::read(&path).expect("readable file");
    let t = std::time::Instant::now();
    let r = fastrouter_batch_core::validate_bytes(&data, &opts);
    let dt = t.elapsed().as_secs_f64();
    println!("in memory: {:.1} ms, {:.0} MB/s, {} requests", dt * 1e3, r.total_bytes as f64 / dt / 1e6, r.num_requests);
}
