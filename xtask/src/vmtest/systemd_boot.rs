//! `cargo xtask vmtest --systemd`: deploy/systemd's unit under a real systemd. Boots Debian 12's
//! 6.1 kernel with a Debian 12 root (minbase with systemd, runc, busybox, jq and curl, made by
//! mmdebstrap from Debian's archive) as its initramfs and systemd as PID 1. The release agent,
//! deploy/escape-detector.toml and the unit are installed as the unit's header tells a user to,
//! and enabled; once systemd has started the unit, vmtest-systemd.service runs
//! systemd-checks.sh: the agent is ready and runs with the unit's user and capabilities, a
//! container escape in the guest raises its alert, `systemctl reload` rereads the file (and a
//! file that does not validate fails the reload, the agent running on), `systemctl stop` ends
//! it cleanly. The guest prints one line per check and powers off.

use std::{
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use super::{
    initramfs::{self, Node, Tree},
    kernel, qemu,
};
use crate::{
    build::{self, Profile},
    cmd,
    testlog::after,
};

/// The guest's root: what the checks use, on top of Debian's minimal base.
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "runc",
    "busybox-static",
    "jq",
    "curl",
];
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";

const INIT_SCRIPT: &str = include_str!("systemd-init.sh");
const CHECKS_SCRIPT: &str = include_str!("systemd-checks.sh");
const CHECKS_UNIT: &str = include_str!("vmtest-systemd.service");
/// Every check systemd-checks.sh makes, in its order: each must say ok.
const CHECKS: &[&str] = &[
    "ready",
    "unprivileged",
    "escape-alerted",
    "reload",
    "bad-reload-refused",
    "stop",
];

const BOOTED: &str = "VMTEST SYSTEMD BOOTED";
const CHECK: &str = "VMTEST SYSTEMD CHECK: ";
const DONE: &str = "VMTEST SYSTEMD DONE";

/// Where the unit's install instructions put each file: (guest path, path in the repository).
const INSTALLED: &[(&str, &str)] = &[
    (
        "/etc/escape-detector/escape-detector.toml",
        "deploy/escape-detector.toml",
    ),
    (
        "/etc/systemd/system/escape-detector.service",
        "deploy/systemd/escape-detector.service",
    ),
];
const INSTALLED_BINARY: &str = "/usr/local/bin/escape-detector";

/// The guest's initramfs, built, and the kernel to boot it with.
pub struct Prepared {
    dir: PathBuf,
    initramfs: PathBuf,
    kernel: PathBuf,
}

/// Builds the initramfs (the Debian root, then the agent and the unit's files) and fetches 6.1.
pub fn prepare() -> Result<Prepared> {
    let dir = build::target_dir().join("xtask/vmtest-systemd");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let root = root_archive(&dir)?;
    let project = project_archive(&dir, &build::agent(Profile::Release)?)?;
    let initramfs = dir.join("initramfs.cpio");
    let mut out = io::BufWriter::new(fs::File::create(&initramfs)?);
    for part in [&root, &project] {
        io::copy(&mut fs::File::open(part)?, &mut out)?;
    }
    out.flush()?;
    let kernel = kernel::ensure_fetched(kernel::Version::V6_1)?.image;
    Ok(Prepared {
        dir,
        initramfs,
        kernel,
    })
}

impl Prepared {
    /// Boots the guest with the kernel's `lsm=` list `lsm`; fails unless every check passed.
    pub fn boot(&self, lsm: Option<&str>, timeout: Duration) -> Result<()> {
        let guest = qemu::Guest {
            kernel: &self.kernel,
            initramfs: &self.initramfs,
            lsm,
            init_env: &[],
            init_args: &[],
            echo: true,
        };
        let log = self.dir.join("console.log");
        let console = qemu::run(&guest, &log, timeout, BOOTED)?;
        println!("console log: {}", log.display());
        if console.timed_out {
            bail!(
                "the guest did not finish within {} s (raise it with --timeout)",
                timeout.as_secs()
            );
        }
        verdict(&console.text)
    }
}

/// Ok only if every check said ok and the script ran to its end.
fn verdict(console: &str) -> Result<()> {
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    let mut done = false;
    for line in console.lines() {
        if let Some(check) = after(line, CHECK) {
            match check.strip_prefix("ok ") {
                Some(name) => passed.push(name.to_owned()),
                None => failures.push(check.to_owned()),
            }
        } else if after(line, DONE).is_some() {
            done = true;
        }
    }
    println!("\nsystemd boot checks");
    for check in CHECKS {
        let result = if passed.iter().any(|name| name == check) {
            "ok"
        } else {
            "FAILED"
        };
        println!("{check:<20} {result}");
    }
    if !failures.is_empty() {
        bail!("checks failed in the guest: {}", failures.join("; "));
    }
    if let Some(missing) = CHECKS
        .iter()
        .find(|check| !passed.iter().any(|p| p == *check))
    {
        bail!("the guest never reported the check {missing}");
    }
    if !done {
        bail!("the checks script did not run to its end");
    }
    Ok(())
}

