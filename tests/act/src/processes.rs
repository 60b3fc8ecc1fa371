//! Acts about processes rather than single calls: the tricks that test what a detector takes
//! for a process (a leader that exits before its threads, an exec from a thread, a thousand
//! quick forks, a pid handed to another process, a process that makes and joins a cgroup).

use std::{convert::Infallible, ffi::CString, fs, mem, ptr, thread, time::Duration};

use libc::pid_t;

use crate::{Act, Failure, calls::c_string, run};

/// Replaces this process's image with `command` (a path and its arguments); returns only on
/// failure.
pub fn exec(command: &[String]) -> Result<Infallible, Failure> {
    let args: Vec<CString> = command
        .iter()
        .map(|a| c_string(a))
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(ptr::null());
    // SAFETY: a NUL-terminated path and a NULL-terminated array of NUL-terminated strings,
    // all alive across the call.
    unsafe { libc::execv(argv[0], argv.as_ptr()) };
    Err(Failure::os(format!("execv({})", command[0])))
}

/// Ends this process the way the act ended: its output on stdout or stderr, exit 0 or 1.
fn finish(outcome: Result<String, Failure>) -> ! {
    let code = match outcome {
        Ok(done) => {
            println!("{done}");
            0
        }
        Err(Failure(failure)) => {
            eprintln!("escape-act: {failure}");
            1
        }
    };
    std::process::exit(code)
}

/// The leader thread ends with exit(2), not exit_group(2): the process lives on in a second
/// thread, which waits until the leader is a zombie and then does `act`.
pub fn orphan_thread(act: Act) -> ! {
    // SAFETY: plain syscall.
    let leader = unsafe { libc::getpid() };
    thread::spawn(move || {
        let stat = format!("/proc/{leader}/task/{leader}/stat");
        while !fs::read_to_string(&stat).is_ok_and(|s| is_zombie(&s)) {
            thread::sleep(Duration::from_millis(1));
        }
        finish(run(act));
    });
    // SAFETY: ends this thread only; the spawned one owns everything it uses.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    unreachable!("exit(2) returned")
}

/// A /proc/PID/stat line's state is `Z`: `PID (comm) Z ...`, comm may hold anything.
fn is_zombie(stat: &str) -> bool {
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('Z'))
}

/// Execs `command` from a thread that is not the leader: the kernel makes that thread the
/// leader, keeping the process's pid.
pub fn thread_exec(command: Vec<String>) -> ! {
    thread::spawn(move || finish(exec(&command).map(|never| match never {})));
    loop {
        thread::park();
    }
}

/// Forks `children` processes as fast as it can; all but the last exit at once, the last does
/// `act`. Returns the last one's outcome once all are reaped.
pub fn fork_storm(children: u32, act: Act) -> Result<String, Failure> {
    for _ in 1..children {
        // SAFETY: the child only calls _exit.
        match unsafe { libc::fork() } {
            0 => unsafe { libc::_exit(0) },
            pid if pid < 0 => return Err(Failure::os("fork")),
            _ => {}
        }
    }
    // SAFETY: the child runs the act and exits; this process has a single thread.
    let last = match unsafe { libc::fork() } {
        0 => finish(run(act)),
        pid if pid < 0 => return Err(Failure::os("fork")),
        pid => pid,
    };
    let mut last_status = None;
    for _ in 0..children {
        let mut status = 0;
        // SAFETY: status is a valid place for wait to write to.
        let reaped = unsafe { libc::wait(&mut status) };
        if reaped < 0 {
            return Err(Failure::os("wait"));
        }
        if reaped == last {
            last_status = Some(status);
        }
    }
    match last_status {
        Some(status) if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 => Ok(format!(
            "fork-storm: forked {children} children, the last (PID {last}) acted"
        )),
        status => Err(Failure::new(
            format!("the last of {children} children (PID {last})"),
            format!("ended with status {status:?}"),
        )),
    }
}

/// `struct clone_args` (include/uapi/linux/sched.h) up to `set_tid_size`.
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
}

/// Starts `command` as a child whose pid is `pid` (clone3 with `set_tid`, which needs
/// CAP_SYS_ADMIN over the pid namespace), and waits for it.
pub fn spawn_with_pid(pid: pid_t, command: &[String]) -> Result<String, Failure> {
    let wanted = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: wanted.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: args and the pid array it points to outlive the call; without CLONE_VM the child
    // has its own copy of memory, and this process has a single thread.
    let child = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw const args,
            mem::size_of::<CloneArgs>(),
        )
    };
    match child {
        0 => finish(exec(command).map(|never| match never {})),
        c if c < 0 => Err(Failure::os(format!("clone3(set_tid = {pid})"))),
        c => {
            let mut status = 0;
            // SAFETY: status is a valid place for waitpid to write to.
            if unsafe { libc::waitpid(c as pid_t, &mut status, 0) } < 0 {
                return Err(Failure::os(format!("waitpid({c})")));
            }
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                Ok(format!("spawn-with-pid: {} ran as PID {c}", command[0]))
            } else {
                Err(Failure::new(
                    format!("{} as PID {c}", command[0]),
                    format!("ended with status {status:#x}"),
                ))
            }
        }
    }
}

/// Makes the cgroup directories `dirs`, moves this process into them, takes a mount namespace
/// of its own and execs `command` there, as a container runtime starts a container's first
/// process.
pub fn enter_cgroup(dirs: &[String], command: &[String]) -> Result<Infallible, Failure> {
    let pid = std::process::id().to_string();
    for dir in dirs {
        fs::create_dir_all(dir).map_err(|e| Failure::new(format!("mkdir -p {dir}"), e))?;
    }
    for dir in dirs {
        fs::write(format!("{dir}/cgroup.procs"), &pid)
            .map_err(|e| Failure::new(format!("joining {dir}"), e))?;
    }
    // SAFETY: plain syscall.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } < 0 {
        return Err(Failure::os("unshare(CLONE_NEWNS)"));
    }
    exec(command)
}

/// Joins the mount, uts, ipc, net and cgroup namespaces of process `pid` with one setns(2) on a
/// pidfd, then execs `command` there.
pub fn setns_exec(pid: pid_t, command: &[String]) -> Result<Infallible, Failure> {
    // SAFETY: plain syscall; the descriptor is ours.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(Failure::os(format!("pidfd_open({pid})")));
    }
    let namespaces = libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWCGROUP;
    // SAFETY: a pidfd and namespace flags.
    if unsafe { libc::setns(pidfd as libc::c_int, namespaces) } < 0 {
        return Err(Failure::os(format!("setns(pidfd of {pid})")));
    }
    exec(command)
}

/// Runs `command` in a mount namespace of its own whose mounts propagate nowhere, as systemd
/// starts a service with `ProtectSystem=` or `PrivateTmp=`.
pub fn private_mounts(command: &[String]) -> Result<Infallible, Failure> {
    // SAFETY: plain syscall.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } < 0 {
        return Err(Failure::os("unshare(CLONE_NEWNS)"));
    }
    let root = c_string("/")?;
    // SAFETY: a NUL-terminated path; no source, type or data for a propagation change.
    let private = unsafe {
        libc::mount(
            ptr::null(),
            root.as_ptr(),
            ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            ptr::null(),
        )
    };
    if private < 0 {
        return Err(Failure::os("mount(/, MS_REC | MS_PRIVATE)"));
    }
    exec(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_zombie_state_past_any_comm() {
        assert!(is_zombie("42 (a) b) c) Z 1 42"));
        assert!(!is_zombie("42 (sleep) S 1 42"));
        assert!(!is_zombie("garbage"));
    }
}
