//! The kernel's audit settings the bench changes (its rules, the enabled flag, the backlog
//! limit), saved before and put back after, also when the bench fails.

use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};

use crate::cmd;

/// The key of every rule the bench adds, so that it removes those and no one else's.
pub const KEY: &str = "escdet-bench";

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
    pub fn save() -> Result<SavedAudit> {
        let status = status()?;
        if status.enabled == 2 {
            bail!("the kernel's audit configuration is locked (enabled 2) until reboot");
        }
        Ok(SavedAudit {
            enabled: status.enabled,
            backlog_limit: status.backlog_limit,
            rules: rules()?,
            restored: false,
        })
    }

    /// Deletes the bench's rules: from then on nothing more is audited for it.
    pub fn remove_rules(&self) -> Result<()> {
        cmd::output(auditctl().args(["-D", "-k", KEY])).map(drop)
    }

    /// Deletes the bench's rules and writes back the saved flags; checks that the rules are
    /// what they were.
    pub fn restore(&mut self) -> Result<()> {
        if self.restored {
            return Ok(());
        }
        self.remove_rules()?;
        cmd::output(auditctl().arg("-b").arg(self.backlog_limit.to_string()))?;
        cmd::output(auditctl().arg("-e").arg(self.enabled.to_string()))?;
        self.restored = true;
        let now = rules()?;
        ensure!(
            now == self.rules,
            "audit rules after the bench:\n{now}\ndiffer from those before:\n{}",
            self.rules
        );
        Ok(())
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
