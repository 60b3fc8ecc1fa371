//! Preconditions shared by every e2e test: root, and one test at a time on the machine.

use std::{
    fs::{File, OpenOptions},
    io,
    os::fd::AsRawFd,
    sync::{Mutex, MutexGuard, PoisonError},
};

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

/// Serialises the test threads of one process.
static THREADS: Mutex<()> = Mutex::new(());
/// Serialises test processes: several people or CI jobs may run the suite on one machine.
const LOCK_FILE: &str = "/run/lock/escape-detector-e2e.lock";

/// Held for the whole of a test; see [`exclusive`].
pub struct MachineLock {
    _processes: File,
    _threads: MutexGuard<'static, ()>,
}

/// Requires root and takes the machine-wide test lock. Tests change host-wide state (kernel
/// settings, runtimes' parent cgroups, the detector's view of every process): two at once could
/// restore each other's kernel settings wrongly. A test that panicked while holding the lock
/// has already been cleaned up by its guards, so a poisoned lock is still usable.
pub fn exclusive() -> MachineLock {
    require_root();
    let threads = THREADS.lock().unwrap_or_else(PoisonError::into_inner);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .unwrap_or_else(|e| panic!("opening {LOCK_FILE}: {e}"));
    if let Err(e) = flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        assert_eq!(
            e.kind(),
            io::ErrorKind::WouldBlock,
            "locking {LOCK_FILE}: {e}"
        );
        eprintln!("waiting for another e2e test run to release {LOCK_FILE}");
        flock(&file, libc::LOCK_EX).unwrap_or_else(|e| panic!("locking {LOCK_FILE}: {e}"));
    }
    MachineLock {
        _processes: file,
        _threads: threads,
    }
}

/// The lock goes with the file's descriptor, so it is released when the [`File`] closes, also
/// when the process dies.
fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open for as long as `file` lives.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
