//! Reading processes from /proc: the start-up snapshot and cache misses.

use std::{fs, io};

use detector_common::Namespaces;

use super::{cgroup, process::Process};

/// Namespace inode numbers from `/proc/<pid>/ns/*`; zero where unreadable.
pub fn namespaces(pid: &str) -> io::Result<Namespaces> {
    let inum = |name: &str| -> io::Result<u32> {
        let link = fs::read_link(format!("/proc/{pid}/ns/{name}"))?;
        Ok(parse_ns_link(&link.to_string_lossy()).unwrap_or(0))
    };
    Ok(Namespaces {
        mnt: inum("mnt")?,
        pid_for_children: inum("pid_for_children").or_else(|_| inum("pid"))?,
        net: inum("net")?,
        ipc: inum("ipc")?,
        uts: inum("uts")?,
        cgroup: inum("cgroup").unwrap_or(0),
        user: inum("user")?,
        time: inum("time_for_children").unwrap_or(0),
    })
}

/// `mnt:[4026531832]` -> 4026531832
fn parse_ns_link(link: &str) -> Option<u32> {
    link.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// The host pid of the process that `observer` calls `vpid`, a pid in the observer's own pid
/// namespace, looked for among `candidates`; `None` when no such process is found.
pub fn host_pid_of(
    observer: u32,
    vpid: u32,
    candidates: impl IntoIterator<Item = u32>,
) -> Option<u32> {
    let observer_ns = fs::read_link(format!("/proc/{observer}/ns/pid")).ok()?;
    if fs::read_link("/proc/self/ns/pid").ok()? == observer_ns {
        return Some(vpid);
    }
    candidates.into_iter().find(|pid| {
        fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&observer_ns)
            && fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|status| innermost_pid(&status) == Some(vpid))
    })
}

/// The last number of the `NSpid:` line: the pid in the process's own pid namespace.
fn innermost_pid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// One process read from /proc, or `None` when it is gone.
pub fn read_process(pid: u32) -> Option<Process> {
    let dir = format!("/proc/{pid}");
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    let (comm, ppid) = parse_stat(&stat)?;
    let status = fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let (uid, euid) = parse_uids(&status);
    let cgroup_text = fs::read_to_string(format!("{dir}/cgroup")).unwrap_or_default();
    let lines = cgroup::parse_proc_cgroup(&cgroup_text);
    let cgroup = cgroup::container_path(&lines)
        .or_else(|| lines.first().map(|l| l.path.as_str()))
        .map(str::to_owned);
    Some(Process {
        pid,
        ppid,
        uid,
        euid,
        comm,
        exe: fs::read_link(format!("{dir}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        args: fs::read(format!("{dir}/cmdline"))
            .map(|raw| split_args(&raw))
            .unwrap_or_default(),
        cgroup,
        container_id: None,
        ns: namespaces(&pid.to_string()).unwrap_or_default(),
        exited_at: None,
    })
}

/// Every process on the host (threads are not processes).
pub fn snapshot() -> Vec<Process> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_process)
        .collect()
}

/// (comm, ppid) from `/proc/<pid>/stat`; comm may hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(String, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 2..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, ppid))
}

/// (real uid, effective uid) from `/proc/<pid>/status`.
fn parse_uids(status: &str) -> (Option<u32>, Option<u32>) {
    let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) else {
        return (None, None);
    };
    let mut ids = line["Uid:".len()..]
        .split_whitespace()
        .map(|v| v.parse().ok());
    (ids.next().flatten(), ids.next().flatten())
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

    #[test]
    fn parses_stat_with_awkward_comm() {
        let stat = "4242 (my (odd) prog) S 4200 4242 4200 0 -1 4194560 1 0";
        assert_eq!(parse_stat(stat), Some(("my (odd) prog".into(), 4200)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn parses_real_and_effective_uid() {
        let status = "Name:\tsh\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_uids(status), (Some(1000), Some(0)));
        assert_eq!(parse_uids("Name:\tsh\n"), (None, None));
    }

    #[test]
    fn parses_namespace_links_and_args() {
        assert_eq!(parse_ns_link("mnt:[4026531832]"), Some(4026531832));
        assert_eq!(parse_ns_link("mnt:4026531832"), None);
        assert_eq!(split_args(b"nsenter\0-t\x001\0"), ["nsenter", "-t", "1"]);
    }

    #[test]
    fn finds_the_innermost_pid_and_our_own_pid() {
        assert_eq!(innermost_pid("Name:\tsh\nNSpid:\t4242\t7\t1\n"), Some(1));
        assert_eq!(innermost_pid("Name:\tsh\nNSpid:\t4242\n"), Some(4242));
        assert_eq!(innermost_pid("Name:\tsh\n"), None);
        let me = std::process::id();
        assert_eq!(host_pid_of(me, me, []), Some(me));
    }

    #[test]
    fn reads_this_very_process() {
        let me = read_process(std::process::id()).expect("own /proc entry");
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.ns.mnt != 0 && me.ns.pid_for_children != 0);
        assert!(!me.args.is_empty());
    }
}
