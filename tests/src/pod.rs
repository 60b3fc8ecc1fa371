//! The agent's image running as the DaemonSet's pod (see [`crate::pod_spec`]), with podman;
//! removed on drop, with the host directories it had to create.

use std::{
    collections::BTreeSet,
    env,
    fs::{self, File},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread,
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::{
    alert, capability, http, ids,
    pod_spec::{self, Expected, HttpProbe, PodSpec},
    poll,
    temp_dir::TempDir,
};

/// Names the image under test; `cargo xtask test` sets it to the one it built.
pub const IMAGE_ENV: &str = "ESCAPE_DETECTOR_IMAGE";

const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Pod {
    name: String,
    pid: u32,
    spec: PodSpec,
    // Dropped after `Drop::drop` has removed the container that mounts them.
    _host_dirs: CreatedDirs,
    _staging: TempDir,
}

impl Pod {
    /// Runs the DaemonSet's pod as if scheduled on a node named `node_name`, and waits until
    /// its readiness probe answers 200.
    pub fn start(node_name: &str) -> anyhow::Result<Pod> {
        let staging = TempDir::new("pod")?;
        let spec = pod_spec::load(node_name, staging.path())?;
        let image = env::var(IMAGE_ENV).with_context(|| {
            format!("{IMAGE_ENV} is not set; it must name the image `cargo xtask image` built")
        })?;
        ensure!(
            spec.image == image,
            "the DaemonSet runs {}, but the image under test is {image}: update the manifest",
            spec.image
        );
        let host_dirs = CreatedDirs::ensure(&spec.host_dirs)?;
        let name = format!("escdet-pod-{}", ids::random_hex(4));
        let run = podman(
            &["run", "--detach", "--name", &name]
                .into_iter()
                .map(str::to_owned)
                // The machine's limit, not the manifest's: podman's default rlimits are higher
                // than this sandbox lets runc set.
                .chain([
                    "--ulimit=nofile=4096:4096".into(),
                    "--ulimit=nproc=4096:4096".into(),
                ])
                .chain(spec.flags.iter().cloned())
                .chain([spec.image.clone()])
                .chain(spec.args.iter().cloned())
                .collect::<Vec<_>>(),
        )?;
        let mut pod = Pod {
            name,
            pid: 0,
            spec,
            _host_dirs: host_dirs,
            _staging: staging,
        };
        // From here on a failure still drops `pod`, which removes the container.
        ensure!(
            run.status.success(),
            "podman run failed: {}",
            String::from_utf8_lossy(&run.stderr).trim()
        );
        pod.pid = pod.inspect("{{.State.Pid}}")?.parse()?;
        pod.wait_ready()?;
        Ok(pod)
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let readiness = self.probe("readiness")?;
        let ready = poll::eventually(READY_TIMEOUT, || {
            matches!(self.get(readiness), Ok((200, _))) || !self.is_running()
        });
        ensure!(
            self.is_running(),
            "the pod exited before it was ready\n{}",
            self.log_tail()
        );
        ensure!(
            ready,
            "the pod was not ready after {READY_TIMEOUT:?}\n{}",
            self.log_tail()
        );
        Ok(())
    }

    /// The manifest's probe of `kind` (liveness, readiness).
    pub fn probe(&self, kind: &str) -> anyhow::Result<&HttpProbe> {
        self.spec
            .probes
            .iter()
            .find(|p| p.kind == kind)
            .with_context(|| format!("the DaemonSet has no {kind} probe"))
    }

    /// What the kubelet does for `probe`: GET from inside the pod's network namespace.
    pub fn get(&self, probe: &HttpProbe) -> anyhow::Result<(u16, String)> {
        let netns = File::open(format!("/proc/{}/ns/net", self.pid))?;
        let addr = ([127, 0, 0, 1], probe.port).into();
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: a valid namespace descriptor; only this short-lived thread moves.
                    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        bail!("setns: {}", std::io::Error::last_os_error());
                    }
                    http::get(addr, &probe.path)
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the probe thread panicked"))?
        })
    }

    /// Checks the running pod against the manifest on /proc: capabilities, no_new_privs,
    /// seccomp, user, namespaces, the read-only root and every mount with its flags.
    pub fn check_runs_as_specified(&self) -> anyhow::Result<()> {
        let expected = &self.spec.expected;
        let pid = self.pid.to_string();
        for set in ["CapEff", "CapPrm", "CapBnd"] {
            let names: BTreeSet<String> = capability::names(capability::set_of(&pid, set)?)
                .into_iter()
                .map(str::to_owned)
                .collect();
            ensure!(
                names == expected.capabilities,
                "{set} of the pod is {names:?}, the manifest asks for {:?}",
                expected.capabilities
            );
        }
        let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
                .with_context(|| format!("no {name} in the pod's status"))
        };
        ensure!(field("NoNewPrivs")? == u8::from(expected.no_new_privs).to_string());
        ensure!(
            (field("Seccomp")? != "0") == expected.seccomp,
            "seccomp mode"
        );
        ensure!(field("Uid")? == expected.uid.to_string(), "uid");
        check_namespaces(&pid, expected)?;
        check_mounts(&pid, expected)
    }

    /// Every alert the pod printed (its stdout), in order.
    pub fn alerts(&self) -> Vec<Value> {
        self.logs()
            .map(|out| alert::parse_lines(&String::from_utf8_lossy(&out.stdout)))
            .unwrap_or_default()
    }

    /// Polls the pod's alerts until one satisfies `pred`.
    pub fn wait_for_alert(
        &self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let mut found = None;
        poll::eventually(timeout, || {
            found = self.alerts().into_iter().find(|a| pred(a));
            found.is_some()
        });
        found.with_context(|| format!("no {what} alert from the pod\n{}", self.log_tail()))
    }

    fn logs(&self) -> anyhow::Result<Output> {
        podman(&["logs", &self.name])
    }

    fn log_tail(&self) -> String {
        let logs = self.logs().map(|o| o.stderr).unwrap_or_default();
        let logs = String::from_utf8_lossy(&logs);
        let lines: Vec<&str> = logs.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        format!(
            "--- pod log (last {} lines) ---\n{}",
            tail.len(),
            tail.join("\n")
        )
    }

    fn is_running(&self) -> bool {
        self.inspect("{{.State.Running}}")
            .is_ok_and(|r| r == "true")
    }

    fn inspect(&self, format: &str) -> anyhow::Result<String> {
        let out = podman(&["inspect", "--format", format, &self.name])?;
        ensure!(out.status.success(), "podman inspect {}", self.name);
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        match podman(&["rm", "--force", "--time", "10", &self.name]) {
            Ok(out) if out.status.success() => {}
            other => eprintln!("podman rm {} failed: {other:?}", self.name),
        }
    }
}

