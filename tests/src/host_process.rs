//! A process of the test's own on the host: the reference for "the host's namespaces", since
//! PID 1 is not ours to touch (and its /proc/1/ns is unreadable on the development machines).

use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// The first `name` on PATH, as a command of that name would run it.
pub fn program_on_path(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("no {name} on PATH"))
}

pub struct HostProcess {
    child: Child,
}

impl HostProcess {
    /// Starts `sleep 1000` in the test's (the host's) namespaces.
    pub fn sleep() -> anyhow::Result<HostProcess> {
        Self::spawn(Command::new("sleep").arg("1000"))
    }

    /// Starts `program` with `args` on the host.
    pub fn run(program: &std::path::Path, args: &[&str]) -> anyhow::Result<HostProcess> {
        Self::spawn(Command::new(program).args(args))
    }

    /// Starts a shell on the host that runs a program every tenth of a second: a host process
    /// whose children exec.
    pub fn busy_shell() -> anyhow::Result<HostProcess> {
        Self::spawn(Command::new("sh").args(["-c", "while :; do /bin/true; sleep 0.1; done"]))
    }

    fn spawn(command: &mut Command) -> anyhow::Result<HostProcess> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {command:?}"))?;
        Ok(HostProcess { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
