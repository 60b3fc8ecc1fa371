//! The ids of the BPF objects the detector loaded and attached, as the kernel numbers them.
//! Read from what the agent holds: its programs' info and its descriptors' /proc fdinfo. The
//! kernel's by-id calls (`BPF_PROG_GET_FD_BY_ID` behind a program's map ids, the link walk)
//! need CAP_SYS_ADMIN, which the least-privilege deployments (the systemd unit, the DaemonSet)
//! leave out; reading one's own descriptors needs nothing.

use std::fs;

use aya::{Ebpf, programs::ProgramInfo};

use crate::state::agent_self::OwnBpfObjects;

/// Read once every program is attached: links exist only then.
pub fn collect(ebpf: &Ebpf) -> OwnBpfObjects {
    let mut own = OwnBpfObjects::default();
    let infos: Vec<ProgramInfo> = ebpf
        .programs()
        .filter_map(|(name, program)| {
            program
                .info()
                .map_err(|e| log::debug!("program {name}: no info ({e}); not loaded"))
                .ok()
        })
        .collect();
    for info in &infos {
        own.programs.insert(info.id());
        own.btf.extend(info.btf_id());
    }
    match fs::read_dir("/proc/self/fdinfo") {
        Ok(entries) => {
            for fdinfo in entries
                .flatten()
                .filter_map(|e| fs::read_to_string(e.path()).ok())
            {
                own.maps.extend(id_in(&fdinfo, "map_id:"));
                own.links.extend(id_in(&fdinfo, "link_id:"));
            }
        }
        Err(e) => {
            log::warn!("reading /proc/self/fdinfo: {e}; the agent's maps and links are unknown")
        }
    }
    log::debug!(
        "own BPF objects: {} programs, {} maps, {} links",
        own.programs.len(),
        own.maps.len(),
        own.links.len()
    );
    own
}

/// The id a descriptor's fdinfo gives after `key` (`map_id:` for a map, `link_id:` for a link).
fn id_in(fdinfo: &str, key: &str) -> Option<u32> {
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|id| id.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_map_and_link_fdinfo() {
        let map = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nmap_type:\t1\n\
                   key_size:\t8\nvalue_size:\t4\nmax_entries:\t65536\nmap_flags:\t0x0\n\
                   map_extra:\t0x0\nmemlock:\t524288\nmap_id:\t42\nfrozen:\t0\n";
        assert_eq!(id_in(map, "map_id:"), Some(42));
        assert_eq!(id_in(map, "link_id:"), None);
        let link = "pos:\t0\nflags:\t02000000\nlink_type:\ttracing\nlink_id:\t7\n\
                    prog_tag:\ta04f5eef06a7f555\nprog_id:\t31\n";
        assert_eq!(id_in(link, "link_id:"), Some(7));
        assert_eq!(id_in(link, "map_id:"), None);
        assert_eq!(id_in("pos:\t0\nflags:\t02\n", "map_id:"), None);
    }
}
