//! The guest's kernel: Debian bookworm's 6.1 cloud kernel, installed as a package and booted from
//! /boot. Installing it is harmless on the development VMs, which do not boot from their /boot.

use std::{fs, path::PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, setup::apt_get};

/// Names apt gives the 6.1 cloud kernel images, one per ABI ("linux-image-6.1.0-56-cloud-amd64").
const PACKAGE_PATTERN: &str = r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64$";

pub struct Kernel {
    /// What `uname -r` says in the guest, e.g. "6.1.0-56-cloud-amd64".
    pub release: String,
    pub image: PathBuf,
    pub modules: PathBuf,
}

/// The newest 6.1 cloud kernel installed; installs the newest apt offers when there is none.
pub fn ensure_installed() -> Result<Kernel> {
    if let Some(kernel) = newest_installed()? {
        println!("ok: kernel {} present", kernel.release);
        return Ok(kernel);
    }
    if !cmd::is_root() {
        bail!("installing a 6.1 cloud kernel needs root: run `cargo xtask vmtest` as root");
    }
    // The package lists must be fresh: the archive keeps only recent kernel ABIs.
    cmd::run(apt_get().arg("update"))?;
    let offered =
        cmd::output(cmd::new("apt-cache").args(["search", "--names-only", PACKAGE_PATTERN]))?;
    let package = newest_package(&offered)
        .with_context(|| format!("apt offers no package matching {PACKAGE_PATTERN}"))?;
    println!("installing: {package} (apt)");
    // No recommends: they are firmware and AppArmor, which a kernel booted by QEMU needs not.
    // --no-remove: on a shared machine, failing beats apt removing a conflicting package.
    cmd::run(
        apt_get()
            .args(["install", "-y", "--no-install-recommends", "--no-remove"])
            .arg(&package),
    )?;
    newest_installed()?.with_context(|| format!("{package} is installed but not found in /boot"))
}

/// The installed 6.1 cloud kernel with the highest ABI whose image and modules are both present.
fn newest_installed() -> Result<Option<Kernel>> {
    let mut newest: Option<(u32, Kernel)> = None;
    for entry in fs::read_dir("/boot").context("reading /boot")? {
        let name = entry?.file_name();
        let Some(release) = name.to_str().and_then(|n| n.strip_prefix("vmlinuz-")) else {
            continue;
        };
        let Some(abi) = cloud_abi(release) else {
            continue;
        };
        let kernel = Kernel {
            release: release.to_owned(),
            image: PathBuf::from("/boot").join(&name),
            modules: PathBuf::from("/lib/modules").join(release),
        };
        // depmod writes modules.dep last when the package is configured.
        let complete = kernel.modules.join("modules.dep").is_file();
        if complete && newest.as_ref().is_none_or(|(best, _)| abi > *best) {
            newest = Some((abi, kernel));
        }
    }
    Ok(newest.map(|(_, kernel)| kernel))
}

/// The ABI number of a 6.1 cloud kernel release ("6.1.0-56-cloud-amd64" is 56).
fn cloud_abi(release: &str) -> Option<u32> {
    release
        .strip_prefix("6.1.0-")?
        .strip_suffix("-cloud-amd64")?
        .parse()
        .ok()
}

/// The package with the highest ABI in `apt-cache search` output ("NAME - DESCRIPTION" lines).
fn newest_package(offered: &str) -> Option<String> {
    offered
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|name| Some((cloud_abi(name.strip_prefix("linux-image-")?)?, name)))
        .max_by_key(|(abi, _)| *abi)
        .map(|(_, name)| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_abi_of_cloud_releases_only() {
        assert_eq!(cloud_abi("6.1.0-56-cloud-amd64"), Some(56));
        assert_eq!(cloud_abi("6.1.0-56-amd64"), None);
        assert_eq!(cloud_abi("6.1.0-56-cloud-amd64-unsigned"), None);
        assert_eq!(cloud_abi("6.12.0-1-cloud-amd64"), None);
    }

    #[test]
    fn picks_the_highest_abi_numerically() {
        let offered = "\
linux-image-6.1.0-9-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
linux-image-6.1.0-50-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
linux-image-6.1.0-56-cloud-amd64-dbg - Debug symbols for linux-image-6.1.0-56-cloud-amd64
linux-image-6.1.0-48-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
";
        assert_eq!(
            newest_package(offered).as_deref(),
            Some("linux-image-6.1.0-50-cloud-amd64")
        );
        assert_eq!(newest_package(""), None);
    }
}
