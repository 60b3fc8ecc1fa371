//! The kill switch for critical alerts (`--enforce`). An act waits in the queue before it is
//! judged, and its process may be gone by then and its pid another process's: the kill goes
//! through a pidfd, and only once /proc shows that the pidfd's process started when the one
//! that acted did.

use std::{
    io,
    os::fd::{FromRawFd, OwnedFd, RawFd},
};

/// Sends SIGKILL to process `tgid`, which started at `start_ns` (`CLOCK_BOOTTIME`, as the
/// kernel's events say). Refuses PID 1, the kernel (0), the agent itself, and a pid that now
/// names another process.
pub fn kill(tgid: u32, start_ns: u64) -> io::Result<()> {
    if tgid <= 1 || tgid == std::process::id() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing to kill pid {tgid}"),
        ));
    }
    let pid = libc::pid_t::try_from(tgid).map_err(|_| io::ErrorKind::InvalidInput)?;
    let pidfd = pidfd_open(pid)?;
    // The pidfd holds whichever process has the pid now. Should /proc show the one that
    // acted, that process held the pid from before the act until now, so it is the pidfd's.
    if started_ticks(tgid)? != ticks(start_ns) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("pid {tgid} names another process now: the one that acted is gone"),
        ));
    }
    pidfd_send_signal(&pidfd, libc::SIGKILL)
}

/// The process's start time in clock ticks, as /proc/PID/stat reports it.
fn started_ticks(tgid: u32) -> io::Result<u64> {
    let stat = procfs::process::Process::new(tgid as i32)
        .and_then(|p| p.stat())
        .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
    Ok(stat.starttime)
}

/// `start_ns` in the clock ticks /proc counts in (the kernel's `nsec_to_clock_t`).
fn ticks(start_ns: u64) -> u64 {
    start_ns / (1_000_000_000 / procfs::ticks_per_second().max(1))
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(pid, flags) takes no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel has just handed us this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pidfd_send_signal(pidfd: &OwnedFd, signal: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, no siginfo (NULL), no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn never_kills_init_or_itself_and_kills_a_child() {
        assert!(kill(0, 0).is_err());
        assert!(kill(1, 0).is_err());
        assert!(kill(std::process::id(), 0).is_err());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let ticks = started_ticks(child.id()).unwrap();
        let start_ns = ticks * (1_000_000_000 / procfs::ticks_per_second());
        assert_eq!(self::ticks(start_ns), ticks);
        kill(child.id(), start_ns).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    /// The pid's process started after the act: the actor is gone and its pid reused.
    #[test]
    fn spares_a_process_that_got_the_pid_later() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let ticks = started_ticks(child.id()).unwrap();
        let earlier_ns = (ticks - 1) * (1_000_000_000 / procfs::ticks_per_second());
        let refused = kill(child.id(), earlier_ns).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::NotFound);
        assert!(child.try_wait().unwrap().is_none(), "killed all the same");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
