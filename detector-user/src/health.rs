//! Liveness and readiness, as /healthz and /readyz report them.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// The event loop beats at least this often while alive.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
    last_beat_ms: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Health {
    pub fn beat(&self) {
        self.last_beat_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.is_alive()
    }

    pub fn is_alive(&self) -> bool {
        let last = self.last_beat_ms.load(Ordering::Relaxed);
        last != 0 && now_ms().saturating_sub(last) < HEARTBEAT_TIMEOUT.as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_set_and_while_beating() {
        let h = Health::default();
        assert!(!h.is_alive() && !h.is_ready());
        h.beat();
        assert!(h.is_alive() && !h.is_ready());
        h.set_ready();
        assert!(h.is_ready());
        h.last_beat_ms.store(1, Ordering::Relaxed);
        assert!(!h.is_alive() && !h.is_ready());
    }
}
