//! Whether "no agent" means what it says: other watchers running on the machine (someone's
//! detector, a tracer, an audit daemon) slow every system alike and shrink every ratio towards 1.

use std::fs;

/// Process names of host watchers.
const WATCHERS: &[&str] = &[
    "escape-detector",
    "bpftrace",
    "auditd",
    "falco",
    "tetragon",
    "tracee",
    "kubearmor",
];

/// `pid name` of every watcher process running now; call it before the bench starts its own.
pub fn other_watchers() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<(u32, String)> = entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let name = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let name = name.trim();
            WATCHERS.contains(&name).then(|| (pid, name.to_owned()))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(pid, name)| format!("{pid} {name}"))
        .collect()
}
