//! The kernel's audit settings the bench changes (its rules, the enabled flag, the backlog
//! limit), saved before and put back after, also when the bench fails.
//!
//! One change outlives them: once audit has been enabled, the kernel gives every new process an
//! audit context, which puts all its system calls on the audit path, until reboot, whatever the
//! flag and the rules say; only a `never,task` rule spares new processes that. On a machine
//! that was not auditing, the bench therefore leaves that one rule behind: without it, every
//! process started later, the bench's own baseline included, would pay for audit.

use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};

use crate::cmd;

/// The key of every rule the bench adds, so that it removes those and no one else's.
pub const KEY: &str = "escdet-bench";

/// Keeps new processes off the audit path (see the module's documentation): as `auditctl -l`
/// prints it, and as `-a` and `-d` take it.
const NEVER_TASK: &str = "-a never,task";
const NEVER_TASK_RULE: &str = "never,task";
/// What `auditctl -l` prints without rules.
const NO_RULES: &str = "No rules";

/// What `auditctl -s` says.
pub struct Status {
    /// 0 off, 1 on, 2 locked until reboot.
    pub enabled: u32,
    /// The audit daemon registered with the kernel; 0 when none is.
    pub pid: u32,
    pub backlog_limit: u32,
}

pub fn status() -> Result<Status> {
    parse_status(&cmd::output(auditctl().arg("-s"))?)
}

fn parse_status(printed: &str) -> Result<Status> {
    let field = |name: &str| -> Result<u32> {
        printed
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("`auditctl -s` prints no {name}"))?
            .trim()
            .parse()
            .with_context(|| format!("`auditctl -s` prints a {name} that is no number"))
    };
    Ok(Status {
        enabled: field("enabled")?,
        pid: field("pid")?,
        backlog_limit: field("backlog_limit")?,
    })
}

/// The audit state as it was; dropping it restores it.
pub struct SavedAudit {
    enabled: u32,
    backlog_limit: u32,
    rules: String,
    restored: bool,
}

impl SavedAudit {
    /// Saves the state; a `never,task` rule is lifted until [`SavedAudit::restore`], since it
    /// would keep the workloads from being audited.
    pub fn save() -> Result<SavedAudit> {
        let status = status()?;
        if status.enabled == 2 {
            bail!("the kernel's audit configuration is locked (enabled 2) until reboot");
        }
        let saved = SavedAudit {
            enabled: status.enabled,
            backlog_limit: status.backlog_limit,
            rules: rules()?,
            restored: false,
        };
        if saved.has_never_task() {
            cmd::output(auditctl().args(["-d", NEVER_TASK_RULE]))?;
        }
        Ok(saved)
    }

    /// Deletes the bench's rules: from then on nothing more is audited for it.
    pub fn remove_rules(&self) -> Result<()> {
        cmd::output(auditctl().args(["-D", "-k", KEY])).map(drop)
    }

    /// Deletes the bench's rules and writes back the saved flags and a lifted `never,task`
    /// rule; checks that the rules are what they were, but for the `never,task` rule left on a
    /// machine that was not auditing.
    pub fn restore(&mut self) -> Result<()> {
        if self.restored {
            return Ok(());
        }
        self.remove_rules()?;
        let expected = if self.was_not_auditing() {
            println!(
                "audit: leaving `{NEVER_TASK}` in place, so that processes started from now on \
                 stay off the audit path (`auditctl -D` removes it)"
            );
            format!("{NEVER_TASK}\n")
        } else {
            self.rules.clone()
        };
        if self.has_never_task() || self.was_not_auditing() {
            cmd::output(auditctl().args(["-a", NEVER_TASK_RULE]))?;
        }
        cmd::output(auditctl().arg("-b").arg(self.backlog_limit.to_string()))?;
        cmd::output(auditctl().arg("-e").arg(self.enabled.to_string()))?;
        self.restored = true;
        let now = rules()?;
        ensure!(
            now == expected,
            "audit rules after the bench:\n{now}\ndiffer from those expected:\n{expected}"
        );
        Ok(())
    }

    fn has_never_task(&self) -> bool {
        self.rules.lines().any(|line| line.trim() == NEVER_TASK)
    }

    /// Neither enabled nor any rule: processes there owe nothing to audit.
    fn was_not_auditing(&self) -> bool {
        self.enabled == 0 && self.rules.trim() == NO_RULES
    }
}

impl Drop for SavedAudit {
    fn drop(&mut self) {
        if let Err(error) = self.restore() {
            eprintln!("restoring the audit state: {error:#}");
        }
    }
}

pub fn auditctl() -> Command {
    Command::new("auditctl")
}

fn rules() -> Result<String> {
    cmd::output(auditctl().arg("-l"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_flags_of_auditctl_s() {
        let printed = "enabled 1\nfailure 1\npid 15744\nrate_limit 0\nbacklog_limit 8192\n\
                       lost 0\nbacklog 0\nbacklog_wait_time 15000\n";
        let status = parse_status(printed).unwrap();
        assert_eq!(
            (status.enabled, status.pid, status.backlog_limit),
            (1, 15744, 8192)
        );
    }

    #[test]
    fn refuses_output_without_a_flag() {
        assert!(parse_status("enabled 1\nbacklog_limit 64\n").is_err());
    }
}
