//! The DaemonSet's pod template under deploy/kubernetes as `podman run` flags. Each field becomes
//! the flag that asks the runtime for the same thing; fields that only steer the scheduler are
//! named and left out; any other field is an error, so that the pod the tests run is the
//! manifest's pod and a field added to the manifest cannot be dropped unseen.
//!
//! Not `podman kube play`: podman 4.3 takes no DaemonSet, and of the same template as a Pod it
//! ignores `hostPID`, `seccompProfile` and the `spec.nodeName` field reference, and publishes
//! every containerPort on the host (each seen on a running pod's /proc/PID/status and
//! namespaces).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

/// deploy/kubernetes, where `kubectl apply -k` takes the manifests from.
pub fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Pod fields that only matter to the scheduler or the API server, not to the pod on its node.
const SCHEDULING_ONLY: &[&str] = &[
    "serviceAccountName",
    "priorityClassName",
    "tolerations",
    "nodeSelector",
    "affinity",
];

/// What the pod must look like once running, for [`crate::pod::Pod`] to check on /proc.
#[derive(Debug, Default)]
pub struct Expected {
    /// The effective, permitted and bounding sets, by kernel name (`CAP_BPF`).
    pub capabilities: BTreeSet<String>,
    pub no_new_privs: bool,
    /// False for `Unconfined`.
    pub seccomp: bool,
    pub host_pid: bool,
    pub uid: u32,
    pub read_only_root: bool,
    pub mounts: Vec<ExpectedMount>,
}

#[derive(Debug)]
pub struct ExpectedMount {
    /// On the host.
    pub source: PathBuf,
    pub path: String,
    pub read_only: bool,
    /// HostToContainer: the host's mounts and unmounts below it reach the pod (a slave mount).
    pub follows_host: bool,
}

/// An httpGet probe of the container.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpProbe {
    pub kind: &'static str,
    pub path: String,
    pub port: u16,
}

/// The pod template translated: run `podman run [flags] image [args]`.
#[derive(Debug, Default)]
pub struct PodSpec {
    pub image: String,
    pub flags: Vec<String>,
    pub args: Vec<String>,
    pub probes: Vec<HttpProbe>,
    pub expected: Expected,
    /// Host directories the hostPath volumes of type Directory need.
    pub host_dirs: Vec<PathBuf>,
}

/// Reads the kustomization's DaemonSet and ConfigMaps and translates the pod template for a
/// node called `node_name`. ConfigMap volumes are written under `staging`.
pub fn load(node_name: &str, staging: &Path) -> anyhow::Result<PodSpec> {
    let resources = resources(&manifests_dir())?;
    let daemonsets: Vec<&Value> = resources
        .iter()
        .filter(|r| r["kind"] == "DaemonSet")
        .collect();
    ensure!(daemonsets.len() == 1, "expected one DaemonSet");
    let config_maps = resources
        .iter()
        .filter(|r| r["kind"] == "ConfigMap")
        .map(|r| (r["metadata"]["name"].as_str().unwrap_or_default(), r))
        .collect();
    translate(
        &daemonsets[0]["spec"]["template"]["spec"],
        &config_maps,
        node_name,
        staging,
    )
}

/// Every resource the kustomization lists, in order.
fn resources(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let kustomization = read_yaml(&dir.join("kustomization.yaml"))?;
    let files = kustomization["resources"]
        .as_array()
        .context("kustomization.yaml lists no resources")?;
    files
        .iter()
        .map(|file| read_yaml(&dir.join(file.as_str().context("resource is not a path")?)))
        .collect()
}

fn read_yaml(path: &Path) -> anyhow::Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn translate(
    pod: &Value,
    config_maps: &BTreeMap<&str, &Value>,
    node_name: &str,
    staging: &Path,
) -> anyhow::Result<PodSpec> {
    let mut spec = PodSpec::default();
    let containers = pod["containers"].as_array().context("no containers")?;
    ensure!(containers.len() == 1, "the translation takes one container");
    let container = &containers[0];
    let volumes = volumes_by_name(pod)?;
    for (key, value) in fields(pod, "the pod spec")? {
        match key.as_str() {
            "containers" | "volumes" => {}
            "hostPID" => {
                spec.expected.host_pid = value == true;
                if spec.expected.host_pid {
                    spec.flags.push("--pid=host".into());
                }
            }
            "hostNetwork" | "hostIPC" if value == true => {
                bail!("{key}: the translation gives the pod its own namespaces only")
            }
            "hostNetwork" | "hostIPC" => {}
            // The token is not mounted either way: podman has no service account to mount.
            "automountServiceAccountToken" => ensure!(value == false, "{key} must be false"),
            "terminationGracePeriodSeconds" => {
                spec.flags.push(format!(
                    "--stop-timeout={}",
                    value.as_u64().context(key.clone())?
                ));
            }
            "securityContext" => pod_security(value, &mut spec)?,
            other if SCHEDULING_ONLY.contains(&other) => {}
            other => bail!("the pod spec field `{other}` has no translation"),
        }
    }
    // Kubernetes runs a pod without seccomp unless asked to; podman applies its profile unless
    // told not to.
    match pod["securityContext"]["seccompProfile"]["type"].as_str() {
        None | Some("Unconfined") => spec.flags.push("--security-opt=seccomp=unconfined".into()),
        Some("RuntimeDefault") => spec.expected.seccomp = true,
        other => bail!("seccompProfile type {other:?} has no translation"),
    }
    // Its own network namespace, like a pod's; loopback only, so nothing of it reaches a network.
    spec.flags.push("--network=none".into());
    container_fields(
        container,
        &volumes,
        config_maps,
        node_name,
        staging,
        &mut spec,
    )?;
    Ok(spec)
}

