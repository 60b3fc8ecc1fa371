//! Waiting for the kernel or a process to get somewhere.

use std::{
    thread,
    time::{Duration, Instant},
};

/// Short enough to measure alert latency in tens of milliseconds.
pub const INTERVAL: Duration = Duration::from_millis(20);

/// Polls `done` until it holds or `timeout` passes; tells which.
pub fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(INTERVAL);
    }
    true
}
