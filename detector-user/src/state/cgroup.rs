//! Container attribution from cgroup paths.
//!
//! Every OCI runtime names the cgroup it creates for a container after the container's id, in one
//! of a few layouts: a systemd scope (`<prefix>-<id>.scope`, the systemd cgroup driver) or a plain
//! directory (`<parent>/<id>`, the cgroupfs driver). A process keeps that cgroup when it leaves the
//! container's namespaces, which is what makes the cgroup the container's identity here.

use std::borrow::Cow;

/// Which container runtime created a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
    Runc,
    Unknown,
}

impl Runtime {
    /// The name used in alerts (`container.runtime`); part of the public contract.
    pub fn as_str(&self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Runc => "runc",
            Runtime::Unknown => "unknown",
        }
    }
}

/// What a cgroup path alone says about the container a process belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    /// The full 64-hex container id.
    pub id: String,
    pub runtime: Runtime,
    /// The Kubernetes pod uid, with dashes, when the path runs through a pod cgroup.
    pub pod_uid: Option<String>,
}

/// Systemd unit prefixes that runtimes give a container's scope (systemd driver) or directory
/// (cgroupfs driver), followed by the container id.
///
/// The monitors `crio-conmon-<id>` and `libpod-conmon-<id>` also start with a runtime prefix, but
/// what follows it is not a bare id, so they never match: conmon is the host-side supervisor, not
/// the container.
const RUNTIME_PREFIXES: [(&str, Runtime); 7] = [
    ("docker-", Runtime::Docker),
    ("cri-containerd-", Runtime::Containerd),
    ("nerdctl-", Runtime::Containerd),
    ("crio-", Runtime::CriO),
    // `podman --cgroups=split` puts the container below the unit that started podman.
    ("libpod-payload-", Runtime::Podman),
    ("libpod-", Runtime::Podman),
    ("runc-", Runtime::Runc),
];

/// Classifies a cgroup path as a container's, or None for a host cgroup.
///
/// The outermost component naming a container wins: a sub-cgroup the container made for itself
/// (`.../<id>.scope/init.scope`, podman's `/container`) and a nested container (docker-in-docker,
/// a kind node's pods) both belong, as the host's runtime sees it, to the outer container. A pod
/// uid is taken only from the components above that container, so it is the outer container's.
pub fn classify(path: &str) -> Option<ContainerRef> {
    let components: Vec<&str> = path
        .split('/')
        .filter(|component| !component.is_empty())
        .collect();
    components
        .iter()
        .enumerate()
        .find_map(|(index, component)| {
            let parent = index.checked_sub(1).map(|parent| components[parent]);
            let (id, runtime) = container_in_component(component, parent)?;
            Some(ContainerRef {
                id,
                runtime,
                pod_uid: pod_uid_in(&components[..=index]),
            })
        })
}

fn container_in_component(component: &str, parent: Option<&str>) -> Option<(String, Runtime)> {
    let unit = unit_name(component);
    let name = unit.strip_suffix(".scope").unwrap_or(&unit);
    if is_container_id(name) {
        return Some((name.to_owned(), runtime_from_parent(parent)));
    }
    RUNTIME_PREFIXES.iter().find_map(|(prefix, runtime)| {
        let id = name.strip_prefix(prefix)?;
        is_container_id(id).then(|| (id.to_owned(), *runtime))
    })
}

/// runc under the cgroupfs driver takes a systemd-style cgroupsPath (`slice:prefix:name`) as a
/// literal directory name; a kubelet and a containerd that disagree on the cgroup driver leave
/// exactly that behind. Read such a component as the unit `<prefix>-<name>` it was meant to be.
fn unit_name(component: &str) -> Cow<'_, str> {
    match component.split(':').collect::<Vec<_>>()[..] {
        [_slice, prefix, name] => Cow::Owned(format!("{prefix}-{name}")),
        _ => Cow::Borrowed(component),
    }
}

/// A bare id under the cgroupfs driver says nothing of its runtime, except that dockerd names the
/// parent `docker`. A bare id under a pod cgroup (k3s, or containerd with the cgroupfs driver)
/// could be any CRI runtime, so it stays Unknown.
fn runtime_from_parent(parent: Option<&str>) -> Runtime {
    match parent {
        Some("docker") => Runtime::Docker,
        _ => Runtime::Unknown,
    }
}

const CONTAINER_ID_LEN: usize = 64;

fn is_container_id(candidate: &str) -> bool {
    candidate.len() == CONTAINER_ID_LEN && candidate.bytes().all(is_lower_hex)
}

fn is_lower_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

