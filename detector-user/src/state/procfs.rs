//! Reading processes from /proc (with the `procfs` crate): the start-up snapshot, cache
//! misses, ancestors above a container, and the targets of acts.

use ::procfs::{
    ProcResult,
    process::{Process as ProcfsProcess, all_processes},
};
use std::{fs::File, io::Read};

use detector_common::{ARGS_LEN, Namespaces};

use super::{cgroup, file_id, identity_hierarchy::IdentityHierarchy, process::Process};

/// `/proc/<pid>` by number, or `self`.
fn open(pid: Option<u32>) -> ProcResult<ProcfsProcess> {
    match pid {
        Some(pid) => ProcfsProcess::new(pid as i32),
        None => ProcfsProcess::myself(),
    }
}

/// Namespace inode numbers from `/proc/<pid>/ns/*` (our own for `None`); zero where a
/// namespace type is missing, an error when they cannot be read. Read with `stat` here rather
/// than with `procfs`, which reports a refused read (PID 1's, in some sandboxes) as an
/// internal error.
pub fn namespaces(pid: Option<u32>) -> std::io::Result<Namespaces> {
    namespaces_in(&match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    })
}

/// Namespace inode numbers of the task whose /proc directory is `task_dir`.
fn namespaces_in(task_dir: &str) -> std::io::Result<Namespaces> {
    use std::os::unix::fs::MetadataExt;
    let dir = format!("{task_dir}/ns");
    let inum = |name: &str| -> std::io::Result<u32> {
        match std::fs::metadata(format!("{dir}/{name}")) {
            Ok(meta) => Ok(meta.ino() as u32),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    };
    let pid_for_children = match inum("pid_for_children")? {
        0 => inum("pid")?,
        n => n,
    };
    Ok(Namespaces {
        mnt: inum("mnt")?,
        pid_for_children,
        net: inum("net")?,
        ipc: inum("ipc")?,
        uts: inum("uts")?,
        cgroup: inum("cgroup")?,
        user: inum("user")?,
        time: inum("time_for_children")?,
    })
}

/// The host pid of the process that is `vpid` in the pid namespace of inode `pid_ns`, looked
/// for among `candidates` unless that namespace is the agent's own; `None` when none is.
pub fn host_pid_of(
    pid_ns: u32,
    vpid: u32,
    candidates: impl IntoIterator<Item = u32>,
) -> Option<u32> {
    let pid_ns = u64::from(pid_ns);
    if active_pid_ns(None)? == pid_ns {
        return Some(vpid);
    }
    candidates
        .into_iter()
        .find(|&pid| active_pid_ns(Some(pid)) == Some(pid_ns) && innermost_pid(pid) == Some(vpid))
}

/// The inode of the pid namespace a process lives in (not the one its children get).
fn active_pid_ns(pid: Option<u32>) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/ns/pid"),
        None => "/proc/self/ns/pid".to_owned(),
    };
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// The process's pid in its own pid namespace (the last `NSpid` entry).
fn innermost_pid(pid: u32) -> Option<u32> {
    let nspid = open(Some(pid)).ok()?.status().ok()?.nspid?;
    nspid.last().map(|&p| p as u32)
}