/// podman as this machine kind runs it (TOOLCHAIN.md): runc, since crun refuses the hybrid
/// cgroup layout, and cgroupfs.
fn podman<S: AsRef<str>>(args: &[S]) -> anyhow::Result<Output> {
    Command::new("podman")
        .args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"])
        .args(args.iter().map(AsRef::as_ref))
        .stdin(Stdio::null())
        .output()
        .context("running podman")
}

fn check_namespaces(pid: &str, expected: &Expected) -> anyhow::Result<()> {
    let ns = |who: &str, kind: &str| fs::read_link(format!("/proc/{who}/ns/{kind}"));
    ensure!(
        (ns(pid, "pid")? == ns("self", "pid")?) == expected.host_pid,
        "the pod's pid namespace is{} the host's",
        if expected.host_pid { " not" } else { "" }
    );
    for own in ["net", "mnt", "ipc", "uts"] {
        ensure!(
            ns(pid, own)? != ns("self", own)?,
            "the pod shares the host's {own} namespace"
        );
    }
    Ok(())
}

fn check_mounts(pid: &str, expected: &Expected) -> anyhow::Result<()> {
    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    // The last line for a mount point is the mount on top.
    let mount = |path: &str| {
        mountinfo
            .lines()
            .rev()
            .find(|l| l.split(' ').nth(4) == Some(path))
            .with_context(|| format!("nothing is mounted at {path} in the pod"))
    };
    let read_only = |line: &str| {
        line.split(' ')
            .nth(5)
            .is_some_and(|o| o.split(',').any(|o| o == "ro"))
    };
    ensure!(
        read_only(mount("/")?) == expected.read_only_root,
        "the pod's root file system is not as readOnlyRootFilesystem says"
    );
    for wanted in &expected.mounts {
        let line = mount(&wanted.path)?;
        ensure!(
            read_only(line) == wanted.read_only,
            "{} read-only: {line}",
            wanted.path
        );
        // A slave of a private mount receives nothing and shows no master: the host's mount
        // must be shared (as systemd makes every mount) for HostToContainer to mean anything.
        let follows = propagation(line).contains("master:");
        let can_follow = host_mount_is_shared(&wanted.source)?;
        ensure!(
            follows == (wanted.follows_host && can_follow),
            "{} propagation: {line}",
            wanted.path
        );
    }
    Ok(())
}

/// The optional fields of a mountinfo line ("shared:N", "master:N", ...).
fn propagation(line: &str) -> &str {
    line.split(" - ").next().unwrap_or_default()
}

/// Whether the host mount that holds `path` propagates its mounts to its peers and slaves.
fn host_mount_is_shared(path: &Path) -> anyhow::Result<bool> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let holder = mountinfo
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|point| path.starts_with(point))
        })
        .max_by_key(|l| l.split(' ').nth(4).map_or(0, str::len))
        .context("no host mount holds the path")?;
    Ok(propagation(holder).contains("shared:"))
}

/// Host directories a hostPath volume of type Directory needs, created when missing (a kubelet's
/// socket directories on a machine without a kubelet) and removed again on drop.
struct CreatedDirs(Vec<PathBuf>);

impl CreatedDirs {
    fn ensure(dirs: &[PathBuf]) -> anyhow::Result<CreatedDirs> {
        let mut created = CreatedDirs(Vec::new());
        for dir in dirs {
            let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
            for dir in missing.into_iter().rev() {
                fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
                created.0.push(dir.to_owned());
            }
        }
        Ok(created)
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            if let Err(e) = fs::remove_dir(dir) {
                eprintln!("removing {}: {e}", dir.display());
            }
        }
    }
}
