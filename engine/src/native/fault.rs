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
