//! A test-only fault hook: with `FASTROUTER_BATCH_NATIVE_PAUSE_AT=<point>` in its
//! environment, the engine announces `native pause at <point>` on stderr when it reaches
//! that point and stops there for good, so a crash test can SIGKILL it exactly there.
//! Points: `after_plan`, `after_upload`, `after_create` (created upstream, not yet
//! recorded), `polling`, `mid_merge` (inside a chunk's merge transaction).

use std::sync::OnceLock;

pub const PAUSE_ENV: &str = "FASTROUTER_BATCH_NATIVE_PAUSE_AT";

fn configured() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT.get_or_init(|| std::env::var(PAUSE_ENV).ok().filter(|p| !p.is_empty())).as_deref()
}

/// Stops this thread for good if the hook names `point` (never returns then).
pub fn pause_at(point: &str) {
    if configured() != Some(point) {
        return;
    }
    eprintln!("fastrouter-batch engine: native pause at {point}");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// With `FASTROUTER_BATCH_NATIVE_TIMINGS=1`, each native phase of a batch (plan, upload,
/// download, merge) logs `native timing <phase> <batch> <start ms> <end ms>` on stderr, for
/// the benchmark (bench/bench_native.py) to attribute time and memory to phases.
pub const TIMINGS_ENV: &str = "FASTROUTER_BATCH_NATIVE_TIMINGS";

pub fn timing(phase: &str, batch_id: &str, started_ms: i64) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var(TIMINGS_ENV).is_ok_and(|v| !v.is_empty() && v != "0")) {
        eprintln!("fastrouter-batch engine: native timing {phase} {batch_id} {started_ms} {}", crate::ids::now_ms());
    }
}
