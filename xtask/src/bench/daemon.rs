//! A long-running child process the bench starts (auditd, bpftrace, redis-server), with its
//! output kept in files, stopped by a signal of its choice, and never left running: dropped, it
//! is stopped too.

use std::{
    fs::{self, File},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use escape_detector_e2e::{poll, temp_dir::TempDir};

use crate::cmd;

/// How long a daemon may take to exit after its stop signal before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);
const TAIL_LINES: usize = 20;

pub struct Daemon {
    name: &'static str,
    child: Child,
    stop_signal: libc::c_int,
    /// Set once the child is reaped: its pid may then belong to someone else.
    exited: Option<ExitStatus>,
    output: TempDir,
}

impl Daemon {
    /// Starts `command` with stdout and stderr to files; `stop_signal` is how it is asked to
    /// finish (SIGINT for bpftrace, which prints its maps then).
    pub fn spawn(
        name: &'static str,
        command: &mut Command,
        stop_signal: libc::c_int,
    ) -> Result<Daemon> {
        let output = TempDir::new(name)?;
        command
            .stdin(Stdio::null())
            .stdout(File::create(output.path().join("stdout"))?)
            .stderr(File::create(output.path().join("stderr"))?);
        println!("$ {}", cmd::display(command));
        let child = command
            .spawn()
            .with_context(|| format!("could not start {name}"))?;
        Ok(Daemon {
            name,
            child,
            stop_signal,
            exited: None,
            output,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.read_output("stdout")
    }

    pub fn stderr(&self) -> String {
        self.read_output("stderr")
    }

    /// Fails, with the end of its stderr, if it has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.exited = Some(status);
            bail!("{} exited ({status})\n{}", self.name, self.stderr_tail());
        }
        Ok(())
    }

    /// Sends the stop signal, waits for the exit, and kills it if it does not come.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child, so it
        // cannot name another process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, self.stop_signal) };
        let mut status = None;
        poll::eventually(STOP_LIMIT, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        let status = match status {
            Some(status) => status,
            None => {
                eprintln!(
                    "{} did not stop within {STOP_LIMIT:?}; killing it",
                    self.name
                );
                self.child.kill()?;
                self.child.wait()?
            }
        };
        self.exited = Some(status);
        Ok(status)
    }

    /// The last lines of its stderr, to explain a failure.
    pub fn stderr_tail(&self) -> String {
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
        format!("--- {} stderr (last lines) ---\n{tail}", self.name)
    }

    fn read_output(&self, stream: &str) -> String {
        fs::read_to_string(self.output.path().join(stream)).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("stopping {}: {error:#}", self.name);
        }
    }
}
