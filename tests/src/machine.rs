//! Preconditions shared by every e2e test: root, and one test at a time on the machine.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Fails (never skips) when not root: CI runs the e2e tests as root, so a silent pass elsewhere
/// would hide that they did not run.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the e2e tests need root (runc, mounts, kernel settings, eBPF): \
         run them through `sudo -E cargo xtask test`"
    );
}

static MACHINE: Mutex<()> = Mutex::new(());

/// Requires root and takes the process-wide test lock. Tests change host-wide state (kernel
/// settings, cgroup parents, the detector's view of every process), so they must not overlap
/// even when the test runner uses several threads. A test that panicked while holding the lock
/// has already been cleaned up by its guards, so a poisoned lock is still usable.
pub fn exclusive() -> MutexGuard<'static, ()> {
    require_root();
    MACHINE.lock().unwrap_or_else(PoisonError::into_inner)
}