fn pod_security(context: &Value, spec: &mut PodSpec) -> anyhow::Result<()> {
    for (key, value) in fields(context, "the pod securityContext")? {
        match key.as_str() {
            "runAsUser" => spec.expected.uid = user_id(value, key)?,
            // Read below, with runAsUser known; seccompProfile by `translate`.
            "runAsGroup" | "runAsNonRoot" | "seccompProfile" => {}
            other => bail!("the pod securityContext field `{other}` has no translation"),
        }
    }
    // The kubelet refuses to start such a pod: so must the translation.
    ensure!(
        context["runAsNonRoot"] != true || spec.expected.uid != 0,
        "runAsNonRoot with uid 0"
    );
    let group = user_id(&context["runAsGroup"], "runAsGroup").unwrap_or(spec.expected.uid);
    spec.flags
        .push(format!("--user={}:{group}", spec.expected.uid));
    Ok(())
}

fn container_fields(
    container: &Value,
    volumes: &BTreeMap<&str, &Value>,
    config_maps: &BTreeMap<&str, &Value>,
    node_name: &str,
    staging: &Path,
    spec: &mut PodSpec,
) -> anyhow::Result<()> {
    let ports = named_ports(container)?;
    for (key, value) in fields(container, "the container")? {
        match key.as_str() {
            "name" | "ports" => {}
            "image" => spec.image = value.as_str().context("image")?.to_owned(),
            // The image is the one `cargo xtask image` built here; there is no registry.
            "imagePullPolicy" => spec.flags.push("--pull=never".into()),
            "args" => spec.args = strings(value, "args")?,
            "env" => env(value, node_name, spec)?,
            "livenessProbe" | "readinessProbe" => {
                let kind = if key == "livenessProbe" {
                    "liveness"
                } else {
                    "readiness"
                };
                spec.probes.push(http_probe(kind, value, &ports)?);
            }
            "resources" => resources_flags(value, spec)?,
            "securityContext" => container_security(value, spec)?,
            "volumeMounts" => mounts(value, volumes, config_maps, staging, spec)?,
            other => bail!("the container field `{other}` has no translation"),
        }
    }
    Ok(())
}

fn env(vars: &Value, node_name: &str, spec: &mut PodSpec) -> anyhow::Result<()> {
    for var in vars.as_array().context("env")? {
        let name = var["name"].as_str().context("env name")?;
        let value = match (&var["value"], &var["valueFrom"]["fieldRef"]["fieldPath"]) {
            (Value::String(value), Value::Null) => value.clone(),
            // The downward API: what the kubelet would put there.
            (Value::Null, Value::String(path)) if path == "spec.nodeName" => node_name.to_owned(),
            _ => bail!("env {name}: only values and spec.nodeName have a translation"),
        };
        spec.flags.push(format!("--env={name}={value}"));
    }
    Ok(())
}

fn named_ports(container: &Value) -> anyhow::Result<BTreeMap<String, u16>> {
    let mut ports = BTreeMap::new();
    for port in container["ports"].as_array().into_iter().flatten() {
        let number = port["containerPort"].as_u64().context("containerPort")?;
        ports.insert(
            port["name"].as_str().unwrap_or_default().to_owned(),
            u16::try_from(number)?,
        );
    }
    Ok(ports)
}

fn http_probe(
    kind: &'static str,
    probe: &Value,
    ports: &BTreeMap<String, u16>,
) -> anyhow::Result<HttpProbe> {
    let get = &probe["httpGet"];
    let path = get["path"].as_str().context("httpGet path")?.to_owned();
    let port = match &get["port"] {
        Value::String(name) => *ports.get(name).with_context(|| format!("no port {name}"))?,
        number => u16::try_from(number.as_u64().context("httpGet port")?)?,
    };
    Ok(HttpProbe { kind, path, port })
}

