//! A process of the test's own on the host: the reference for "the host's namespaces", since
//! PID 1 is not ours to touch (and its /proc/1/ns is unreadable on the development machines).

use std::process::{Child, Command, Stdio};

use anyhow::Context;

pub struct HostProcess {
    child: Child,
}

impl HostProcess {
    /// Starts `sleep 1000` in the test's (the host's) namespaces.
    pub fn sleep() -> anyhow::Result<HostProcess> {
        Self::spawn(Command::new("sleep").arg("1000"))
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
