//! Container metadata from the OCI runtime's on-disk state, without talking to any daemon.
//!
//! A low-level runtime keeps one directory per container under its state root (`--root`), named
//! after the container id. The orchestrator above it (containerd's CRI plugin, CRI-O, podman)
//! describes the container in the OCI spec's annotations; those are the only metadata reachable
//! there. runc 1.1 copies every annotation into its `state.json` as a `key=value` label, next to
//! `bundle=<bundle dir>`; crun keeps a copy of the spec (`config.json`) in its state directory and
//! the bundle in its `status` file; the bundle's own `config.json` holds the spec for all of them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cgroup::Runtime;

/// A runtime state root, and the runtime to report for containers found there unless their
/// annotations name a more specific one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRoot {
    pub dir: PathBuf,
    pub runtime: Runtime,
}

/// What the runtime's state says about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeState {
    pub runtime: Runtime,
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_uid: Option<String>,
}

/// The state roots of the usual runtimes, most specific first. CRI-O and rootful podman use
/// runc's and crun's default roots, so their containers are told apart by annotation.
pub fn default_roots() -> Vec<RuntimeRoot> {
    [
        ("/run/docker/runtime-runc/moby", Runtime::Docker),
        ("/run/containerd/runc/k8s.io", Runtime::Containerd),
        ("/run/containerd/runc/default", Runtime::Containerd),
        ("/run/runc", Runtime::Runc),
        ("/run/crun", Runtime::Unknown),
    ]
    .into_iter()
    .map(|(dir, runtime)| RuntimeRoot {
        dir: PathBuf::from(dir),
        runtime,
    })
    .collect()
}

/// Looks container `id` up under `roots`, in order. None when no root has a state directory for
/// it; a directory whose files cannot be read still tells the runtime.
pub fn lookup(id: &str, roots: &[RuntimeRoot]) -> Option<RuntimeState> {
    if !is_runtime_container_id(id) {
        return None;
    }
    roots.iter().find_map(|root| {
        let state_dir = root.dir.join(id);
        state_dir
            .is_dir()
            .then(|| state_from_annotations(root.runtime, &read_annotations(&state_dir)))
    })
}

/// The ids runc accepts (`^[\w+-.]+$`), minus the two that would walk out of the root.
fn is_runtime_container_id(id: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.');
    !id.is_empty() && id != "." && id != ".." && id.chars().all(allowed)
}

pub(crate) type Annotations = HashMap<String, String>;

fn read_annotations(state_dir: &Path) -> Annotations {
    // runc (and runc-like runtimes) write state.json; crun writes status
    let state = read_json(&state_dir.join("state.json"))
        .or_else(|| read_json(&state_dir.join("status")))
        .unwrap_or(Value::Null);
    let mut annotations = annotations_in_state(&state);
    // crun's copy of the spec sits in its state dir; every runtime's original is in the bundle
    let spec_dirs = [Some(state_dir.to_path_buf()), bundle_of(&state)];
    let specs = spec_dirs
        .into_iter()
        .flatten()
        .filter_map(|dir| read_json(&dir.join("config.json")));
    for spec in specs {
        for (key, value) in string_map(&spec["annotations"]) {
            annotations.entry(key).or_insert(value);
        }
    }
    annotations
}

