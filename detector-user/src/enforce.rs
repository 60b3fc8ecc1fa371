//! The kill switch for critical alerts (`--enforce`).

use std::io;

/// Sends SIGKILL to the process. Refuses PID 1, the kernel (0) and the agent itself.
pub fn kill(tgid: u32) -> io::Result<()> {
    if tgid <= 1 || tgid == std::process::id() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing to kill pid {tgid}"),
        ));
    }
    let pid =
        libc::pid_t::try_from(tgid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: plain syscall.
    if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_kills_init_or_itself_and_kills_a_child() {
        assert!(kill(0).is_err());
        assert!(kill(1).is_err());
        assert!(kill(std::process::id()).is_err());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        kill(child.id()).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }
}
