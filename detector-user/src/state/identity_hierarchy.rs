//! The identity hierarchy: the one cgroup hierarchy whose cgroups say which container a
//! process belongs to, read the same way by the kernel (a cgroup id per task) and by the agent
//! (paths). Where v1 controllers are mounted (v1 and hybrid hosts) it is the hierarchy of one
//! that every runtime joins: runtimes before runc 1.0 left the unified line of a hybrid host
//! at their own service. On a cgroup2-only host it is the unified hierarchy.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use procfs::{ProcessCGroup, process::MountInfo};
use walkdir::WalkDir;

/// v1 controllers to key on, best first: runtimes put every container in each of them.
const V1_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// The kernel appends this to a v2 path whose cgroup has been removed while a task (an exiting
/// one) still points at it; the task still belongs to the container it names.
const DELETED_MARK: &str = " (deleted)";

/// Which hierarchy to key on: `auto`, `unified`, or the name of a v1 controller (the
/// `cgroup_identity` setting).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Auto,
    Unified,
    Controller(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHierarchy {
    /// `None` for the unified hierarchy.
    pub controller: Option<String>,
    /// `cgroup_root.hierarchy_id`, as in /proc/PID/cgroup: 0 for the unified hierarchy.
    pub hierarchy_id: u32,
    /// Where the agent sees it mounted.
    pub mount: PathBuf,
}

impl fmt::Display for IdentityHierarchy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.controller {
            None => write!(f, "unified (cgroup2) at {}", self.mount.display()),
            Some(c) => write!(
                f,
                "cgroup v1 {c} (hierarchy {}) at {}",
                self.hierarchy_id,
                self.mount.display()
            ),
        }
    }
}

impl IdentityHierarchy {
    /// Chooses the hierarchy as this process sees the mounts and its own cgroups.
    pub fn of_this_process(choice: &Choice) -> Result<IdentityHierarchy, String> {
        let me = procfs::process::Process::myself().map_err(|e| format!("/proc/self: {e}"))?;
        let mounts = me
            .mountinfo()
            .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
        let cgroups = me
            .cgroups()
            .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        Self::choose(choice, &mounts.0, &cgroups.0)
    }

    /// Chooses the hierarchy from the agent's mounts and cgroups (`/proc/self/mountinfo`,
    /// `/proc/self/cgroup`).
    pub fn choose(
        choice: &Choice,
        mounts: &[MountInfo],
        own_cgroups: &[ProcessCGroup],
    ) -> Result<IdentityHierarchy, String> {
        let unified = || {
            mounts
                .iter()
                .find(|m| m.fs_type == "cgroup2")
                .map(|m| IdentityHierarchy {
                    controller: None,
                    hierarchy_id: 0,
                    mount: m.mount_point.clone(),
                })
        };
        let v1 = |controller: &str| {
            let mount = mounts
                .iter()
                .find(|m| m.fs_type == "cgroup" && m.super_options.contains_key(controller))?;
            let line = own_cgroups
                .iter()
                .find(|l| l.controllers.iter().any(|c| c == controller))?;
            Some(IdentityHierarchy {
                controller: Some(controller.to_owned()),
                hierarchy_id: line.hierarchy,
                mount: mount.mount_point.clone(),
            })
        };
        match choice {
            Choice::Auto => V1_CONTROLLERS
                .iter()
                .find_map(|c| v1(c))
                .or_else(unified)
                .ok_or_else(|| {
                    format!(
                        "none of the v1 controllers {} is mounted, nor cgroup2",
                        V1_CONTROLLERS.join(", ")
                    )
                }),
            Choice::Unified => unified().ok_or_else(|| "cgroup2 is not mounted".to_owned()),
            Choice::Controller(c) => {
                v1(c).ok_or_else(|| format!("no cgroup v1 hierarchy of controller {c} is mounted"))
            }
        }
    }

    /// The name of the kernel's `enum cgroup_subsys_id` enumerator for the controller, whose
    /// value indexes `css_set.subsys`.
    pub fn subsys_enumerator(&self) -> Option<String> {
        self.controller.as_ref().map(|c| format!("{c}_cgrp_id"))
    }

