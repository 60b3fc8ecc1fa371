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
        let child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("spawning sleep")?;
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
