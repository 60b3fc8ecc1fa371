//! Liveness and readiness, as /healthz and /readyz report them.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// The event loop beats at least this often while alive.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Health {
    /// Set once ready: what each sensor runs on this kernel, or why it does not.
    sensors: OnceLock<String>,
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

    /// Ready, with every sensor's state (one line each) for /readyz to show.
    pub fn set_ready(&self, sensors: String) {
        // Set once: a second call would only repeat the first.
        let _ = self.sensors.set(sensors);
    }

    /// The sensors' states while ready; `None` before, or while the event loop is stalled.
    pub fn ready_sensors(&self) -> Option<&str> {
        self.sensors
            .get()
            .filter(|_| self.is_alive())
            .map(String::as_str)
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
        assert!(!h.is_alive() && h.ready_sensors().is_none());
        h.beat();
        assert!(h.is_alive() && h.ready_sensors().is_none());
        h.set_ready("mounts: fentry".to_owned());
        assert_eq!(h.ready_sensors(), Some("mounts: fentry"));
        h.last_beat_ms.store(1, Ordering::Relaxed);
        assert!(!h.is_alive() && h.ready_sensors().is_none());
    }
}