    /// A process's cgroup path in this hierarchy, from its /proc/PID/cgroup lines.
    pub fn path_of<'a>(&self, cgroups: &'a [ProcessCGroup]) -> Option<&'a str> {
        let line = cgroups.iter().find(|l| match &self.controller {
            None => l.hierarchy == 0 && l.controllers.is_empty(),
            Some(c) => l.controllers.iter().any(|have| have == c),
        })?;
        let path = line.pathname.as_str();
        Some(path.strip_suffix(DELETED_MARK).unwrap_or(path))
    }

    /// The id of the cgroup at `path` (the inode number of its directory, which is the kernel's
    /// cgroup id), if it exists.
    pub fn id_of(&self, path: &str) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.mount.join(path.trim_start_matches('/'));
        std::fs::metadata(dir).ok().map(|m| m.ino())
    }

    /// Every cgroup of the hierarchy as (id, path from the root), walking the mount. A cgroup
    /// removed during the walk is skipped.
    pub fn walk(&self) -> Vec<(u64, String)> {
        use std::os::unix::fs::MetadataExt;
        WalkDir::new(&self.mount)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_dir())
            .filter_map(|entry| {
                let id = entry.metadata().ok()?.ino();
                Some((id, relative_path(&self.mount, entry.path())?))
            })
            .collect()
    }
}

