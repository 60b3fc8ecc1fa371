//! The OCI runtime spec of a test container: `runc spec`'s defaults, edited the way Docker and
//! the kubelet edit them for the profile and cgroup layout a test asks for.

use std::{fs, path::Path};

use anyhow::Context;
use serde_json::{Value, json};

use crate::{capability, ids, runc, workload};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `runc spec` as is: few capabilities, masked and read-only /proc paths, namespaces
    /// pid/ipc/uts/mount/network plus cgroup where the kernel has it.
    Default,
    /// Like `docker run --privileged`: every capability, nothing masked or read-only, every
    /// device allowed, no seccomp, no no_new_privs.
    Privileged,
    /// Like `docker run --privileged --pid=host`.
    HostPid,
    /// Like `docker run --network=host` (a Kubernetes `hostNetwork` pod): the runtime's default
    /// privileges in the host's network namespace, where the host's abstract unix sockets live.
    HostNet,
    /// Like `docker run --user 1000 --cap-drop ALL`: an unprivileged user, no capabilities,
    /// and no no_new_privs, so a setuid binary still raises privileges.
    User,
}

/// The uid (and gid) of [`Profile::User`].
pub const USER_UID: u32 = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Docker with the cgroupfs driver: `/docker/<id>`.
    Docker,
    /// The kubelet with the cgroupfs driver: `/kubepods/besteffort/pod<uid>/<id>`; with a
    /// pod namespace, the spec carries the pod's annotations as the kubelet's runtimes write
    /// them.
    Kubepods {
        pod_uid: String,
        pod_namespace: Option<String>,
    },
}

impl CgroupLayout {
    /// A Kubepods layout for a fresh random pod.
    pub fn kubepods() -> CgroupLayout {
        CgroupLayout::Kubepods {
            pod_uid: ids::pod_uid(),
            pod_namespace: None,
        }
    }

    /// A fresh random pod in namespace `namespace`, annotated as such.
    pub fn kubepods_in(namespace: &str) -> CgroupLayout {
        CgroupLayout::Kubepods {
            pod_uid: ids::pod_uid(),
            pod_namespace: Some(namespace.to_owned()),
        }
    }

    /// The spec's annotations for this layout, as (key, value).
    fn annotations(&self) -> Vec<(&'static str, String)> {
        match self {
            CgroupLayout::Kubepods {
                pod_uid,
                pod_namespace: Some(namespace),
            } => vec![
                ("io.kubernetes.pod.uid", pod_uid.clone()),
                ("io.kubernetes.pod.namespace", namespace.clone()),
                ("io.kubernetes.pod.name", format!("escdet-{namespace}")),
            ],
            _ => Vec::new(),
        }
    }

    /// The spec's `linux.cgroupsPath` for container `id`.
    pub fn cgroups_path(&self, id: &str) -> String {
        match self {
            CgroupLayout::Docker => format!("/docker/{id}"),
            CgroupLayout::Kubepods { pod_uid, .. } => {
                format!("/kubepods/besteffort/pod{pod_uid}/{id}")
            }
        }
    }
}

