//! `escape-act`: the e2e tests run it inside their busybox containers to make one system call
//! that no busybox applet makes, so that a test can show the detector exactly that call.
//!
//! Each subcommand acts once, prints one line and exits 0; a refused call prints
//! `escape-act: <what>: <error>` to stderr and exits 1. A bad command line exits 2, so that a
//! test expecting a refusal cannot pass on a typo.
//!
//! `cargo xtask test` links it statically (crt-static): the containers have no libc.

mod calls;
mod namespaces;
mod processes;
mod writes;

use std::{convert::Infallible, env, fmt::Display, io, process::ExitCode};

use libc::pid_t;

const USAGE: &str = "\
usage: escape-act ACT
  bpf | bpf-walk | signal PID SIGNAL | ptrace PID | vm-read PID | pidfd-getfd PID FD
  | connect PATH|@NAME|tcp://ADDRESS:PORT
  | fsmount FSTYPE DIR | bind-tree SOURCE DIR | mount FSTYPE DIR
  | write PATH VALUE | open PATH read|write
  | write-via openat|openat2|open|creat write|pwrite|writev opener|setuid|socket PATH VALUE | open-by-handle PATH | exe-overwrite PID
  | load-module PATH | print-pid | ids
  | userns unshare|clone|clone3 [PROGRAM [ARG...]]
  | orphan-thread ACT | fork-storm N ACT | repeat N ACT
  | exec PROGRAM [ARG...] | thread-exec PROGRAM [ARG...] | setns-exec PID PROGRAM [ARG...]
  | setns-files PID PROGRAM [ARG...] | chroot-exec DIR PROGRAM [ARG...]
  | private-mounts PROGRAM [ARG...] | spawn-with-pid PID PROGRAM [ARG...]
  | enter-cgroup DIR... -- PROGRAM [ARG...]";

#[derive(Clone)]
pub enum Act {
    Bpf,
    /// Takes a descriptor of every loaded program, map and link by id, as `bpftool` does.
    BpfWalk,
    Signal {
        pid: pid_t,
        signal: libc::c_int,
    },
    Ptrace(pid_t),
    VmRead(pid_t),
    /// A copy of descriptor `fd` of process `pid`, through a pidfd.
    PidfdGetfd {
        pid: pid_t,
        fd: libc::c_int,
    },
    Connect(String),
    FsMount {
        fstype: String,
        dir: String,
    },
    Mount {
        fstype: String,
        dir: String,
    },
    /// A bind by the new mount API: open_tree(OPEN_TREE_CLONE), then move_mount.
    BindTree {
        source: String,
        dir: String,
    },
    Write {
        path: String,
        value: String,
    },
    /// Opens an existing file (no create, no truncate) and closes it without reading or
    /// writing.
    Open {
        path: String,
        write: bool,
    },
    /// The "shocker" move: the file's handle (name_to_handle_at), then open_by_handle_at with
    /// a descriptor of the filesystem's root.
    OpenByHandle(String),
    /// One write by the open call, write call and holder of the descriptor it names.
    WriteVia(writes::WriteVia),
    /// A user namespace made by unshare, clone or clone3, where `command` runs when given.
    Userns {
        call: namespaces::UsernsCall,
        command: Vec<String>,
    },
    /// runc CVE-2019-5736's move: keeps `/proc/PID/exe` open (O_PATH), then opens that
    /// descriptor for writing as soon as the process has exited and the kernel allows it.
    ExeOverwrite(pid_t),
    LoadModule(String),
    PrintPid,
    /// Prints the real and effective uid.
    Ids,
    /// The leader exits with exit(2); a surviving thread does the act.
    OrphanThread(Box<Act>),
    /// N children forked at once; the last does the act.
    ForkStorm {
        children: u32,
        act: Box<Act>,
    },
    /// The act N times over, by this process: a known number of events at once.
    Repeat {
        times: u32,
        act: Box<Act>,
    },
    // Acts that end in exec.
    Exec(Vec<String>),
    ThreadExec(Vec<String>),
    SetnsExec {
        pid: pid_t,
        command: Vec<String>,
    },
    /// Joins another process's namespaces through its /proc/PID/ns files.
    SetnsFiles {
        pid: pid_t,
        command: Vec<String>,
    },
    ChrootExec {
        dir: String,
        command: Vec<String>,
    },
    PrivateMounts(Vec<String>),
    SpawnWithPid {
        pid: pid_t,
        command: Vec<String>,
    },
    EnterCgroup {
        dirs: Vec<String>,
        command: Vec<String>,
    },
}