/// Debian's root as a cpio archive, made again only when the package list changes.
fn root_archive(dir: &Path) -> Result<PathBuf> {
    let archive = dir.join("root.cpio");
    let manifest = format!("{SUITE} {MIRROR} {}\n", PACKAGES.join(","));
    initramfs::write_cached(&archive, &manifest, |out| {
        let root = dir.join("root");
        if root.exists() {
            fs::remove_dir_all(&root)?;
        }
        cmd::run(
            cmd::new("mmdebstrap")
                .args(["--variant=minbase", "--quiet"])
                .arg(format!("--include={}", PACKAGES.join(",")))
                // Nothing the guest reads: a smaller archive unpacks faster under TCG.
                .args(["--dpkgopt=path-exclude=/usr/share/man/*"])
                .args(["--dpkgopt=path-exclude=/usr/share/doc/*"])
                .args(["--dpkgopt=path-exclude=/usr/share/locale/*"])
                .arg(SUITE)
                .arg(&root)
                .arg(MIRROR),
        )?;
        pack(&root, out)?;
        fs::remove_dir_all(&root)?;
        Ok(())
    })?;
    Ok(archive)
}

/// `root` as a newc cpio archive on `out`, by GNU cpio: it keeps hard links, device nodes,
/// owners and modes as they are.
fn pack(root: &Path, out: &mut impl io::Write) -> Result<()> {
    let mut cpio = cmd::new("sh")
        .arg("-c")
        .arg("find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --quiet")
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .context("running cpio")?;
    let mut archive = cpio.stdout.take().context("cpio's stdout is not piped")?;
    io::copy(&mut archive, out)?;
    let status = cpio.wait()?;
    if !status.success() {
        bail!("cpio of {} failed ({status})", root.display());
    }
    Ok(())
}

/// The project's files, installed and enabled as a user would, and the checks.
fn project_archive(dir: &Path, detector: &Path) -> Result<PathBuf> {
    let mut tree = Tree::default();
    // The kernel runs /init from the initramfs, which moves the root to a tmpfs and starts
    // systemd there; without /etc/initrd-release, systemd takes it for the real root.
    tree.insert("/init", Node::Text(INIT_SCRIPT.to_owned(), 0o755));
    tree.host_file(INSTALLED_BINARY, detector)?;
    for (guest, source) in INSTALLED {
        tree.host_file(guest, &cmd::workspace_root().join(source))?;
    }
    let wants = "/etc/systemd/system/multi-user.target.wants";
    for unit in ["escape-detector.service", "vmtest-systemd.service"] {
        tree.insert(
            &format!("{wants}/{unit}"),
            Node::Symlink(format!("/etc/systemd/system/{unit}")),
        );
    }
    tree.insert(
        "/etc/systemd/system/vmtest-systemd.service",
        Node::Text(CHECKS_UNIT.to_owned(), 0o644),
    );
    tree.insert(
        "/vmtest/systemd-checks.sh",
        Node::Text(CHECKS_SCRIPT.to_owned(), 0o755),
    );
    // No login prompt on the console the checks report on.
    for getty in [
        "serial-getty@.service",
        "getty@.service",
        "getty-static.service",
    ] {
        tree.insert(
            &format!("/etc/systemd/system/{getty}"),
            Node::Symlink("/dev/null".to_owned()),
        );
    }
    tree.insert(
        "/etc/hostname",
        Node::Text("vmtest-systemd\n".to_owned(), 0o644),
    );
    let archive = dir.join("project.cpio");
    initramfs::write_cached(&archive, &tree.manifest()?, |out| tree.write_cpio(out))?;
    Ok(archive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(checks: &[&str], done: bool) -> String {
        let mut text = String::from("[    1.0] systemd[1]: booting\n");
        for check in checks {
            text.push_str(&format!("vmtest-systemd.sh[93]: {CHECK}{check}\n"));
        }
        if done {
            text.push_str(&format!("{DONE}\n"));
        }
        text
    }

    #[test]
    fn every_check_ok_and_done_passes() {
        let all: Vec<String> = CHECKS.iter().map(|c| format!("ok {c}")).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        verdict(&console(&all, true)).unwrap();
    }

    #[test]
    fn a_failed_missing_or_unfinished_check_fails() {
        let mut all: Vec<String> = CHECKS.iter().map(|c| format!("ok {c}")).collect();
        all[2] = "FAILED escape-alerted: no alert".to_owned();
        let failing: Vec<&str> = all.iter().map(String::as_str).collect();
        let error = verdict(&console(&failing, true)).unwrap_err();
        assert!(error.to_string().contains("no alert"), "{error}");

        let missing: Vec<&str> = failing
            .iter()
            .copied()
            .filter(|c| !c.contains("escape"))
            .collect();
        let error = verdict(&console(&missing, true)).unwrap_err();
        assert!(error.to_string().contains("escape-alerted"), "{error}");

        all[2] = "ok escape-alerted".to_owned();
        let unfinished: Vec<&str> = all.iter().map(String::as_str).collect();
        let error = verdict(&console(&unfinished, false)).unwrap_err();
        assert!(error.to_string().contains("end"), "{error}");
    }
}