fn resources_flags(resources: &Value, spec: &mut PodSpec) -> anyhow::Result<()> {
    for (kind, quantities) in fields(resources, "resources")? {
        for (resource, quantity) in fields(quantities, "resources")? {
            let quantity = quantity.as_str().context("quantity")?;
            let flag = match (kind.as_str(), resource.as_str()) {
                ("limits", "memory") => format!("--memory={}", memory(quantity)?),
                ("requests", "memory") => format!("--memory-reservation={}", memory(quantity)?),
                ("limits", "cpu") => format!("--cpus={}", cpu_millis(quantity)? as f64 / 1000.0),
                // The kubelet's conversion of a CPU request to cgroup shares.
                ("requests", "cpu") => {
                    format!("--cpu-shares={}", cpu_millis(quantity)? * 1024 / 1000)
                }
                _ => bail!("resources.{kind}.{resource} has no translation"),
            };
            spec.flags.push(flag);
        }
    }
    Ok(())
}

fn container_security(context: &Value, spec: &mut PodSpec) -> anyhow::Result<()> {
    for (key, value) in fields(context, "the container securityContext")? {
        match key.as_str() {
            "privileged" => ensure!(value == false, "a privileged pod has no translation"),
            "allowPrivilegeEscalation" => {
                spec.expected.no_new_privs = value == false;
                if spec.expected.no_new_privs {
                    spec.flags.push("--security-opt=no-new-privileges".into());
                }
            }
            "readOnlyRootFilesystem" => {
                spec.expected.read_only_root = value == true;
                if spec.expected.read_only_root {
                    // Without the tmpfs on /tmp, /run and /var/tmp podman adds to --read-only.
                    spec.flags.push("--read-only".into());
                    spec.flags.push("--read-only-tmpfs=false".into());
                }
            }
            "capabilities" => capabilities(value, spec)?,
            other => bail!("the container securityContext field `{other}` has no translation"),
        }
    }
    Ok(())
}

fn capabilities(capabilities: &Value, spec: &mut PodSpec) -> anyhow::Result<()> {
    let drop = strings(&capabilities["drop"], "capabilities.drop")?;
    ensure!(
        drop == ["ALL"],
        "capabilities.drop must be [ALL], so that the added ones are all the pod has"
    );
    spec.flags.push("--cap-drop=all".into());
    for name in strings(&capabilities["add"], "capabilities.add")? {
        let name = format!("CAP_{name}");
        spec.flags.push(format!("--cap-add={name}"));
        spec.expected.capabilities.insert(name);
    }
    Ok(())
}

fn mounts(
    mounts: &Value,
    volumes: &BTreeMap<&str, &Value>,
    config_maps: &BTreeMap<&str, &Value>,
    staging: &Path,
    spec: &mut PodSpec,
) -> anyhow::Result<()> {
    for mount in mounts.as_array().context("volumeMounts")? {
        let name = mount["name"].as_str().context("volumeMount name")?;
        let path = mount["mountPath"].as_str().context("mountPath")?.to_owned();
        let read_only = mount["readOnly"] == true;
        let propagation = match mount["mountPropagation"].as_str() {
            None | Some("None") => "rprivate",
            Some("HostToContainer") => "rslave",
            Some(other) => bail!("mountPropagation {other} has no translation"),
        };
        let volume = volumes
            .get(name)
            .with_context(|| format!("no volume {name}"))?;
        let source = volume_source(volume, config_maps, staging, spec)?;
        let mode = if read_only { "ro" } else { "rw" };
        spec.flags.push(format!(
            "--volume={}:{path}:{mode},{propagation}",
            source.display()
        ));

        spec.expected.mounts.push(ExpectedMount {
            source,
            path,
            read_only,
            follows_host: propagation == "rslave",
        });
    }
    Ok(())
}

fn volume_source(
    volume: &Value,
    config_maps: &BTreeMap<&str, &Value>,
    staging: &Path,
    spec: &mut PodSpec,
) -> anyhow::Result<PathBuf> {
    let name = volume["name"].as_str().unwrap_or_default();
    if let Some(host_path) = volume["hostPath"]["path"].as_str() {
        match volume["hostPath"]["type"].as_str() {
            Some("Directory") => spec.host_dirs.push(PathBuf::from(host_path)),
            other => bail!("hostPath type {other:?} has no translation"),
        }
        return Ok(PathBuf::from(host_path));
    }
    if let Some(map_name) = volume["configMap"]["name"].as_str() {
        ensure!(volume["configMap"]["items"].is_null(), "configMap items");
        let map = config_maps
            .get(map_name)
            .with_context(|| format!("no ConfigMap {map_name}"))?;
        let dir = staging.join(name);
        fs::create_dir_all(&dir)?;
        for (file, content) in fields(&map["data"], "ConfigMap data")? {
            fs::write(dir.join(file), content.as_str().context("ConfigMap value")?)?;
        }
        return Ok(dir);
    }
    bail!("volume {name}: only hostPath and configMap have a translation")
}