fn read_json(path: &Path) -> Option<Value> {
    let text = fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The label runc appends after the annotations it copied; a later one wins should an annotation
/// be called `bundle` too.
const BUNDLE_LABEL: &str = "bundle";

/// Annotations recorded in the state itself: runc's `config.labels`, or the OCI state format's
/// `annotations` object.
pub(crate) fn annotations_in_state(state: &Value) -> Annotations {
    let mut annotations = string_map(&state["annotations"]);
    annotations.extend(
        runc_labels(state)
            .filter(|(key, _)| *key != BUNDLE_LABEL)
            .map(|(key, value)| (key.to_owned(), value.to_owned())),
    );
    annotations
}

/// The bundle directory: top-level `bundle` in the OCI state format and in crun's status file,
/// the `bundle=` label in runc's state.json.
pub(crate) fn bundle_of(state: &Value) -> Option<PathBuf> {
    state["bundle"]
        .as_str()
        .or_else(|| {
            runc_labels(state)
                .filter(|(key, _)| *key == BUNDLE_LABEL)
                .map(|(_, value)| value)
                .last()
        })
        .map(PathBuf::from)
}

/// runc's `config.labels`, split at the first '=' (values may contain '=').
fn runc_labels(state: &Value) -> impl Iterator<Item = (&str, &str)> {
    state["config"]["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|label| label.split_once('='))
}

fn string_map(object: &Value) -> Annotations {
    object
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
        .collect()
}

// containerd's CRI plugin (annotations since containerd 1.6.11 / 1.7 for the sandbox uid).
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
const CRI_IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
const CRI_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const CRI_SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
// CRI-O copies the kubelet's container labels into the annotations.
const KUBE_CONTAINER_NAME: &str = "io.kubernetes.container.name";
const KUBE_POD_NAME: &str = "io.kubernetes.pod.name";
const KUBE_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const KUBE_POD_UID: &str = "io.kubernetes.pod.uid";
const CRIO_IMAGE_NAME: &str = "io.kubernetes.cri-o.ImageName";
// Set by CRI-O (`cri-o`) and podman (`libpod`).
const CONTAINER_MANAGER: &str = "io.container.manager";

pub(crate) fn state_from_annotations(
    root_runtime: Runtime,
    annotations: &Annotations,
) -> RuntimeState {
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|key| annotations.get(*key))
            .filter(|value| !value.is_empty())
            .cloned()
    };
    RuntimeState {
        runtime: runtime_from_annotations(annotations).unwrap_or(root_runtime),
        name: first(&[CRI_CONTAINER_NAME, KUBE_CONTAINER_NAME]),
        image: first(&[CRI_IMAGE_NAME, CRIO_IMAGE_NAME]),
        pod_name: first(&[CRI_SANDBOX_NAME, KUBE_POD_NAME]),
        pod_namespace: first(&[CRI_SANDBOX_NAMESPACE, KUBE_POD_NAMESPACE]),
        pod_uid: first(&[CRI_SANDBOX_UID, KUBE_POD_UID]),
    }
}

