//! The detector as a target: its pid and the BPF objects it loaded, which a container process
//! must not reach.

use std::collections::HashSet;

use detector_common::bpf_cmd;

#[derive(Debug, Default, Clone)]
pub struct AgentSelf {
    pub pid: u32,
    pub bpf: OwnBpfObjects,
}

/// The ids of the detector's programs, maps, links and BTF objects: the ids the `bpf()`
/// by-id commands take (each kind has its own id space).
#[derive(Debug, Default, Clone)]
pub struct OwnBpfObjects {
    pub programs: HashSet<u32>,
    pub maps: HashSet<u32>,
    pub links: HashSet<u32>,
    pub btf: HashSet<u32>,
}

impl AgentSelf {
    pub fn this_process() -> AgentSelf {
        AgentSelf {
            pid: std::process::id(),
            bpf: OwnBpfObjects::default(),
        }
    }

    /// Whether a `bpf()` call with this command and object id takes hold of one of ours.
    pub fn owns(&self, cmd: u32, object_id: u32) -> bool {
        let ids = match cmd {
            bpf_cmd::PROG_GET_FD_BY_ID => &self.bpf.programs,
            bpf_cmd::MAP_GET_FD_BY_ID => &self.bpf.maps,
            bpf_cmd::LINK_GET_FD_BY_ID => &self.bpf.links,
            bpf_cmd::BTF_GET_FD_BY_ID => &self.bpf.btf,
            _ => return false,
        };
        ids.contains(&object_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_is_checked_against_its_own_id_space() {
        let agent = AgentSelf {
            pid: 7,
            bpf: OwnBpfObjects {
                programs: HashSet::from([10]),
                maps: HashSet::from([20]),
                links: HashSet::from([30]),
                btf: HashSet::from([40]),
            },
        };
        assert!(agent.owns(bpf_cmd::PROG_GET_FD_BY_ID, 10));
        assert!(!agent.owns(bpf_cmd::MAP_GET_FD_BY_ID, 10));
        assert!(agent.owns(bpf_cmd::MAP_GET_FD_BY_ID, 20));
        assert!(agent.owns(bpf_cmd::LINK_GET_FD_BY_ID, 30));
        assert!(agent.owns(bpf_cmd::BTF_GET_FD_BY_ID, 40));
        assert!(!agent.owns(bpf_cmd::PROG_LOAD, 10));
    }
}