/// Writes `<bundle>/config.json` for a container running the test workload
/// ([`workload::command`]) on `<bundle>/rootfs`.
pub fn write_config(
    bundle: &Path,
    profile: Profile,
    layout: &CgroupLayout,
    cgroups_path: &str,
) -> anyhow::Result<()> {
    let bundle_arg = bundle.to_str().context("bundle path is not UTF-8")?;
    runc::stdout_of(&["spec", "--bundle", bundle_arg])?;
    let path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&fs::read(&path)?)?;
    detach(&mut spec, cgroups_path)?;
    let annotations = layout.annotations();
    if !annotations.is_empty() {
        spec["annotations"] = annotations
            .into_iter()
            .map(|(key, value)| (key.to_owned(), json!(value)))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    match profile {
        Profile::Default => add_cgroup_namespace(&mut spec)?,
        Profile::Privileged => privilege(&mut spec)?,
        Profile::HostPid => {
            privilege(&mut spec)?;
            namespaces(&mut spec)?.retain(|ns| ns["type"] != "pid");
        }
        Profile::HostNet => {
            add_cgroup_namespace(&mut spec)?;
            namespaces(&mut spec)?.retain(|ns| ns["type"] != "network");
        }
        Profile::User => {
            add_cgroup_namespace(&mut spec)?;
            *field(&mut spec, "/process/user")? = json!({"uid": USER_UID, "gid": USER_UID});
            *field(&mut spec, "/process/noNewPrivileges")? = json!(false);
            let capabilities = field(&mut spec, "/process/capabilities")?;
            for set in ["effective", "permitted", "inheritable", "ambient"] {
                capabilities[set] = json!([]);
            }
        }
    }
    fs::write(&path, serde_json::to_vec_pretty(&spec)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Adds bind mounts of host paths to `<bundle>/config.json`, as (host path, path in the
/// container); runc creates the mount points.
pub fn add_binds(bundle: &Path, binds: &[(&Path, &str)]) -> anyhow::Result<()> {
    if binds.is_empty() {
        return Ok(());
    }
    let path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&fs::read(&path)?)?;
    let mounts = field(&mut spec, "/mounts")?
        .as_array_mut()
        .context("spec mounts is not an array")?;
    for (source, destination) in binds {
        mounts.push(json!({
            "destination": destination,
            "type": "bind",
            "source": source,
            "options": ["rbind", "rw"],
        }));
    }
    fs::write(&path, serde_json::to_vec_pretty(&spec)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// A long-running init without a terminal (so `runc run -d` works from a test), a writable root
/// like Docker's, and the cgroup a real runtime would choose.
fn detach(spec: &mut Value, cgroups_path: &str) -> anyhow::Result<()> {
    *field(spec, "/process/terminal")? = json!(false);
    *field(spec, "/process/args")? = json!(workload::command());
    *field(spec, "/root/readonly")? = json!(false);
    field(spec, "/linux")?["cgroupsPath"] = json!(cgroups_path);
    Ok(())
}

/// `runc spec` already asks for one on cgroup v2 hosts; v1 hosts get it added.
fn add_cgroup_namespace(spec: &mut Value) -> anyhow::Result<()> {
    let namespaces = namespaces(spec)?;
    let has_one = namespaces.iter().any(|ns| ns["type"] == "cgroup");
    if !has_one && Path::new("/proc/self/ns/cgroup").exists() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    Ok(())
}

/// What `--privileged` changes. No cgroup namespace, as Docker on a cgroup v1 host: the kernel
/// only lets the initial cgroup namespace create a new v1 hierarchy, which the release_agent
/// technique needs.
fn privilege(spec: &mut Value) -> anyhow::Result<()> {
    namespaces(spec)?.retain(|ns| ns["type"] != "cgroup");
    let all = capability::names(capability::bounding_set("self")?);
    let capabilities = field(spec, "/process/capabilities")?;
    for set in [
        "bounding",
        "effective",
        "permitted",
        "inheritable",
        "ambient",
    ] {
        capabilities[set] = json!(all);
    }
    *field(spec, "/process/noNewPrivileges")? = json!(false);
    *field(spec, "/linux/maskedPaths")? = json!([]);
    *field(spec, "/linux/readonlyPaths")? = json!([]);
    *field(spec, "/linux/resources/devices")? = json!([{"allow": true, "access": "rwm"}]);
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("seccomp");
    }
    let mounts = field(spec, "/mounts")?
        .as_array_mut()
        .context("spec mounts is not an array")?;
    for mount in mounts
        .iter_mut()
        .filter(|m| m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup")
    {
        if let Some(options) = mount["options"].as_array_mut() {
            options.retain(|o| o != "ro");
        }
    }
    Ok(())
}

fn namespaces(spec: &mut Value) -> anyhow::Result<&mut Vec<Value>> {
    field(spec, "/linux/namespaces")?
        .as_array_mut()
        .context("spec namespaces is not an array")
}

fn field<'a>(spec: &'a mut Value, pointer: &str) -> anyhow::Result<&'a mut Value> {
    spec.pointer_mut(pointer)
        .with_context(|| format!("`runc spec` output has no {pointer}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_follow_the_cgroupfs_drivers() {
        assert_eq!(CgroupLayout::Docker.cgroups_path("abc"), "/docker/abc");
        let pod = CgroupLayout::Kubepods {
            pod_uid: "1-2".into(),
            pod_namespace: None,
        };
        assert_eq!(pod.cgroups_path("abc"), "/kubepods/besteffort/pod1-2/abc");
    }
}
