//! The user and capabilities a systemd unit gives the detector (`DynamicUser=`/`User=`,
//! `AmbientCapabilities=`, `CapabilityBoundingSet=`, `NoNewPrivileges=`), applied to a process
//! with util-linux's `setpriv`, so that the unit's privileges can be tried without booting
//! systemd.

use std::{fs, path::Path, process::Command};

use anyhow::{Context, bail, ensure};

/// util-linux's: busybox's applet (first on the VM lane's PATH) sets no uid or bounding set.
const SETPRIV: &str = "/usr/bin/setpriv";

/// The stand-in for a dynamic user: like one, `nobody` owns no file and is in no group.
pub const NOBODY: u32 = 65534;

#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    /// Kernel names (`CAP_BPF`) of the ambient (so also effective) capabilities.
    pub ambient: Vec<String>,
    pub bounding: Vec<String>,
    pub no_new_privs: bool,
}

impl Identity {
    /// The identity the [Service] section of `unit` asks for.
    pub fn of_unit(unit: &Path) -> anyhow::Result<Identity> {
        let text =
            fs::read_to_string(unit).with_context(|| format!("reading {}", unit.display()))?;
        let setting = |key: &str| {
            text.lines()
                .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .next_back()
                .map(str::trim)
        };
        let uid = match (setting("DynamicUser"), setting("User")) {
            (Some("yes"), _) => NOBODY,
            (_, None | Some("root")) => 0,
            (_, Some(user)) => bail!("User={user}: only root and DynamicUser have a stand-in"),
        };
        let list = |key: &str| -> Vec<String> {
            setting(key)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let identity = Identity {
            uid,
            ambient: list("AmbientCapabilities"),
            bounding: list("CapabilityBoundingSet"),
            no_new_privs: setting("NoNewPrivileges") == Some("yes"),
        };
        ensure!(
            !identity.bounding.is_empty(),
            "{} bounds no capability",
            unit.display()
        );
        Ok(identity)
    }

    /// Root with only the capabilities the README's privileges table adds to the DaemonSet,
    /// which runs as uid 0: every other one is out of the bounding set, so no exec regains it.
    pub fn readme_root() -> anyhow::Result<Identity> {
        // Built in: the VM lane runs the test binaries without the source tree.
        let capabilities = daemonset_capabilities(include_str!("../../README.md"));
        ensure!(
            !capabilities.is_empty(),
            "the README's privileges table adds no capability to the DaemonSet"
        );
        Ok(Identity {
            uid: 0,
            ambient: capabilities.clone(),
            bounding: capabilities,
            no_new_privs: true,
        })
    }

    /// `program` run as this identity: uid and gid, no supplementary groups, the capabilities.
    pub fn command(&self, program: &Path) -> Command {
        let caps = |names: &[String]| {
            let added: Vec<String> = names
                .iter()
                .map(|n| format!("+{}", n.trim_start_matches("CAP_").to_lowercase()))
                .collect();
            format!("-all,{}", added.join(","))
        };
        let mut command = Command::new(SETPRIV);
        command
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.uid))
            .arg("--clear-groups")
            .arg(format!("--inh-caps={}", caps(&self.ambient)))
            .arg(format!("--ambient-caps={}", caps(&self.ambient)))
            .arg(format!("--bounding-set={}", caps(&self.bounding)));
        if self.no_new_privs {
            command.arg("--no-new-privs");
        }
        command.arg("--").arg(program);
        command
    }
}

/// The capabilities of the privileges table (`| need | why | binary | DaemonSet | systemd |`)
/// whose DaemonSet column says `added`.
fn daemonset_capabilities(readme: &str) -> Vec<String> {
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix("`CAP_")?.strip_suffix('`')?;
            (*cells.get(4)? == "added").then(|| format!("CAP_{name}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_adds_bpf_perfmon_and_sys_ptrace_to_the_daemonset() {
        let identity = Identity::readme_root().unwrap();
        assert_eq!(
            identity.ambient,
            ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"]
        );
        assert_eq!((identity.uid, identity.bounding.len()), (0, 3));
    }

    #[test]
    fn the_shipped_unit_runs_as_a_dynamic_user_with_ambient_capabilities() {
        let unit =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/escape-detector.service");
        let identity = Identity::of_unit(&unit).unwrap();
        assert_eq!(identity.uid, NOBODY);
        assert!(identity.no_new_privs);
        assert!(identity.ambient.contains(&"CAP_BPF".to_owned()));
        let command = identity.command(Path::new("/bin/agent"));
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert!(
            args.iter()
                .any(|a| a.starts_with("--ambient-caps=-all,+bpf,")),
            "{args:?}"
        );
        assert_eq!(args[args.len() - 2..], ["--", "/bin/agent"]);
    }
}
