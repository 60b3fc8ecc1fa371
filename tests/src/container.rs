//! A running runc container, torn down on drop.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Output, Stdio},
};

use anyhow::{Context, bail};

use crate::{
    cgroup::CgroupDirs,
    ids, rootfs, runc,
    spec::{self, CgroupLayout, Profile},
    temp_dir::TempDir,
    workload,
};

/// A container a test runs techniques in, whichever runtime started it.
pub trait RunningContainer {
    /// The full container id, as alerts name it.
    fn id(&self) -> &str;
    /// The init process's pid in the host's pid namespace.
    fn init_pid(&self) -> u32;
    /// The container's root filesystem as a path on the host.
    fn rootfs_on_host(&self) -> &Path;
    /// Runs `script` in the container as `by` says, returning its output and failing with it
    /// on a non-zero exit.
    fn run(&self, by: By, script: &str) -> anyhow::Result<String>;
}

/// Who in the container performs a technique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// A `runc exec` session, as `docker exec` or `kubectl exec` starts one.
    ExecSession,
    /// The container's own program and the processes it starts, as a compromised application
    /// acts: a subshell of the container's init.
    Workload,
}

pub struct Container {
    id: String,
    cgroup_path: String,
    rootfs: PathBuf,
    init_pid: u32,
    cgroups: CgroupDirs,
    // Dropped after `Drop::drop` has deleted the container, so the rootfs is no longer in use.
    bundle: TempDir,
}

impl Container {
    /// Creates and starts a container whose init runs the test workload, which waits for jobs
    /// ([`Container::run`] with [`By::Workload`]).
    pub fn start(profile: Profile, layout: CgroupLayout) -> anyhow::Result<Container> {
        Self::start_with_binds(profile, layout, &[])
    }

    /// Like [`Container::start`], with host paths bind-mounted into the container as
    /// (host path, path in the container), the way `docker run -v` and a pod's hostPath
    /// volumes give them.
    pub fn start_with_binds(
        profile: Profile,
        layout: CgroupLayout,
        binds: &[(&Path, &str)],
    ) -> anyhow::Result<Container> {
        let id = ids::container_id();
        let cgroup_path = layout.cgroups_path(&id);
        let bundle = TempDir::new("bundle")?;
        let rootfs = bundle.path().join("rootfs");
        rootfs::copy_to(&rootfs)?;
        if profile == Profile::User {
            // The workload keeps its jobs in the root directory.
            fs::set_permissions(
                &rootfs,
                std::os::unix::fs::PermissionsExt::from_mode(0o1777),
            )?;
        }
        spec::write_config(bundle.path(), profile, &layout, &cgroup_path)?;
        spec::add_binds(bundle.path(), binds)?;
        let mut container = Container {
            cgroups: CgroupDirs::prepare(&cgroup_path),
            id,
            cgroup_path,
            rootfs,
            init_pid: 0,
            bundle,
        };
        // From here on a failure still drops `container`, which undoes whatever runc did.
        container.run_detached(profile)?;
        container.init_pid = runc::init_pid(&container.id)?;
        Ok(container)
    }

    /// `runc run -d`: the init inherits runc's stdio, so all of it goes to /dev/null (a pipe
    /// would stay open as long as the container lives); runc's own errors go to its log file.
    fn run_detached(&self, profile: Profile) -> anyhow::Result<()> {
        let log = self.bundle.path().join("runc.log");
        let status = runc::command()
            .arg("--log")
            .arg(&log)
            .args(["run", "--detach", "--bundle"])
            .arg(self.bundle.path())
            .arg(&self.id)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running runc run")?;
        if !status.success() {
            bail!(
                "runc run of a {profile:?} container failed ({status}): {}",
                fs::read_to_string(&log).unwrap_or_default().trim()
            );
        }
        Ok(())
    }

    /// The `linux.cgroupsPath` runc placed the container in.
    pub fn cgroup_path(&self) -> &str {
        &self.cgroup_path
    }

    /// Runs `script` with the container's /bin/sh through `runc exec`, whatever its exit code.
    pub fn exec(&self, script: &str) -> anyhow::Result<Output> {
        runc::output(&["exec", &self.id, "/bin/sh", "-c", script])
    }

    /// Like [`Container::exec`], returning stdout and failing with both streams on a non-zero
    /// exit.
    pub fn exec_ok(&self, script: &str) -> anyhow::Result<String> {
        let out = self.exec(script)?;
        if !out.status.success() {
            bail!(
                "in container {}: `{script}` failed ({})\nstdout: {}\nstderr: {}",
                self.id,
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

impl RunningContainer for Container {
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
            By::ExecSession => self.exec_ok(script),
            By::Workload => workload::run(&self.rootfs, script),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Errors are expected when start() failed half-way; what matters is the end state,
        // which the harness self-tests check.
        let _ = runc::output(&["kill", &self.id, "KILL"]);
        if let Ok(out) = runc::output(&["delete", "--force", &self.id])
            && !out.status.success()
            && runc::list_ids().is_ok_and(|ids| ids.contains(&self.id))
        {
            eprintln!(
                "runc delete {} failed: {}",
                self.id,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        self.cgroups.remove();
    }
}