/// `dir` as a cgroup path: relative to the hierarchy's mount, with a leading '/'.
fn relative_path(mount: &Path, dir: &Path) -> Option<String> {
    let relative = dir.strip_prefix(mount).ok()?.to_str()?;
    Some(format!("/{relative}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970";
    const POD_UID: &str = "63b3ebfc-2890-11e9-8154-16bf8ef8d9dc";
    use crate::state::cgroup::{ContainerRef, Runtime, classify};
    use procfs::{FromBufRead, ProcessCGroups, process::MountInfos};

    const HYBRID_MOUNTS: &str = "\
25 30 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
28 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
";
    const HYBRID_CGROUPS: &str = "\
9:name=systemd:/
4:memory:/docker/abc
1:cpu:/docker/abc
0::/docker/abc (deleted)
";

    fn mounts(text: &str) -> Vec<MountInfo> {
        MountInfos::from_buf_read(text.as_bytes()).unwrap().0
    }

    fn cgroups(text: &str) -> Vec<ProcessCGroup> {
        ProcessCGroups::from_buf_read(text.as_bytes()).unwrap().0
    }

    #[test]
    fn prefers_a_v1_controller_and_takes_the_unified_hierarchy_on_request() {
        let (m, c) = (mounts(HYBRID_MOUNTS), cgroups(HYBRID_CGROUPS));
        let auto = IdentityHierarchy::choose(&Choice::Auto, &m, &c).unwrap();
        assert_eq!(auto.controller.as_deref(), Some("memory"));
        assert_eq!(auto.hierarchy_id, 4);
        assert_eq!(auto.mount, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(auto.subsys_enumerator().as_deref(), Some("memory_cgrp_id"));
        assert_eq!(auto.path_of(&c), Some("/docker/abc"));

        let unified = IdentityHierarchy::choose(&Choice::Unified, &m, &c).unwrap();
        assert_eq!(
            (unified.controller.as_deref(), unified.hierarchy_id),
            (None, 0)
        );
        assert_eq!(unified.mount, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(unified.subsys_enumerator(), None);
        assert_eq!(
            unified.path_of(&c),
            Some("/docker/abc"),
            "without (deleted)"
        );

        assert!(IdentityHierarchy::choose(&Choice::Controller("pids".into()), &m, &c).is_err());
    }

    #[test]
    fn takes_the_unified_hierarchy_on_cgroup2_only_hosts() {
        let m = mounts("26 25 0:23 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n");
        let c = cgroups("0::/docker/abc\n");
        let chosen = IdentityHierarchy::choose(&Choice::Auto, &m, &c).unwrap();
        assert_eq!(chosen.controller, None);
        assert_eq!(chosen.mount, Path::new("/sys/fs/cgroup"));
        assert!(IdentityHierarchy::choose(&Choice::Controller("memory".into()), &m, &c).is_err());
    }

    #[test]
    fn walks_a_tree_with_inode_ids_and_rooted_paths() {
        let root = std::env::temp_dir().join(format!("escdet-walk-{}", std::process::id()));
        std::fs::create_dir_all(root.join("docker/abc")).unwrap();
        let hierarchy = IdentityHierarchy {
            controller: None,
            hierarchy_id: 0,
            mount: root.clone(),
        };
        let mut walked = hierarchy.walk();
        walked.sort_by(|a, b| a.1.cmp(&b.1));
        let paths: Vec<&str> = walked.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(paths, ["/", "/docker", "/docker/abc"]);
        assert_eq!(hierarchy.id_of("/docker/abc"), Some(walked[2].0));
        assert_eq!(hierarchy.id_of("/missing"), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    /// Whole `/proc/PID/cgroup` files: what the file looked like, and the path and container it
    /// should be attributed to.
    struct HostCase {
        name: &'static str,
        proc_cgroup: String,
        path: Option<String>,
        container: Option<(&'static str, Runtime, Option<&'static str>)>,
    }

    fn v1_lines(layout: &[(&str, &str)], unified: &str) -> String {
        let mut text: String = layout
            .iter()
            .map(|(hierarchy, path)| format!("{hierarchy}:{path}\n"))
            .collect();
        text.push_str(&format!("0::{unified}\n"));
        text
    }

    fn v1_all_controllers(path: &str, unified: &str) -> String {
        v1_lines(
            &[
                ("12", &format!("hugetlb:{path}")),
                ("11", &format!("memory:{path}")),
                ("10", &format!("perf_event:{path}")),
                ("9", &format!("net_cls,net_prio:{path}")),
                ("8", &format!("cpuset:{path}")),
                ("7", &format!("freezer:{path}")),
                ("6", &format!("pids:{path}")),
                ("5", &format!("blkio:{path}")),
                ("4", &format!("devices:{path}")),
                ("3", "rdma:/"),
                ("2", &format!("cpu,cpuacct:{path}")),
                ("1", &format!("name=systemd:{path}")),
            ],
            unified,
        )
    }

    fn host_cases() -> Vec<HostCase> {
        let uid_ = POD_UID.replace('-', "_");
        let crio_scope = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/crio-{ID}.scope"
        );
        let crio_conmon = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/crio-conmon-{ID}.scope"
        );
        let k8s_v2 = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/cri-containerd-{ID}.scope"
        );
        vec![
            HostCase {
                // Ubuntu 20.04, docker with the cgroupfs driver and runc < 1.0: the v2 line of
                // the hybrid layout still shows the runtime's own service
                name: "v1 docker host",
                proc_cgroup: v1_all_controllers(
                    &format!("/docker/{ID}"),
                    "/system.slice/containerd.service",
                ),
                path: Some(format!("/docker/{ID}")),
                container: Some((ID, Runtime::Docker, None)),
            },
            HostCase {
                name: "v1 docker host, systemd driver",
                proc_cgroup: v1_all_controllers(&format!("/system.slice/docker-{ID}.scope"), "/"),
                path: Some(format!("/system.slice/docker-{ID}.scope")),
                container: Some((ID, Runtime::Docker, None)),
            },
            HostCase {
                name: "v2 systemd kubernetes node",
                proc_cgroup: format!("0::{k8s_v2}\n"),
                path: Some(k8s_v2.clone()),
                container: Some((ID, Runtime::Containerd, Some(POD_UID))),
            },
            HostCase {
                name: "v2 kubelet itself",
                proc_cgroup: "0::/system.slice/kubelet.service\n".to_owned(),
                path: None,
                container: None,
            },
            HostCase {
                // this VM: runc 1.1 with the cgroupfs driver joins the v2 hierarchy too
                name: "hybrid host, runc container",
                proc_cgroup: v1_lines(
                    &[
                        ("9", &format!("name=systemd:/h-test/{ID}")),
                        ("8", &format!("pids:/h-test/{ID}")),
                        ("7", &format!("blkio:/h-test/{ID}")),
                        ("6", &format!("freezer:/h-test/{ID}")),
                        ("5", &format!("devices:/h-test/{ID}")),
                        ("4", &format!("memory:/h-test/{ID}")),
                        ("3", &format!("cpuset:/h-test/{ID}")),
                        ("2", &format!("cpuacct:/h-test/{ID}")),
                        ("1", &format!("cpu:/h-test/{ID}")),
                    ],
                    &format!("/h-test/{ID}"),
                ),
                path: Some(format!("/h-test/{ID}")),
                container: Some((ID, Runtime::Unknown, None)),
            },
            HostCase {
                name: "hybrid host, host process",
                proc_cgroup: v1_lines(
                    &[
                        ("9", "name=systemd:/"),
                        ("8", "pids:/"),
                        ("7", "blkio:/"),
                        ("6", "freezer:/"),
                        ("5", "devices:/"),
                        ("4", "memory:/process_api/f50badd030fe3a63272c3ade5196d7e2"),
                        ("3", "cpuset:/"),
                        ("2", "cpuacct:/"),
                        ("1", "cpu:/"),
                    ],
                    "/",
                ),
                path: None,
                container: None,
            },
            HostCase {
                // OpenShift 4 on RHEL 8, cgroup v1, systemd driver
                name: "v1 CRI-O node, container",
                proc_cgroup: v1_all_controllers(&crio_scope, "/"),
                path: Some(crio_scope.clone()),
                container: Some((ID, Runtime::CriO, Some(POD_UID))),
            },
            HostCase {
                name: "v1 CRI-O node, conmon",
                proc_cgroup: v1_all_controllers(&crio_conmon, "/"),
                path: None,
                container: None,
            },
            HostCase {
                name: "v2 podman host, container",
                proc_cgroup: format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
                path: Some(format!("/machine.slice/libpod-{ID}.scope/container")),
                container: Some((ID, Runtime::Podman, None)),
            },
            HostCase {
                name: "v2 podman host, conmon",
                proc_cgroup: format!("0::/machine.slice/libpod-conmon-{ID}.scope\n"),
                path: None,
                container: None,
            },
            HostCase {
                name: "v2 k3s node, cgroupfs driver",
                proc_cgroup: format!("0::/kubepods/burstable/pod{POD_UID}/{ID}\n"),
                path: Some(format!("/kubepods/burstable/pod{POD_UID}/{ID}")),
                container: Some((ID, Runtime::Unknown, Some(POD_UID))),
            },
            HostCase {
                name: "v2 container exiting after its cgroup was removed",
                proc_cgroup: format!("0::/system.slice/docker-{ID}.scope (deleted)\n"),
                path: Some(format!("/system.slice/docker-{ID}.scope")),
                container: Some((ID, Runtime::Docker, None)),
            },
        ]
    }

    /// The hierarchy `auto` picks on a host whose processes look like `proc_cgroup`: a v1
    /// controller when the file has one, else the unified hierarchy.
    fn auto_hierarchy(lines: &[ProcessCGroup]) -> IdentityHierarchy {
        let v1 = lines
            .iter()
            .any(|l| l.controllers.iter().any(|c| c == "memory"));
        IdentityHierarchy {
            controller: v1.then(|| "memory".to_owned()),
            hierarchy_id: 0,
            mount: "/sys/fs/cgroup".into(),
        }
    }

    #[test]
    fn attributes_whole_proc_cgroup_files() {
        for case in host_cases() {
            let lines = cgroups(&case.proc_cgroup);
            let path = auto_hierarchy(&lines)
                .path_of(&lines)
                .filter(|p| classify(p).is_some());
            assert_eq!(path, case.path.as_deref(), "{}", case.name);
            let expected = case.container.map(|(id, runtime, pod_uid)| ContainerRef {
                id: id.to_owned(),
                runtime,
                pod_uid: pod_uid.map(String::from),
            });
            assert_eq!(path.and_then(classify), expected, "{}", case.name);
        }
    }
}