/// What was attempted and why it failed.
pub struct Failure(String);

impl Failure {
    pub fn new(what: impl Display, why: impl Display) -> Failure {
        Failure(format!("{what}: {why}"))
    }

    /// Failed with the errno of the system call just made.
    pub fn os(what: impl Display) -> Failure {
        Failure::new(what, io::Error::last_os_error())
    }
}

fn main() -> ExitCode {
    let Some(act) = parse(env::args_os().skip(1).map(|arg| arg.into_string().ok())) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(act) {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(Failure(failure)) => {
            eprintln!("escape-act: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Does the act; acts that end in exec return only when they failed.
/// Does `act` `times` times, stopping at the first failure.
fn repeat(times: u32, act: &Act) -> Result<String, Failure> {
    for _ in 0..times {
        run(act.clone())?;
    }
    Ok(format!("repeat: acted {times} times"))
}

pub fn run(act: Act) -> Result<String, Failure> {
    let never = |r: Result<Infallible, Failure>| r.map(|never| match never {});
    match act {
        Act::Bpf => calls::bpf(),
        Act::BpfWalk => calls::bpf_walk(),
        Act::Signal { pid, signal } => calls::signal(pid, signal),
        Act::Ptrace(pid) => calls::ptrace(pid),
        Act::VmRead(pid) => calls::vm_read(pid),
        Act::PidfdGetfd { pid, fd } => calls::pidfd_getfd(pid, fd),
        Act::Connect(path) => calls::connect(&path),
        Act::FsMount { fstype, dir } => calls::fsmount(&fstype, &dir),
        Act::BindTree { source, dir } => calls::bind_tree(&source, &dir),
        Act::Mount { fstype, dir } => calls::mount(&fstype, &dir),
        Act::Write { path, value } => calls::write(&path, &value),
        Act::Open { path, write } => calls::open(&path, write),
        Act::WriteVia(how) => writes::write_via(&how),
        Act::Userns { call, command } => namespaces::userns(call, &command),
        Act::ExeOverwrite(pid) => calls::exe_overwrite(pid),
        Act::OpenByHandle(path) => calls::open_by_handle(&path),
        Act::LoadModule(path) => calls::load_module(&path),
        Act::PrintPid => Ok(std::process::id().to_string()),
        // SAFETY: plain syscalls.
        Act::Ids => Ok(format!(
            "uid {} euid {}",
            unsafe { libc::getuid() },
            unsafe { libc::geteuid() }
        )),
        Act::OrphanThread(act) => processes::orphan_thread(*act),
        Act::ForkStorm { children, act } => processes::fork_storm(children, *act),
        Act::Repeat { times, act } => repeat(times, &act),
        Act::Exec(command) => never(processes::exec(&command)),
        Act::ThreadExec(command) => processes::thread_exec(command),
        Act::SetnsFiles { pid, command } => never(namespaces::setns_files(pid, &command)),
        Act::ChrootExec { dir, command } => never(namespaces::chroot_exec(&dir, &command)),
        Act::SetnsExec { pid, command } => never(processes::setns_exec(pid, &command)),
        Act::PrivateMounts(command) => never(processes::private_mounts(&command)),
        Act::SpawnWithPid { pid, command } => processes::spawn_with_pid(pid, &command),
        Act::EnterCgroup { dirs, command } => never(processes::enter_cgroup(&dirs, &command)),
    }
}

/// The act the arguments name; `None` for a non-UTF-8 argument or a bad command line.
fn parse(args: impl Iterator<Item = Option<String>>) -> Option<Act> {
    let args: Vec<String> = args.collect::<Option<_>>()?;
    parse_words(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn parse_words(args: &[&str]) -> Option<Act> {
    let owned = |s: &str| s.to_owned();
    let command = |rest: &[&str]| {
        (!rest.is_empty()).then(|| rest.iter().map(|s| owned(s)).collect::<Vec<_>>())
    };
    match args {
        ["bpf"] => Some(Act::Bpf),
        ["bpf-walk"] => Some(Act::BpfWalk),
        ["signal", pid, signal] => Some(Act::Signal {
            pid: parse_pid(pid)?,
            signal: signal.parse().ok().filter(|&s: &libc::c_int| s > 0)?,
        }),
        ["ptrace", pid] => parse_pid(pid).map(Act::Ptrace),
        ["vm-read", pid] => parse_pid(pid).map(Act::VmRead),
        ["pidfd-getfd", pid, fd] => Some(Act::PidfdGetfd {
            pid: parse_pid(pid)?,
            fd: fd.parse().ok().filter(|fd: &libc::c_int| *fd >= 0)?,
        }),
        ["connect", path] => Some(Act::Connect(owned(path))),
        ["fsmount", fstype, dir] => Some(Act::FsMount {
            fstype: owned(fstype),
            dir: owned(dir),
        }),
        ["bind-tree", source, dir] => Some(Act::BindTree {
            source: owned(source),
            dir: owned(dir),
        }),
        ["mount", fstype, dir] => Some(Act::Mount {
            fstype: owned(fstype),
            dir: owned(dir),
        }),
        ["write", path, value] => Some(Act::Write {
            path: owned(path),
            value: owned(value),
        }),
        ["open", path, "read"] => Some(Act::Open {
            path: owned(path),
            write: false,
        }),
        ["open", path, "write"] => Some(Act::Open {
            path: owned(path),
            write: true,
        }),
        ["write-via", rest @ ..] => writes::WriteVia::parse(rest).map(Act::WriteVia),
        ["userns", call, rest @ ..] => Some(Act::Userns {
            call: namespaces::UsernsCall::parse(call)?,
            command: rest.iter().map(|s| owned(s)).collect(),
        }),
        ["open-by-handle", path] => Some(Act::OpenByHandle(owned(path))),
        ["exe-overwrite", pid] => parse_pid(pid).map(Act::ExeOverwrite),
        ["load-module", path] => Some(Act::LoadModule(owned(path))),
        ["print-pid"] => Some(Act::PrintPid),
        ["ids"] => Some(Act::Ids),
        ["orphan-thread", act @ ..] => parse_words(act).map(|a| Act::OrphanThread(Box::new(a))),
        ["repeat", n, act @ ..] => Some(Act::Repeat {
            times: n.parse().ok().filter(|&n: &u32| n > 0)?,
            act: Box::new(parse_words(act)?),
        }),
        ["fork-storm", n, act @ ..] => Some(Act::ForkStorm {
            children: n.parse().ok().filter(|&n: &u32| n > 0)?,
            act: Box::new(parse_words(act)?),
        }),
        ["exec", rest @ ..] => command(rest).map(Act::Exec),
        ["thread-exec", rest @ ..] => command(rest).map(Act::ThreadExec),
        ["setns-files", pid, rest @ ..] => Some(Act::SetnsFiles {
            pid: parse_pid(pid)?,
            command: command(rest)?,
        }),
        ["chroot-exec", dir, rest @ ..] => Some(Act::ChrootExec {
            dir: owned(dir),
            command: command(rest)?,
        }),
        ["setns-exec", pid, rest @ ..] => Some(Act::SetnsExec {
            pid: parse_pid(pid)?,
            command: command(rest)?,
        }),
        ["private-mounts", rest @ ..] => command(rest).map(Act::PrivateMounts),
        ["spawn-with-pid", pid, rest @ ..] => Some(Act::SpawnWithPid {
            pid: parse_pid(pid)?,
            command: command(rest)?,
        }),
        ["enter-cgroup", rest @ ..] => {
            let split = rest.iter().position(|&w| w == "--")?;
            let dirs: Vec<String> = rest[..split].iter().map(|s| owned(s)).collect();
            if dirs.is_empty() {
                return None;
            }
            Some(Act::EnterCgroup {
                dirs,
                command: command(&rest[split + 1..])?,
            })
        }
        _ => None,
    }
}

/// Positive only: 0 and negative numbers name process groups to waitpid().
fn parse_pid(arg: &str) -> Option<pid_t> {
    arg.parse().ok().filter(|pid| *pid > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Option<Act> {
        parse(words.iter().map(|word| Some((*word).to_owned())))
    }

    #[test]
    fn takes_each_act_and_refuses_anything_else() {
        assert!(matches!(args(&["bpf"]), Some(Act::Bpf)));
        assert!(matches!(args(&["ptrace", "42"]), Some(Act::Ptrace(42))));
        assert!(matches!(
            args(&["signal", "42", "18"]),
            Some(Act::Signal {
                pid: 42,
                signal: 18
            })
        ));
        assert!(matches!(args(&["vm-read", "7"]), Some(Act::VmRead(7))));
        assert!(matches!(args(&["connect", "/run/s"]), Some(Act::Connect(p)) if p == "/run/s"));
        assert!(matches!(
            args(&["fsmount", "proc", "/mnt/p"]),
            Some(Act::FsMount { fstype, dir }) if fstype == "proc" && dir == "/mnt/p"
        ));
        for refused in [
            &[][..],
            &["bpf", "extra"],
            &["signal", "1"],
            &["pidfd-getfd", "1"],
            &["pidfd-getfd", "1", "-1"],
            &["open", "/f"],
            &["open", "/f", "append"],
            &["exe-overwrite", "0"],
            &["signal", "1", "0"],
            &["ptrace"],
            &["ptrace", "0"],
            &["vm-read", "-1"],
            &["vm-read", "x"],
            &["mount"],
            &["orphan-thread"],
            &["fork-storm", "0", "bpf"],
            &["fork-storm", "3"],
            &["repeat", "0", "bpf"],
            &["repeat", "2"],
            &["thread-exec"],
            &["enter-cgroup", "/a", "/bin/true"],
            &["enter-cgroup", "--", "/bin/true"],
            &["spawn-with-pid", "7"],
            &["exec"],
            &["userns", "fork"],
            &["setns-files", "7"],
            &["chroot-exec", "/"],
            &["write-via", "openat", "write", "opener", "/f"],
        ] {
            assert!(args(refused).is_none(), "{refused:?}");
        }
        assert!(parse([Some("connect".to_owned()), None].into_iter()).is_none());
        assert!(matches!(
            args(&["userns", "clone3"]),
            Some(Act::Userns {
                call: namespaces::UsernsCall::Clone3,
                command
            }) if command.is_empty()
        ));
        assert!(matches!(
            args(&["orphan-thread", "write-via", "creat", "writev", "socket", "/f", "v"]),
            Some(Act::OrphanThread(a)) if matches!(*a, Act::WriteVia(_))
        ));
        assert!(matches!(
            args(&["orphan-thread", "fork-storm", "2", "write", "/f", "v"]),
            Some(Act::OrphanThread(a)) if matches!(*a, Act::ForkStorm { children: 2, .. })
        ));
        assert!(matches!(
            args(&["repeat", "500", "bpf"]),
            Some(Act::Repeat { times: 500, act }) if matches!(*act, Act::Bpf)
        ));
        assert!(matches!(
            args(&["enter-cgroup", "/a", "/b", "--", "/bin/escape-act", "bpf"]),
            Some(Act::EnterCgroup { dirs, command }) if dirs.len() == 2 && command.len() == 2
        ));
    }

    #[test]
    fn finds_the_first_readable_mapping() {
        let maps = "\
00400000-00401000 ---p 00000000 00:00 0
00401000-00403000 r-xp 00001000 08:01 1234 /bin/busybox
7ffd1000-7ffd2000 r--p 00000000 00:00 0 [vvar]
";
        assert_eq!(calls::first_readable(maps), Some(0x0040_1000));
        assert_eq!(
            calls::first_readable("00400000-00401000 ---p 0 00:00 0\n"),
            None
        );
        assert_eq!(calls::first_readable(""), None);
    }
}
