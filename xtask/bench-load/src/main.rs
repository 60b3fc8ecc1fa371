//! `bench-load`: the workloads `cargo xtask bench` times, as one small static binary, so that it
//! starts in microseconds and the same program runs on the host, in a busybox container and in a
//! VM guest.
//!
//! - `getppid N`, `open-close N` (of `/dev/null`), `open-close-file N` (of `/etc/passwd`),
//!   `exec-storm N` make N operations, one after the other in one process, and print `{"ops":N,"seconds":S}`: the wall time of the loop alone, process start
//!   and exit left out.
//! - `sleepers N` leaves N child processes sleeping (for ever: whoever asked for them kills them)
//!   and prints the same line for their start.
//! - `exit` exits at once: what the exec storm executes.
//!
//! A failed system call prints `bench-load: <what>: <error>` and exits 1; a bad command line
//! exits 2.
//!
//! `cargo xtask bench` links it statically (crt-static): containers have no libc.

use std::{
    env,
    ffi::{CStr, CString},
    hint::black_box,
    io,
    os::unix::ffi::OsStrExt as _,
    process::ExitCode,
    ptr,
    time::Instant,
};

const USAGE: &str = "usage: bench-load getppid N | open-close N | open-close-file N | \
                     exec-storm N | sleepers N | exit";

/// What the open/close loops open, read-only so that no watcher's write filter reports them,
/// and present on every Linux system: a character device, and a regular file, which most opens
/// are and which a hook may tell from a device more cheaply.
const DEVICE: &CStr = c"/dev/null";
const REGULAR_FILE: &CStr = c"/etc/passwd";

enum Command {
    Run(Workload, u64),
    Exit,
}

enum Workload {
    Getppid,
    OpenClose(&'static CStr),
    ExecStorm,
    Sleepers,
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (workload, count) = match parse(&args) {
        Some(Command::Run(workload, count)) => (workload, count),
        Some(Command::Exit) => return ExitCode::SUCCESS,
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let outcome = match workload {
        Workload::Getppid => {
            getppid(count);
            Ok(())
        }
        Workload::OpenClose(path) => open_close(path, count),
        Workload::ExecStorm => exec_storm(count),
        Workload::Sleepers => sleepers(count),
    };
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => {
            println!("{{\"ops\":{count},\"seconds\":{seconds}}}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("bench-load: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[&str]) -> Option<Command> {
    let workload = match args {
        ["exit"] => return Some(Command::Exit),
        ["getppid", _] => Workload::Getppid,
        ["open-close", _] => Workload::OpenClose(DEVICE),
        ["open-close-file", _] => Workload::OpenClose(REGULAR_FILE),
        ["exec-storm", _] => Workload::ExecStorm,
        ["sleepers", _] => Workload::Sleepers,
        _ => return None,
    };
    let count = args[1].parse::<u64>().ok().filter(|n| *n > 0)?;
    Some(Command::Run(workload, count))
}

/// The cheapest system call there is: what it costs is the kernel's entry and exit path, which
/// is what any syscall hook slows down.
fn getppid(count: u64) {
    for _ in 0..count {
        // SAFETY: getppid has no preconditions and cannot fail.
        black_box(unsafe { libc::getppid() });
    }
}

fn open_close(path: &CStr, count: u64) -> Result<(), String> {
    for _ in 0..count {
        // SAFETY: path is a NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(os_error(format!("open({path:?})")));
        }
        // SAFETY: fd was just opened here and nothing else uses it.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// fork, execve of this same binary with `exit`, waitpid: one process at a time, as a shell
/// running a script does.
fn exec_storm(count: u64) -> Result<(), String> {
    let exe = env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    let path = CString::new(exe.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let arg0 = c"bench-load";
    let arg1 = c"exit";
    let argv = [arg0.as_ptr(), arg1.as_ptr(), ptr::null()];
    let envp = [ptr::null()];
    for _ in 0..count {
        // SAFETY: this process is single-threaded, so the child may call anything; it calls
        // only execve and _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(os_error("fork"));
        }
        if pid == 0 {
            // SAFETY: path, argv and envp are NUL-terminated and outlive the call.
            unsafe {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
        }
        wait_success(pid)?;
    }
    Ok(())
}

fn wait_success(pid: libc::pid_t) -> Result<(), String> {
    let mut status = 0;
    // SAFETY: status is a valid place for waitpid to write to.
    if unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        return Err(os_error(format!("waitpid({pid})")));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("child {pid} ended with status {status:#x}"));
    }
    Ok(())
}

/// Children that sleep until killed, with their standard streams on /dev/null so that whoever
/// reads this process's output sees its end when it exits.
fn sleepers(count: u64) -> Result<(), String> {
    // SAFETY: a NUL-terminated path.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
    if null < 0 {
        return Err(os_error("open(/dev/null)"));
    }
    for started in 0..count {
        // SAFETY: single-threaded; the child calls only dup2 and pause.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(os_error(format!("fork (after {started} sleepers)")));
        }
        if pid == 0 {
            // SAFETY: plain descriptor and signal calls, async-signal-safe.
            unsafe {
                for stream in 0..3 {
                    libc::dup2(null, stream);
                }
                loop {
                    libc::pause();
                }
            }
        }
    }
    Ok(())
}

fn os_error(what: impl std::fmt::Display) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_workload_and_refuses_zero_or_junk() {
        assert!(matches!(
            parse(&["getppid", "5"]),
            Some(Command::Run(Workload::Getppid, 5))
        ));
        assert!(matches!(
            parse(&["exec-storm", "2"]),
            Some(Command::Run(Workload::ExecStorm, 2))
        ));
        assert!(matches!(
            parse(&["open-close-file", "3"]),
            Some(Command::Run(Workload::OpenClose(path), 3)) if path == REGULAR_FILE
        ));
        assert!(matches!(parse(&["exit"]), Some(Command::Exit)));
        assert!(parse(&["getppid", "0"]).is_none());
        assert!(parse(&["open-close"]).is_none());
        assert!(parse(&["sleepers", "x"]).is_none());
    }
}