/// The /proc directory of a live task of process `pid`: its own, or, once its leader has
/// exited while other threads go on, one of those threads': an exited task has no namespaces
/// and no root left to read, and shows the root cgroups.
fn live_task_dir(pid: u32) -> String {
    let own = format!("/proc/{pid}");
    let alive = |dir: &str| std::fs::metadata(format!("{dir}/ns/mnt")).is_ok();
    if alive(&own) {
        return own;
    }
    std::fs::read_dir(format!("{own}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|task| format!("{own}/task/{}", task.file_name().to_string_lossy()))
        .find(|dir| alive(dir))
        .unwrap_or(own)
}

/// One process read from /proc, or `None` when it is gone. Its cgroup is the one it has in
/// the identity hierarchy.
pub fn read_process(pid: u32, hierarchy: &IdentityHierarchy) -> Option<Process> {
    let process = open(Some(pid)).ok()?;
    let stat = process.stat().ok()?;
    let status = process.status().ok();
    let task_dir = live_task_dir(pid);
    let cgroup = ProcfsProcess::new_with_root(task_dir.clone().into())
        .and_then(|task| task.cgroups())
        .ok()
        .and_then(|lines| hierarchy.path_of(&lines.0).map(str::to_owned));
    Some(Process {
        pid,
        start_ns: 0,
        ppid: stat.ppid as u32,
        uid: status.as_ref().map(|s| s.ruid),
        euid: status.as_ref().map(|s| s.euid),
        comm: stat.comm,
        exe: process.exe().ok().map(|p| p.to_string_lossy().into_owned()),
        args: cmdline(pid),
        cgroup_id: cgroup
            .as_deref()
            .and_then(|path| hierarchy.id_of(path))
            .unwrap_or(0),
        cgroup,
        container_id: None,
        ns: namespaces_in(&task_dir).unwrap_or_default(),
        root: file_id::of_path(std::path::Path::new(&format!("{task_dir}/root")))
            .unwrap_or_default(),
        cap_effective: status.as_ref().map_or(0, |s| s.capeff),
        exited_at: None,
        // /proc tells whole values.
        cut: Vec::new(),
    })
}

/// The process's arguments, as far as the kernel programs would send them ([`ARGS_LEN`]
/// bytes): a process may have megabytes of them, and this read must stay small.
fn cmdline(pid: u32) -> Vec<String> {
    let mut raw = Vec::with_capacity(ARGS_LEN);
    match File::open(format!("/proc/{pid}/cmdline"))
        .and_then(|file| file.take(ARGS_LEN as u64).read_to_end(&mut raw))
    {
        Ok(_) => split_args(&raw),
        Err(_) => Vec::new(),
    }
}

/// The argv of process `pid` while it still runs the program named `comm` (an exec after the
/// one in question would change both).
pub fn args_of(pid: u32, comm: &str) -> Option<Vec<String>> {
    let process = open(Some(pid)).ok()?;
    if process.stat().ok()?.comm != comm {
        return None;
    }
    Some(cmdline(pid))
}

/// (pid, comm, exe, ppid) of a process above a container's processes, for an alert's
/// ancestry.
pub fn read_ancestor(pid: u32) -> Option<(u32, String, Option<String>, u32)> {
    let process = open(Some(pid)).ok()?;
    let stat = process.stat().ok()?;
    let exe = process.exe().ok().map(|p| p.to_string_lossy().into_owned());
    Some((pid, stat.comm, exe, stat.ppid as u32))
}

/// Every container process on the host: those whose cgroup in the identity hierarchy names a
/// container (threads are not processes).
pub fn snapshot(hierarchy: &IdentityHierarchy) -> Vec<Process> {
    let Ok(all) = all_processes() else {
        return Vec::new();
    };
    all.filter_map(Result::ok)
        .filter(|p| {
            p.cgroups().is_ok_and(|lines| {
                hierarchy
                    .path_of(&lines.0)
                    .is_some_and(|path| cgroup::classify(path).is_some())
            })
        })
        .filter_map(|p| read_process(p.pid() as u32, hierarchy))
        .collect()
}

/// NUL-separated argv into its strings.
pub fn split_args(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_hierarchy() -> IdentityHierarchy {
        IdentityHierarchy {
            controller: None,
            hierarchy_id: 0,
            mount: "/sys/fs/cgroup/unified".into(),
        }
    }

    #[test]
    fn reads_at_most_args_len_bytes_of_arguments() {
        let long = "x".repeat(ARGS_LEN * 4);
        // The long argument is the script's $0; the builtin read waits without a child.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read line", &long])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The new image's arguments show once exec has set them up, a moment after spawn.
        let mut args = cmdline(child.id());
        for _ in 0..1000 {
            if !args.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            args = cmdline(child.id());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(args[..3], ["sh", "-c", "read line"]);
        let bytes = args.join("\0").len();
        assert!(bytes <= ARGS_LEN, "{bytes} bytes read");
    }

    #[test]
    fn splits_args() {
        assert_eq!(split_args(b"nsenter\0-t\x001\0"), ["nsenter", "-t", "1"]);
    }

    #[test]
    fn finds_pids_by_namespace() {
        let me = std::process::id();
        let own_ns = active_pid_ns(None).unwrap() as u32;
        assert_eq!(
            host_pid_of(own_ns, 42, []),
            Some(42),
            "the agent's own: as named"
        );
        assert_eq!(innermost_pid(me), Some(me));
        assert_eq!(host_pid_of(own_ns.wrapping_add(1), me, [me]), None);
    }

    #[test]
    fn reads_this_very_process() {
        let me = read_process(std::process::id(), &own_hierarchy()).expect("own /proc entry");
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.ns.mnt != 0 && me.ns.pid_for_children != 0);
        assert!(!me.args.is_empty());
        let parent = read_ancestor(me.ppid).expect("parent's /proc entry");
        assert_eq!(parent.0, me.ppid);
    }
}
