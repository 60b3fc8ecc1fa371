//! The cgroup directories runc makes for a container, and their removal.
//!
//! runc removes the container's own directory in every hierarchy but leaves the parents it had
//! to create (`/docker`, `/kubepods/besteffort/pod<uid>`), which a real runtime or the kubelet
//! would own; here the tests own them, so the harness removes the ones it caused.

use std::{
    collections::BTreeSet,
    fs, io,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
    time::Duration,
};

use crate::{mounts, poll};

/// Parent directories this test process caused to exist. Process-wide because containers share
/// parents: the last container to go removes them.
static CREATED_PARENTS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// The cgroup directories of one container, in every mounted hierarchy.
pub struct CgroupDirs {
    cgroups_path: String,
}

impl CgroupDirs {
    /// Call before runc creates the container: remembers which parents do not exist yet.
    pub fn prepare(cgroups_path: &str) -> CgroupDirs {
        let relative = Path::new(cgroups_path.trim_start_matches('/'));
        let mut created = CREATED_PARENTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for root in hierarchies() {
            for parent in relative.ancestors().skip(1) {
                let dir = root.join(parent);
                if dir != root && !dir.exists() {
                    created.insert(dir);
                }
            }
        }
        CgroupDirs {
            cgroups_path: cgroups_path.to_owned(),
        }
    }

    /// Removes the container's own directories, then every created parent that is empty by now.
    pub fn remove(&self) {
        for dir in existing_dirs(&self.cgroups_path) {
            remove_when_empty(&dir);
        }
        let mut created = CREATED_PARENTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Reverse order visits children before their parents. A parent that still has children
        // (another live container) fails to go and is tried again by the next container.
        let gone: Vec<PathBuf> = created
            .iter()
            .rev()
            .filter(|dir| {
                let _ = fs::remove_dir(dir);
                !dir.exists()
            })
            .cloned()
            .collect();
        for dir in gone {
            created.remove(&dir);
        }
    }
}

/// The directories of `cgroups_path` that exist now, one per hierarchy at most.
pub fn existing_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let relative = cgroups_path.trim_start_matches('/');
    hierarchies()
        .into_iter()
        .map(|root| root.join(relative))
        .filter(|dir| dir.exists())
        .collect()
}

/// Mount points of every cgroup v1 and v2 hierarchy on the host.
pub fn hierarchies() -> Vec<PathBuf> {
    mounts::host_mounts()
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| m.mount_point)
        .collect()
}

/// A cgroup directory can only be removed once its last task has exited, which lags a SIGKILL.
fn remove_when_empty(dir: &Path) {
    let removed = poll::eventually(Duration::from_secs(5), || match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    });
    if !removed {
        eprintln!("could not remove cgroup {}", dir.display());
    }
}

/// True while the named cgroup v1 hierarchy `name` exists, mounted or not.
pub fn hierarchy_exists(name: &str) -> bool {
    let own = fs::read_to_string("/proc/self/cgroup").expect("reading /proc/self/cgroup");
    own.lines().any(|l| l.contains(&format!(":name={name}:")))
}

/// Cgroup v1 hierarchies made by the tests (named `escdet…`) that still exist. A hierarchy
/// outlives its last mount while it has child cgroups, and every process then lists it in
/// /proc/self/cgroup.
pub fn stray_hierarchies() -> Vec<String> {
    fs::read_to_string("/proc/self/cgroup")
        .expect("reading /proc/self/cgroup")
        .lines()
        .filter(|l| l.contains("escdet"))
        .map(str::to_owned)
        .collect()
}
