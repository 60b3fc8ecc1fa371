//! The container cgroups of the identity hierarchy, by id: found by walking the hierarchy at
//! start, then learnt from the kernel's mkdir and rmdir events. Every verdict is also written
//! to the kernel's container-cgroup map, so that the kernel filters by the same identity.

use std::collections::HashMap;

use procfs::process::Process as ProcfsProcess;

use super::{
    cgroup::{self, ContainerRef},
    identity_hierarchy::IdentityHierarchy,
};
use crate::kernel::container_cgroups::ContainerCgroups;

pub struct ContainerCgroup {
    pub path: String,
    pub container: ContainerRef,
}

pub struct CgroupTable {
    hierarchy: IdentityHierarchy,
    /// Only containers' cgroups: host cgroups are what the kernel's map leaves out.
    containers: HashMap<u64, ContainerCgroup>,
    kernel: Box<dyn ContainerCgroups>,
}

impl CgroupTable {
    pub fn new(hierarchy: IdentityHierarchy, kernel: Box<dyn ContainerCgroups>) -> CgroupTable {
        CgroupTable {
            hierarchy,
            containers: HashMap::new(),
            kernel,
        }
    }

    pub fn hierarchy(&self) -> &IdentityHierarchy {
        &self.hierarchy
    }

    /// Classifies every cgroup that exists now. Runs once the kernel records new cgroups
    /// itself, so none falls between the walk and the kernel's records. Returns how many
    /// cgroups it walked and how many are containers'.
    pub fn load_existing(&mut self) -> (usize, usize) {
        let walked = self.hierarchy.walk();
        for (id, path) in &walked {
            if cgroup::classify(path).is_some() {
                self.learn(*id, path);
            }
        }
        (walked.len(), self.containers.len())
    }

    /// A cgroup was made (the kernel recorded it as pending, or as a container's below a
    /// container's): the agent's verdict replaces the kernel's record. Returns the container.
    pub fn learn(&mut self, id: u64, path: &str) -> Option<&ContainerRef> {
        let container = cgroup::classify(path);
        self.kernel.classify(id, container.is_some());
        let container = container?;
        let entry = ContainerCgroup {
            path: path.to_owned(),
            container,
        };
        Some(
            &self
                .containers
                .entry(id)
                .insert_entry(entry)
                .into_mut()
                .container,
        )
    }

    pub fn forget(&mut self, id: u64) {
        self.containers.remove(&id);
    }

    /// The container cgroup `id`, which process `pid` is in. A cgroup the table has no verdict
    /// on (an event about it was lost, or it is a host's) is found through the process's
    /// /proc entry, or, once the process is gone, by walking the hierarchy, and classified.
    pub fn lookup(&mut self, id: u64, pid: u32) -> Option<&ContainerCgroup> {
        if !self.containers.contains_key(&id) {
            let path = match ProcfsProcess::new(pid as i32).and_then(|p| p.cgroups()) {
                Ok(cgroups) => self.hierarchy.path_of(&cgroups.0)?.to_owned(),
                Err(_) => self.find(id)?,
            };
            // The process may have moved since the event: the path must still be that cgroup.
            if self.hierarchy.id_of(&path) != Some(id) {
                return None;
            }
            self.learn(id, &path);
        }
        self.containers.get(&id)
    }

    /// The path of cgroup `id`, from a walk of the hierarchy.
    fn find(&self, id: u64) -> Option<String> {
        self.hierarchy
            .walk()
            .into_iter()
            .find_map(|(found, path)| (found == id).then_some(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        os::unix::fs::MetadataExt,
        path::PathBuf,
        sync::{Arc, Mutex},
    };

    const ID: &str = "3f2a5c6d7e8f90123456789abcdef0123456789abcdef0123456789abcdef012";

    /// The verdicts the table gave the kernel: (cgroup id, is a container's).
    type Verdicts = Arc<Mutex<Vec<(u64, bool)>>>;

    pub struct Recorder(pub Verdicts);
    impl ContainerCgroups for Recorder {
        fn classify(&mut self, id: u64, is_container: bool) {
            self.0.lock().unwrap().push((id, is_container));
        }
    }

    fn table(mount: PathBuf) -> (CgroupTable, Verdicts) {
        let verdicts = Arc::new(Mutex::new(Vec::new()));
        let hierarchy = IdentityHierarchy {
            controller: None,
            hierarchy_id: 0,
            mount,
        };
        let table = CgroupTable::new(hierarchy, Box::new(Recorder(verdicts.clone())));
        (table, verdicts)
    }

    #[test]
    fn tells_the_kernel_every_verdict_and_keeps_containers_only() {
        let (mut table, verdicts) = table(PathBuf::from("/nonexistent"));
        assert_eq!(
            table
                .learn(7, &format!("/docker/{ID}"))
                .map(|c| c.id.as_str()),
            Some(ID)
        );
        assert!(table.learn(8, "/system.slice/cron.service").is_none());
        assert_eq!(*verdicts.lock().unwrap(), [(7, true), (8, false)]);
        // Pid 0 has no /proc entry: only what the table knows answers.
        let path = |t: &mut CgroupTable, id| t.lookup(id, 0).map(|c| c.path.clone());
        assert_eq!(path(&mut table, 7), Some(format!("/docker/{ID}")));
        assert_eq!(path(&mut table, 8), None);
        table.forget(7);
        assert_eq!(path(&mut table, 7), None);
    }

    #[test]
    fn loads_the_containers_of_an_existing_tree() {
        let root = std::env::temp_dir().join(format!("escdet-cgtable-{}", std::process::id()));
        std::fs::create_dir_all(root.join(format!("docker/{ID}/sub"))).unwrap();
        std::fs::create_dir_all(root.join("system.slice")).unwrap();
        let (mut table, verdicts) = table(root.clone());
        table.load_existing();
        let id = |path: &str| std::fs::metadata(root.join(path)).unwrap().ino();
        let expected = [id(&format!("docker/{ID}")), id(&format!("docker/{ID}/sub"))];
        let mut recorded = verdicts.lock().unwrap().clone();
        recorded.sort();
        let mut want: Vec<_> = expected.iter().map(|&i| (i, true)).collect();
        want.sort();
        assert_eq!(
            recorded, want,
            "the container and its sub-cgroup, nothing else"
        );
        assert!(table.lookup(id("system.slice"), 0).is_none());
        // A container cgroup whose mkdir the table never heard of, of a process already gone
        // (pid 0 has no /proc entry): found by a walk.
        let late = format!("docker/{}", "ab".repeat(32));
        std::fs::create_dir_all(root.join(&late)).unwrap();
        assert_eq!(
            table.lookup(id(&late), 0).map(|c| c.path.clone()),
            Some(format!("/{late}"))
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
