//! A container made by Debian's podman (runc, cgroupfs manager), as a user's podman makes it:
//! podman's own cgroup layout (`/libpod_parent/libpod-<id>`), its conmon supervisor, `podman
//! exec`. It runs the test workload on a copy of the busybox root filesystem (`--rootfs`), and
//! is removed on drop.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context, bail};

use crate::{
    container::{By, RunningContainer},
    rootfs,
    temp_dir::TempDir,
    workload,
};

/// The flags the tests' podman runs with. crun refuses these machines' hybrid cgroup layout;
/// the ulimits stay within the current ones, which runc cannot raise without
/// CAP_SYS_RESOURCE. They go before `--rootfs DIR`: `--rootfs` is a switch and DIR the first
/// argument, after which podman takes no more flags.
const PODMAN_GLOBAL: [&str; 4] = ["--cgroup-manager", "cgroupfs", "--runtime", "runc"];
const RUN_FLAGS: [&str; 7] = [
    "--detach",
    "--network",
    "none",
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
];

pub struct PodmanContainer {
    id: String,
    init_pid: u32,
    rootfs: PathBuf,
    // Dropped after the container is removed, which no longer uses the rootfs then.
    _dir: TempDir,
}

/// Whether podman is installed (`cargo xtask setup` installs it on the host).
pub fn available() -> bool {
    Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

fn podman(args: &[&str]) -> anyhow::Result<Output> {
    Command::new("podman")
        .args(PODMAN_GLOBAL)
        .args(args)
        .output()
        .with_context(|| format!("running podman {}", args.join(" ")))
}

fn stdout_of(args: &[&str]) -> anyhow::Result<String> {
    let out = podman(args)?;
    if !out.status.success() {
        bail!(
            "podman {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

impl PodmanContainer {
    /// `podman run --privileged` of the test workload.
    pub fn start_privileged() -> anyhow::Result<PodmanContainer> {
        let dir = TempDir::new("podman")?;
        let rootfs = dir.path().join("rootfs");
        rootfs::copy_to(&rootfs)?;
        let root = rootfs.to_str().context("rootfs path is not UTF-8")?;
        let command = workload::command();
        let mut args = vec!["run", "--privileged"];
        args.extend(RUN_FLAGS);
        args.extend(["--rootfs", root]);
        args.extend(command.iter().map(String::as_str));
        let id = stdout_of(&args)?;
        let mut container = PodmanContainer {
            id,
            init_pid: 0,
            rootfs,
            _dir: dir,
        };
        // From here on a failure drops `container`, which removes it.
        container.init_pid = stdout_of(&["inspect", "--format", "{{.State.Pid}}", &container.id])?
            .parse()
            .context("podman inspect gave no pid")?;
        Ok(container)
    }
}

impl RunningContainer for PodmanContainer {
    fn id(&self) -> &str {
        &self.id
    }

    fn init_pid(&self) -> u32 {
        self.init_pid
    }

    fn rootfs_on_host(&self) -> &Path {
        &self.rootfs
    }

    fn run(&self, by: By, script: &str) -> anyhow::Result<String> {
        match by {
            By::ExecSession => stdout_of(&["exec", &self.id, "/bin/sh", "-c", script]),
            By::Workload => workload::run(&self.rootfs, script),
        }
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        if let Err(e) = stdout_of(&["rm", "--force", "--time", "0", &self.id]) {
            eprintln!("removing podman container {}: {e:#}", self.id);
        }
    }
}
