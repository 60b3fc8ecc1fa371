//! The container table: a container is its cgroup; metadata comes from the runtime's state
//! directory when there is one.

use std::collections::{HashMap, HashSet};

use detector_common::{FileId, Namespaces};

use super::{
    cgroup::{ContainerRef, Runtime},
    process::Process,
    runtime_state::{self, RuntimeRoot, RuntimeState},
};
use crate::alert::{ContainerInfo, PodInfo};

/// What a container started as: its first process the agent saw, whose namespaces, root,
/// user and capabilities are the container's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub ns: Namespaces,
    pub root: FileId,
    /// `None` when /proc could not tell.
    pub euid: Option<u32>,
    pub cap_effective: u64,
}

impl Origin {
    pub fn of(process: &Process) -> Origin {
        Origin {
            ns: process.ns,
            root: process.root,
            euid: process.euid,
            cap_effective: process.cap_effective,
        }
    }
}

struct Entry {
    reference: ContainerRef,
    origin: Origin,
    /// Looked up lazily: the runtime writes its state after the container's first process
    /// is already in the cgroup.
    state: Option<RuntimeState>,
}

pub struct ContainerTable {
    containers: HashMap<String, Entry>,
    roots: Vec<RuntimeRoot>,
}

impl ContainerTable {
    pub fn new(roots: Vec<RuntimeRoot>) -> ContainerTable {
        ContainerTable {
            containers: HashMap::new(),
            roots,
        }
    }

    /// Registers the container a cgroup names, on first sight, with the origin of the process
    /// seen in it; returns its id.
    pub fn register(&mut self, reference: &ContainerRef, origin: Origin) -> String {
        self.containers
            .entry(reference.id.clone())
            .or_insert_with(|| Entry {
                reference: reference.clone(),
                origin,
                state: None,
            });
        reference.id.clone()
    }

    /// What the container started as.
    pub fn origin(&self, id: &str) -> Option<Origin> {
        self.containers.get(id).map(|e| e.origin)
    }

    /// What an alert says about the container. The cgroup layout names the runtime; the
    /// runtime's own state fills in names and, where the layout cannot tell, the runtime.
    pub fn info(&mut self, id: &str) -> Option<ContainerInfo> {
        let roots = &self.roots;
        let entry = self.containers.get_mut(id)?;
        if entry.state.is_none() {
            entry.state = runtime_state::lookup(id, roots);
        }
        let state = entry.state.as_ref();
        let runtime = match (entry.reference.runtime, state) {
            (Runtime::Unknown, Some(s)) => s.runtime,
            (from_cgroup, _) => from_cgroup,
        };
        Some(ContainerInfo {
            id: id.to_owned(),
            runtime: runtime.as_str(),
            name: state.and_then(|s| s.name.clone()),
            image: state.and_then(|s| s.image.clone()),
            pod: PodInfo {
                name: state.and_then(|s| s.pod_name.clone()),
                namespace: state.and_then(|s| s.pod_namespace.clone()),
                uid: entry
                    .reference
                    .pod_uid
                    .clone()
                    .or_else(|| state.and_then(|s| s.pod_uid.clone())),
            },
        })
    }

    /// Keeps only the containers some live process still belongs to.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        self.containers.retain(|id, _| live.contains(id.as_str()));
    }

    pub fn len(&self) -> usize {
        self.containers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a5c6d7e8f90123456789abcdef0123456789abcdef0123456789abcdef012";

    fn register(table: &mut ContainerTable, path: &str) -> String {
        let first = Process {
            ns: Namespaces {
                mnt: 7,
                ..Namespaces::default()
            },
            ..Process::default()
        };
        table.register(
            &crate::state::cgroup::classify(path).unwrap(),
            Origin::of(&first),
        )
    }

    #[test]
    fn registers_containers_and_forgets_those_without_processes() {
        let mut table = ContainerTable::new(Vec::new());
        assert_eq!(register(&mut table, &format!("/docker/{ID}")), ID);
        assert_eq!(table.origin(ID).map(|o| o.ns.mnt), Some(7));
        let info = table.info(ID).unwrap();
        assert_eq!(info.runtime, "docker");
        assert_eq!(info.pod, PodInfo::default());
        table.retain(&HashSet::new());
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn pod_uid_comes_from_the_kubepods_path() {
        let mut table = ContainerTable::new(Vec::new());
        let uid = "6b1d2c3e-1111-4222-8333-944455556666";
        let path = format!("/kubepods/besteffort/pod{uid}/{ID}");
        let id = register(&mut table, &path);
        assert_eq!(table.info(&id).unwrap().pod.uid.as_deref(), Some(uid));
    }
}