fn volumes_by_name(pod: &Value) -> anyhow::Result<BTreeMap<&str, &Value>> {
    pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| Ok((v["name"].as_str().context("volume name")?, v)))
        .collect()
}

fn fields<'a>(
    object: &'a Value,
    what: &str,
) -> anyhow::Result<impl Iterator<Item = (&'a String, &'a Value)>> {
    Ok(object
        .as_object()
        .with_context(|| format!("{what} is not a mapping"))?
        .iter())
}

fn strings(list: &Value, what: &str) -> anyhow::Result<Vec<String>> {
    list.as_array()
        .with_context(|| format!("{what} is not a list"))?
        .iter()
        .map(|item| Ok(item.as_str().context(what.to_owned())?.to_owned()))
        .collect()
}

fn user_id(value: &Value, what: &str) -> anyhow::Result<u32> {
    Ok(u32::try_from(
        value.as_u64().with_context(|| what.to_owned())?,
    )?)
}

/// Kubernetes memory quantities as podman takes them: `512Mi` -> `512m`.
fn memory(quantity: &str) -> anyhow::Result<String> {
    let (number, unit) = quantity.split_at(quantity.trim_end_matches(char::is_alphabetic).len());
    let suffix = match unit {
        "Ki" => "k",
        "Mi" => "m",
        "Gi" => "g",
        _ => bail!("memory quantity {quantity}: use Ki, Mi or Gi"),
    };
    Ok(format!("{}{suffix}", number.parse::<u64>()?))
}

/// Kubernetes CPU quantities (`100m`, `1`, `0.5`) in millicores.
fn cpu_millis(quantity: &str) -> anyhow::Result<u64> {
    match quantity.strip_suffix('m') {
        Some(millis) => Ok(millis.parse()?),
        None => Ok((quantity.parse::<f64>()? * 1000.0).round() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_convert_like_the_kubelet() {
        assert_eq!(memory("512Mi").unwrap(), "512m");
        assert!(memory("1G").is_err());
        assert_eq!(cpu_millis("100m").unwrap(), 100);
        assert_eq!(cpu_millis("1").unwrap(), 1000);
        assert_eq!(cpu_millis("0.5").unwrap(), 500);
    }

    #[test]
    fn the_shipped_daemonset_translates_and_unknown_fields_do_not() {
        let staging = crate::temp_dir::TempDir::new("pod-spec-test").unwrap();
        let spec = load("node-7", staging.path()).unwrap();
        assert!(spec.flags.contains(&"--env=NODE_NAME=node-7".to_owned()));
        assert!(spec.flags.contains(&"--pid=host".to_owned()));
        assert!(spec.expected.host_pid && spec.expected.no_new_privs);
        assert!(!spec.expected.capabilities.is_empty());
        assert_eq!(spec.probes.len(), 2);

        let pod = serde_json::json!({"containers": [{"name": "a"}], "hostUsers": false});
        let error = translate(&pod, &BTreeMap::new(), "n", staging.path()).unwrap_err();
        assert!(error.to_string().contains("hostUsers"), "{error}");
    }

    #[test]
    fn run_as_non_root_is_judged_with_the_user_whatever_the_key_order() {
        let staging = crate::temp_dir::TempDir::new("pod-spec-test").unwrap();
        let pod = |context| serde_json::json!({"containers": [{"name": "a"}], "securityContext": context});
        let non_root = pod(serde_json::json!({"runAsNonRoot": true, "runAsUser": 1000}));
        let spec = translate(&non_root, &BTreeMap::new(), "n", staging.path()).unwrap();
        assert!(
            spec.flags.contains(&"--user=1000:1000".to_owned()),
            "{:?}",
            spec.flags
        );
        // Without a seccompProfile Kubernetes runs the pod unconfined.
        assert!(
            spec.flags
                .contains(&"--security-opt=seccomp=unconfined".to_owned())
        );
        let root = pod(serde_json::json!({"runAsNonRoot": true}));
        assert!(translate(&root, &BTreeMap::new(), "n", staging.path()).is_err());
    }
}