/// The orchestrator that wrote the spec, when its annotations say so: a root such as `/run/runc`
/// or `/run/crun` is shared by plain runc/crun, CRI-O and podman.
fn runtime_from_annotations(annotations: &Annotations) -> Option<Runtime> {
    match annotations.get(CONTAINER_MANAGER).map(String::as_str) {
        Some("cri-o") => Some(Runtime::CriO),
        Some("libpod") => Some(Runtime::Podman),
        _ => annotations
            .contains_key(CRI_CONTAINER_TYPE)
            .then_some(Runtime::Containerd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const ID: &str = "3f2a9c0d5e8b7a6f1c4d2e9b8a7f6c5d4e3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f";
    const SANDBOX_ID: &str = "d7dfb4a21fe1703a8537e60d5af248af729315d187b24a538102d14874c8117d";
    const POD_UID: &str = "0b2a7c1e-5f3d-4c8e-9a61-2d4f8e7b3c10";

    /// A scratch directory removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "runtime-state-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }

        fn write(&self, relative: &str, contents: &str) -> PathBuf {
            let path = self.0.join(relative);
            fs::create_dir_all(path.parent().expect("parent")).expect("create dirs");
            fs::write(&path, contents).expect("write file");
            path
        }

        fn root(&self, relative: &str, runtime: Runtime) -> RuntimeRoot {
            RuntimeRoot {
                dir: self.0.join(relative),
                runtime,
            }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A runc 1.1 state.json as `runc run` wrote it on this VM, trimmed of mounts, devices and
    /// other fields this module does not read, with `labels` (the spec's annotations, then
    /// `bundle=`) supplied by the test.
    fn runc_state_json(bundle: &Path, annotations: &[(&str, &str)]) -> String {
        let mut labels: Vec<String> = annotations
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        labels.push(format!("bundle={}", bundle.display()));
        serde_json::json!({
            "id": ID,
            "init_process_pid": 6973,
            "init_process_start": 45536,
            "created": "2026-11-28T10:02:23.487472039Z",
            "rootless": false,
            "cgroup_paths": {
                "": format!("/sys/fs/cgroup/unified/h-test/{ID}"),
                "memory": format!("/sys/fs/cgroup/memory/h-test/{ID}"),
                "name=systemd": format!("/sys/fs/cgroup/systemd/h-test/{ID}"),
                "pids": format!("/sys/fs/cgroup/pids/h-test/{ID}")
            },
            "namespace_paths": {
                "NEWIPC": "/proc/6973/ns/ipc",
                "NEWNET": "/proc/6973/ns/net",
                "NEWNS": "/proc/6973/ns/mnt",
                "NEWPID": "/proc/6973/ns/pid",
                "NEWUTS": "/proc/6973/ns/uts"
            },
            "external_descriptors": ["/dev/null", "/dev/null", "/dev/null"],
            "intel_rdt_path": "",
            "config": {
                "rootfs": bundle.join("rootfs"),
                "readonlyfs": true,
                "hostname": "runc",
                "labels": labels,
                "no_new_keyring": false,
                "cgroups": { "path": format!("/h-test/{ID}"), "scope_prefix": "" },
                "namespaces": [
                    { "type": "NEWPID", "path": "" },
                    { "type": "NEWNET", "path": "" },
                    { "type": "NEWIPC", "path": "" },
                    { "type": "NEWUTS", "path": "" },
                    { "type": "NEWNS", "path": "" }
                ]
            }
        })
        .to_string()
    }

    /// The start of an OCI spec as `runc spec` writes it, with the given annotations.
    fn spec_json(annotations: &[(&str, &str)]) -> String {
        let annotations: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        serde_json::json!({
            "ociVersion": "1.0.2-dev",
            "process": { "terminal": false, "user": { "uid": 0, "gid": 0 }, "args": ["sh"], "cwd": "/" },
            "root": { "path": "rootfs", "readonly": true },
            "hostname": "runc",
            "annotations": annotations,
            "linux": { "namespaces": [{ "type": "pid" }, { "type": "mount" }] }
        })
        .to_string()
    }

    fn containerd_container_annotations() -> Vec<(&'static str, &'static str)> {
        vec![
            ("io.kubernetes.cri.container-name", "nginx"),
            ("io.kubernetes.cri.container-type", "container"),
            (
                "io.kubernetes.cri.image-name",
                "docker.io/library/nginx:1.27",
            ),
            ("io.kubernetes.cri.sandbox-id", SANDBOX_ID),
            ("io.kubernetes.cri.sandbox-name", "nginx-7c5ddbdf54-x2x8k"),
            ("io.kubernetes.cri.sandbox-namespace", "default"),
            ("io.kubernetes.cri.sandbox-uid", POD_UID),
        ]
    }

    #[test]
    fn containerd_container_from_runc_labels() {
        let scratch = Scratch::new();
        let bundle = scratch.0.join("bundle");
        scratch.write(
            &format!("runc/k8s.io/{ID}/state.json"),
            &runc_state_json(&bundle, &containerd_container_annotations()),
        );
        let roots = [scratch.root("runc/k8s.io", Runtime::Containerd)];
        assert_eq!(
            lookup(ID, &roots),
            Some(RuntimeState {
                runtime: Runtime::Containerd,
                name: Some("nginx".into()),
                image: Some("docker.io/library/nginx:1.27".into()),
                pod_name: Some("nginx-7c5ddbdf54-x2x8k".into()),
                pod_namespace: Some("default".into()),
                pod_uid: Some(POD_UID.into()),
            })
        );
    }

    #[test]
    fn annotations_from_the_bundle_when_state_has_none() {
        let scratch = Scratch::new();
        let bundle = scratch.0.join(format!(
            "containerd/io.containerd.runtime.v2.task/k8s.io/{ID}"
        ));
        scratch.write(
            &format!("runc/k8s.io/{ID}/state.json"),
            &runc_state_json(&bundle, &[]),
        );
        scratch.write(
            &format!("containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
            &spec_json(&containerd_container_annotations()),
        );
        let state = lookup(ID, &[scratch.root("runc/k8s.io", Runtime::Containerd)]);
        assert_eq!(
            state.and_then(|state| state.pod_name),
            Some("nginx-7c5ddbdf54-x2x8k".into())
        );
    }

    #[test]
    fn pause_sandbox_has_pod_but_no_container_name() {
        let scratch = Scratch::new();
        let sandbox = [
            ("io.kubernetes.cri.container-type", "sandbox"),
            ("io.kubernetes.cri.sandbox-id", SANDBOX_ID),
            (
                "io.kubernetes.cri.sandbox-log-directory",
                "/var/log/pods/default_nginx",
            ),
            ("io.kubernetes.cri.sandbox-name", "nginx-7c5ddbdf54-x2x8k"),
            ("io.kubernetes.cri.sandbox-namespace", "default"),
            ("io.kubernetes.cri.sandbox-uid", POD_UID),
        ];
        scratch.write(
            &format!("runc/k8s.io/{SANDBOX_ID}/state.json"),
            &runc_state_json(&scratch.0.join("bundle"), &sandbox),
        );
        let state = lookup(
            SANDBOX_ID,
            &[scratch.root("runc/k8s.io", Runtime::Containerd)],
        )
        .expect("sandbox found");
        assert_eq!(state.name, None);
        assert_eq!(state.image, None);
        assert_eq!(state.pod_uid.as_deref(), Some(POD_UID));
    }

    #[test]
    fn crio_container_under_the_shared_runc_root() {
        let scratch = Scratch::new();
        let labels_json = format!(
            r#"{{"io.kubernetes.container.name":"coredns","io.kubernetes.pod.name":"coredns-76f75df574-9dlxm","io.kubernetes.pod.namespace":"kube-system","io.kubernetes.pod.uid":"{POD_UID}"}}"#
        );
        let crio = [
            ("io.container.manager", "cri-o"),
            ("io.kubernetes.container.hash", "5c2e1b6a"),
            ("io.kubernetes.container.name", "coredns"),
            ("io.kubernetes.container.restartCount", "0"),
            ("io.kubernetes.cri-o.ContainerID", ID),
            ("io.kubernetes.cri-o.ContainerType", "container"),
            (
                "io.kubernetes.cri-o.ImageName",
                "registry.k8s.io/coredns/coredns:v1.11.1",
            ),
            ("io.kubernetes.cri-o.Labels", &labels_json),
            ("io.kubernetes.cri-o.SandboxID", SANDBOX_ID),
            ("io.kubernetes.pod.name", "coredns-76f75df574-9dlxm"),
            ("io.kubernetes.pod.namespace", "kube-system"),
            ("io.kubernetes.pod.uid", POD_UID),
        ];
        let bundle = scratch
            .0
            .join(format!("storage/overlay-containers/{ID}/userdata"));
        scratch.write(
            &format!("storage/overlay-containers/{ID}/userdata/config.json"),
            &spec_json(&crio),
        );
        scratch.write(
            &format!("runc/{ID}/state.json"),
            &runc_state_json(&bundle, &crio),
        );
        assert_eq!(
            lookup(ID, &[scratch.root("runc", Runtime::Runc)]),
            Some(RuntimeState {
                runtime: Runtime::CriO,
                name: Some("coredns".into()),
                image: Some("registry.k8s.io/coredns/coredns:v1.11.1".into()),
                pod_name: Some("coredns-76f75df574-9dlxm".into()),
                pod_namespace: Some("kube-system".into()),
                pod_uid: Some(POD_UID.into()),
            })
        );
    }

    #[test]
    fn docker_container_has_no_names_in_its_bundle() {
        let scratch = Scratch::new();
        let bundle = scratch.0.join(format!(
            "containerd/io.containerd.runtime.v2.task/moby/{ID}"
        ));
        scratch.write(
            &format!("containerd/io.containerd.runtime.v2.task/moby/{ID}/config.json"),
            &spec_json(&[]),
        );
        scratch.write(
            &format!("moby/{ID}/state.json"),
            &runc_state_json(&bundle, &[]),
        );
        assert_eq!(
            lookup(ID, &[scratch.root("moby", Runtime::Docker)]),
            Some(RuntimeState {
                runtime: Runtime::Docker,
                name: None,
                image: None,
                pod_name: None,
                pod_namespace: None,
                pod_uid: None,
            })
        );
    }

    #[test]
    fn podman_container_under_crun() {
        let scratch = Scratch::new();
        let podman = [
            ("io.container.manager", "libpod"),
            ("io.podman.annotations.autoremove", "FALSE"),
            ("org.opencontainers.image.stopSignal", "15"),
        ];
        let bundle = scratch
            .0
            .join(format!("storage/overlay-containers/{ID}/userdata"));
        let status = serde_json::json!({
            "pid": 139179,
            "process-start-time": 263473330,
            "cgroup-path": format!("/machine.slice/libpod-{ID}.scope"),
            "scope": format!("libpod-{ID}.scope"),
            "rootfs": "/var/lib/containers/storage/overlay/4c1d/merged",
            "systemd-cgroup": true,
            "bundle": bundle,
            "created": "2026-11-28T09:30:00.000293421Z",
            "owner": "root",
            "detached": true
        });
        scratch.write(&format!("crun/{ID}/status"), &status.to_string());
        scratch.write(&format!("crun/{ID}/config.json"), &spec_json(&podman));
        let state = lookup(ID, &[scratch.root("crun", Runtime::Unknown)]).expect("found");
        assert_eq!(state.runtime, Runtime::Podman);
        assert_eq!(state.name, None);
    }

    #[test]
    fn oci_state_format_with_top_level_bundle_and_annotations() {
        let scratch = Scratch::new();
        let bundle = scratch.0.join("bundle");
        scratch.write(
            "bundle/config.json",
            &spec_json(&containerd_container_annotations()),
        );
        let state = serde_json::json!({
            "ociVersion": "1.0.2",
            "id": ID,
            "status": "running",
            "pid": 4242,
            "bundle": bundle,
            "annotations": { "io.kubernetes.cri.container-name": "from-state" }
        });
        scratch.write(&format!("youki/{ID}/state.json"), &state.to_string());
        let state = lookup(ID, &[scratch.root("youki", Runtime::Unknown)]).expect("found");
        assert_eq!(state.runtime, Runtime::Containerd);
        assert_eq!(state.name.as_deref(), Some("from-state"));
        assert_eq!(state.pod_namespace.as_deref(), Some("default"));
    }

    #[test]
    fn label_values_keep_their_equals_signs_and_last_bundle_wins() {
        let scratch = Scratch::new();
        let decoy = scratch.0.join("decoy");
        let real = scratch.0.join("real");
        scratch.write(
            "decoy/config.json",
            &spec_json(&[("io.kubernetes.cri.sandbox-name", "decoy")]),
        );
        scratch.write(
            "real/config.json",
            &spec_json(&[("io.kubernetes.cri.sandbox-name", "real")]),
        );
        let bundle_annotation = decoy.display().to_string();
        scratch.write(
            &format!("runc/{ID}/state.json"),
            &runc_state_json(
                &real,
                &[
                    ("bundle", &bundle_annotation),
                    (
                        "io.kubernetes.cri.image-name",
                        "registry.local/app@sha256=abc",
                    ),
                ],
            ),
        );
        let state = lookup(ID, &[scratch.root("runc", Runtime::Runc)]).expect("found");
        assert_eq!(state.pod_name.as_deref(), Some("real"));
        assert_eq!(
            state.image.as_deref(),
            Some("registry.local/app@sha256=abc")
        );
    }

    #[test]
    fn unreadable_state_still_tells_the_runtime() {
        let scratch = Scratch::new();
        scratch.write(&format!("moby/{ID}/state.json"), "{ truncated");
        assert_eq!(
            lookup(ID, &[scratch.root("moby", Runtime::Docker)]).map(|state| state.runtime),
            Some(Runtime::Docker)
        );
    }

    #[test]
    fn first_root_holding_the_container_wins() {
        let scratch = Scratch::new();
        scratch.write(&format!("second/{ID}/state.json"), "{}");
        scratch.write(&format!("third/{ID}/state.json"), "{}");
        let roots = [
            scratch.root("first", Runtime::Docker),
            scratch.root("second", Runtime::Runc),
            scratch.root("third", Runtime::Containerd),
        ];
        assert_eq!(
            lookup(ID, &roots).map(|state| state.runtime),
            Some(Runtime::Runc)
        );
    }

    #[test]
    fn unknown_or_unsafe_ids_are_not_found() {
        let scratch = Scratch::new();
        scratch.write("runc/state.json", "{}");
        scratch.write(&format!("runc/{ID}/state.json"), "{}");
        let roots = [scratch.root("runc", Runtime::Runc)];
        let other = "9cc35a907a1e4e7ac8c021758b2bb28db60b3a787115f9114a641bf44f8ba99b";
        for id in [other, "", ".", "..", "../runc", "/", "a/b", "a\0b"] {
            assert_eq!(lookup(id, &roots), None, "id {id:?}");
        }
        assert_eq!(lookup(ID, &[]), None);
    }

    #[test]
    fn default_roots_cover_the_usual_runtimes() {
        let roots: Vec<(String, Runtime)> = default_roots()
            .into_iter()
            .map(|root| (root.dir.display().to_string(), root.runtime))
            .collect();
        assert_eq!(
            roots,
            [
                ("/run/docker/runtime-runc/moby".to_owned(), Runtime::Docker),
                (
                    "/run/containerd/runc/k8s.io".to_owned(),
                    Runtime::Containerd
                ),
                (
                    "/run/containerd/runc/default".to_owned(),
                    Runtime::Containerd
                ),
                ("/run/runc".to_owned(), Runtime::Runc),
                ("/run/crun".to_owned(), Runtime::Unknown),
            ]
        );
    }
}
