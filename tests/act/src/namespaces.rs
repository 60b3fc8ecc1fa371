//! Acts that change a process's namespaces or root by the roads other than the ones busybox's
//! applets take: a user namespace made by `unshare`, `clone` or `clone3`; another process's
//! namespaces joined through its `/proc/PID/ns/*` files; a chroot followed by an exec.

use std::{
    convert::Infallible,
    fs, mem,
    os::fd::{AsRawFd as _, OwnedFd},
};

use libc::pid_t;

use crate::{
    Failure,
    calls::c_string,
    processes::{CloneArgs, exec},
};

/// How `userns` makes its user namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsernsCall {
    Unshare,
    Clone,
    Clone3,
}

impl UsernsCall {
    pub fn parse(word: &str) -> Option<UsernsCall> {
        match word {
            "unshare" => Some(UsernsCall::Unshare),
            "clone" => Some(UsernsCall::Clone),
            "clone3" => Some(UsernsCall::Clone3),
            _ => None,
        }
    }
}

fn user_ns() -> Result<String, Failure> {
    fs::read_link("/proc/self/ns/user")
        .map(|link| link.display().to_string())
        .map_err(|e| Failure::new("readlink /proc/self/ns/user", e))
}

/// Makes a user namespace by `call`: this process moves into it (unshare), or a child starts in
/// it (clone, clone3) and exits 0 when it sees a namespace other than its parent's. With a
/// `command`, the process in the new namespace execs it, and the child's status is its.
pub fn userns(call: UsernsCall, command: &[String]) -> Result<String, Failure> {
    let before = user_ns()?;
    let flags = libc::CLONE_NEWUSER as u64;
    let child = match call {
        UsernsCall::Unshare => {
            // SAFETY: plain syscall.
            if unsafe { libc::unshare(libc::CLONE_NEWUSER) } < 0 {
                return Err(Failure::os("unshare(CLONE_NEWUSER)"));
            }
            let after = user_ns()?;
            if !command.is_empty() && after != before {
                return exec(command).map(|never| match never {});
            }
            return if after == before {
                Err(Failure::new(
                    "unshare(CLONE_NEWUSER)",
                    "the namespace is the same",
                ))
            } else {
                Ok(format!("userns: unshare moved from {before} to {after}"))
            };
        }
        // SAFETY: without CLONE_VM and without a stack the child runs on a copy of this
        // process's memory, as after fork; it only reads a link and exits.
        UsernsCall::Clone => unsafe {
            libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0, 0, 0, 0)
        },
        UsernsCall::Clone3 => {
            let args = CloneArgs {
                flags,
                exit_signal: libc::SIGCHLD as u64,
                ..CloneArgs::default()
            };
            // SAFETY: args outlives the call; the child is as after fork (see above).
            unsafe {
                libc::syscall(
                    libc::SYS_clone3,
                    &raw const args,
                    mem::size_of::<CloneArgs>(),
                )
            }
        }
    };
    match child {
        0 => {
            let moved = user_ns().is_ok_and(|inside| inside != before);
            if moved && !command.is_empty() {
                let Err(Failure(failure)) = exec(command);
                eprintln!("escape-act: in the child: {failure}");
            }
            let code = i32::from(!moved || !command.is_empty());
            // SAFETY: ends the child without the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        c if c < 0 => Err(Failure::os(format!("{call:?}(CLONE_NEWUSER)"))),
        c => {
            let mut status = 0;
            // SAFETY: status is a valid place for waitpid to write to.
            if unsafe { libc::waitpid(c as pid_t, &mut status, 0) } < 0 {
                return Err(Failure::os(format!("waitpid({c})")));
            }
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                Ok(format!(
                    "userns: {call:?} started PID {c} in a new user namespace"
                ))
            } else {
                Err(Failure::new(
                    format!("the {call:?} child (PID {c})"),
                    format!("was in its parent's user namespace (status {status:#x})"),
                ))
            }
        }
    }
}

/// The namespaces `setns-files` joins, as `nsenter -m -u -i -n` does; the mount namespace last,
/// after which /proc may be another one.
const JOINED: [&str; 4] = ["uts", "ipc", "net", "mnt"];

/// Joins the namespaces of process `pid` through its `/proc/PID/ns/*` files, one setns(2) each
/// (all opened first), then execs `command` there.
pub fn setns_files(pid: pid_t, command: &[String]) -> Result<Infallible, Failure> {
    let files: Vec<(String, OwnedFd)> = JOINED
        .iter()
        .map(|ns| {
            let path = format!("/proc/{pid}/ns/{ns}");
            fs::File::open(&path)
                .map(|file| (path.clone(), OwnedFd::from(file)))
                .map_err(|e| Failure::new(format!("open({path})"), e))
        })
        .collect::<Result<_, _>>()?;
    for (path, fd) in &files {
        // SAFETY: a namespace descriptor; 0 accepts any type.
        if unsafe { libc::setns(fd.as_raw_fd(), 0) } < 0 {
            return Err(Failure::os(format!("setns({path})")));
        }
    }
    exec(command)
}

/// chroot(2) into `dir`, then chdir("/") and exec `command` there.
pub fn chroot_exec(dir: &str, command: &[String]) -> Result<Infallible, Failure> {
    let (dir_c, root) = (c_string(dir)?, c_string("/")?);
    // SAFETY: NUL-terminated paths.
    unsafe {
        if libc::chroot(dir_c.as_ptr()) < 0 {
            return Err(Failure::os(format!("chroot({dir})")));
        }
        if libc::chdir(root.as_ptr()) < 0 {
            return Err(Failure::os("chdir(/)"));
        }
    }
    exec(command)
}