/// The pod uid of the innermost pod cgroup among `components`: `pod<uid>` (cgroupfs driver) or
/// `<qos-slice>-pod<uid with '_' for '-'>.slice` (systemd driver, where '-' means nesting).
fn pod_uid_in(components: &[&str]) -> Option<String> {
    components
        .iter()
        .rev()
        .flat_map(|component| component.split(':'))
        .find_map(pod_uid_of)
}

fn pod_uid_of(component: &str) -> Option<String> {
    let name = component.strip_suffix(".slice").unwrap_or(component);
    let (before, uid) = name.rsplit_once("pod")?;
    if !(before.is_empty() || before.ends_with('-')) {
        return None;
    }
    let uid = uid.replace('_', "-");
    is_pod_uid(&uid).then_some(uid)
}

/// Pod uids are RFC 4122 UUIDs, except for static pods, whose uid the kubelet derives from a hash
/// of the manifest: 32 hex digits without dashes.
fn is_pod_uid(candidate: &str) -> bool {
    const DASHES: [usize; 4] = [8, 13, 18, 23];
    let bytes = candidate.as_bytes();
    let is_uuid = bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| {
            if DASHES.contains(&index) {
                *byte == b'-'
            } else {
                is_lower_hex(*byte)
            }
        });
    let is_static_pod_hash = bytes.len() == 32 && bytes.iter().copied().all(is_lower_hex);
    is_uuid || is_static_pod_hash
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f797c539e6c745de61a93ca3ff892358ecbcaccd8414d5db545c38428142970";
    const POD_UID: &str = "63b3ebfc-2890-11e9-8154-16bf8ef8d9dc";

    fn expect(path: &str, id: &str, runtime: Runtime, pod_uid: Option<&str>) {
        assert_eq!(
            classify(path),
            Some(ContainerRef {
                id: id.to_owned(),
                runtime,
                pod_uid: pod_uid.map(String::from),
            }),
            "path {path}"
        );
    }

    #[test]
    fn runtime_names_are_the_alert_contract() {
        let names: Vec<&str> = [
            Runtime::Docker,
            Runtime::Containerd,
            Runtime::CriO,
            Runtime::Podman,
            Runtime::Runc,
            Runtime::Unknown,
        ]
        .iter()
        .map(Runtime::as_str)
        .collect();
        assert_eq!(
            names,
            ["docker", "containerd", "cri-o", "podman", "runc", "unknown"]
        );
    }

    #[test]
    fn classifies_docker_paths() {
        let cases = [
            // cgroupfs driver, v1 and v2
            format!("/docker/{ID}"),
            // systemd driver (CentOS 7, and every v2 systemd host)
            format!("/system.slice/docker-{ID}.scope"),
            format!("/docker.slice/docker-{ID}.scope"),
            // rootless docker, under the user's systemd manager
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{ID}.scope"),
            format!("/user.slice/user-1000.slice/user@1000.service/docker-{ID}.scope"),
            // systemd running inside the container made its own sub-cgroups
            format!("/system.slice/docker-{ID}.scope/init.scope"),
            format!("/docker/{ID}/system.slice/nginx.service"),
        ];
        for path in &cases {
            expect(path, ID, Runtime::Docker, None);
        }
    }

    #[test]
    fn classifies_kubernetes_paths_with_pod_uid() {
        let uid_ = POD_UID.replace('-', "_");
        let cases = [
            // cgroupfs driver (k3s, minikube, GKE): nothing names the runtime
            (
                format!("/kubepods/besteffort/pod{POD_UID}/{ID}"),
                Runtime::Unknown,
            ),
            (
                format!("/kubepods/burstable/pod{POD_UID}/{ID}"),
                Runtime::Unknown,
            ),
            // guaranteed QoS has no QoS level in the path
            (format!("/kubepods/pod{POD_UID}/{ID}"), Runtime::Unknown),
            // systemd driver, containerd
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
                ),
                Runtime::Containerd,
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/cri-containerd-{ID}.scope"
                ),
                Runtime::Containerd,
            ),
            (
                format!("/kubepods.slice/kubepods-pod{uid_}.slice/cri-containerd-{ID}.scope"),
                Runtime::Containerd,
            ),
            // kind and other kubelets started with a kubelet.slice cgroup root
            (
                format!(
                    "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{uid_}.slice/cri-containerd-{ID}.scope"
                ),
                Runtime::Containerd,
            ),
            // systemd driver, CRI-O; cgroupfs driver, CRI-O
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/crio-{ID}.scope"
                ),
                Runtime::CriO,
            ),
            (
                format!("/kubepods/besteffort/pod{POD_UID}/crio-{ID}"),
                Runtime::CriO,
            ),
            // dockershim era: systemd driver, docker runtime
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/docker-{ID}.scope"
                ),
                Runtime::Docker,
            ),
            // containerd with the cgroupfs driver under a systemd-driver kubelet
            (
                format!("/kubepods-besteffort-pod{uid_}.slice:cri-containerd:{ID}"),
                Runtime::Containerd,
            ),
            // seen from inside another cgroup namespace
            (format!("/../../pod{POD_UID}/{ID}"), Runtime::Unknown),
        ];
        for (path, runtime) in &cases {
            expect(path, ID, *runtime, Some(POD_UID));
        }
    }

    #[test]
    fn static_pod_uid_is_a_hash_without_dashes() {
        let hash = "bd12dd3393227d950605a2444b13c27a";
        expect(
            &format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{hash}.slice/cri-containerd-{ID}.scope"
            ),
            ID,
            Runtime::Containerd,
            Some(hash),
        );
    }

    #[test]
    fn classifies_podman_paths() {
        let cases = [
            format!("/machine.slice/libpod-{ID}.scope"),
            // crun moves the payload into a `container` sub-cgroup
            format!("/machine.slice/libpod-{ID}.scope/container"),
            // cgroupfs driver
            format!("/libpod_parent/libpod-{ID}"),
            // rootless
            format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
            ),
            format!("/user.slice/user-1000.slice/user@1000.service/libpod-{ID}"),
            // --cgroups=split, as cephadm runs its daemons
            format!(
                "/system.slice/system-ceph-f952f5be-565c-11f0-ab72-0affea283157.slice/ceph-f952f5be-565c-11f0-ab72-0affea283157@mon.node-1.service/libpod-payload-{ID}"
            ),
        ];
        for path in &cases {
            expect(path, ID, Runtime::Podman, None);
        }
    }

    #[test]
    fn classifies_runc_and_nerdctl_paths() {
        expect(
            &format!("/system.slice/runc-{ID}.scope"),
            ID,
            Runtime::Runc,
            None,
        );
        expect(
            &format!("/system.slice/nerdctl-{ID}.scope"),
            ID,
            Runtime::Containerd,
            None,
        );
        // runc with the cgroupfs driver takes any cgroupsPath; the parent tells nothing here
        for path in [
            format!("/h-test/{ID}"),
            format!("/{ID}"),
            format!("/default/{ID}"),
        ] {
            expect(&path, ID, Runtime::Unknown, None);
        }
    }

    #[test]
    fn outermost_container_wins() {
        let inner = "a09bc17f5aa29b0dbdec9ede5f46cf1396d2405917ab02e6f1eb1019f388396e";
        // docker-in-docker
        expect(
            &format!("/docker/{ID}/docker/{inner}"),
            ID,
            Runtime::Docker,
            None,
        );
        // a pod inside a kind node, seen from the host: the pod uid belongs to the inner
        // container, not to the node container that is attributed
        expect(
            &format!(
                "/system.slice/docker-{ID}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{}.slice/cri-containerd-{inner}.scope",
                POD_UID.replace('-', "_")
            ),
            ID,
            Runtime::Docker,
            None,
        );
    }

    #[test]
    fn pause_containers_are_containers() {
        let sandbox = "d7dfb4a21fe1703a8537e60d5af248af729315d187b24a538102d14874c8117d";
        expect(
            &format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{sandbox}.scope",
                POD_UID.replace('-', "_")
            ),
            sandbox,
            Runtime::Containerd,
            Some(POD_UID),
        );
    }

    #[test]
    fn host_cgroups_are_not_containers() {
        let cases = [
            "/".to_owned(),
            String::new(),
            "/init.scope".to_owned(),
            "/system.slice/sshd.service".to_owned(),
            "/system.slice/docker.service".to_owned(),
            "/system.slice/containerd.service".to_owned(),
            "/system.slice/crio.service".to_owned(),
            "/user.slice/user-1000.slice/session-3.scope".to_owned(),
            "/user.slice/user-1000.slice/user@1000.service/init.scope".to_owned(),
            "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service".to_owned(),
            // this development VM's own sandbox cgroup
            "/process_api/f50badd030fe3a63272c3ade5196d7e2".to_owned(),
            "/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope".to_owned(),
            "/docker/buildkit/t4967jvf8rbufklrhkicskyes".to_owned(),
            // the pod and QoS cgroups themselves hold no container
            format!("/kubepods/besteffort/pod{POD_UID}"),
            "/kubepods.slice/kubepods-besteffort.slice".to_owned(),
            // container monitors run on the host side
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/crio-conmon-{ID}.scope",
                POD_UID.replace('-', "_")
            ),
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            // not a full, lowercase id
            "/docker/4f797c539e6c".to_owned(),
            format!("/docker/{}", ID.to_uppercase()),
            format!("/docker/{ID}0"),
            format!("/system.slice/docker-{ID}.service.d"),
            format!("/system.slice/unknown-{ID}.scope"),
        ];
        for path in &cases {
            assert_eq!(classify(path), None, "path {path}");
        }
    }
}
