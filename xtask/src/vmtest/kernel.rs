//! The guest's kernel: a Debian cloud kernel package (bookworm's 6.1 or bullseye's 5.10), fetched
//! with an apt configuration of its own (sources list, package lists, cache, all under
//! target/xtask/vmtest/kernels/) and unpacked there. Nothing is installed: the machine's apt
//! sources, /boot and /lib/modules stay as they are, and either Debian release's kernel is
//! reached from any machine. Once unpacked, a kernel is reused until the directory is removed.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

use crate::{build, cmd};

/// Where kmod puts it, in sbin, which a non-login shell's PATH may lack.
const DEPMOD: &str = "/sbin/depmod";

/// The kernels the VM lane boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Version {
    /// Debian 12's (bookworm) LTS kernel
    #[value(name = "6.1")]
    V6_1,
    /// Debian 11's (bullseye) LTS kernel, as on many nodes still
    #[value(name = "5.10")]
    V5_10,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::V6_1 => "6.1",
            Version::V5_10 => "5.10",
        }
    }

    /// The Debian release whose archive carries it.
    fn suite(self) -> &'static str {
        match self {
            Version::V6_1 => "bookworm",
            Version::V5_10 => "bullseye",
        }
    }

    /// How `uname -r` of its packages starts: "6.1.0-" as in "6.1.0-56-cloud-amd64".
    fn release_prefix(self) -> &'static str {
        match self {
            Version::V6_1 => "6.1.0-",
            Version::V5_10 => "5.10.0-",
        }
    }

    /// Debian's archive: the point release, its stable updates and the security archive, where
    /// a kernel's newest ABI usually is. The keyring holds every supported release's keys.
    fn sources_list(self) -> String {
        const SIGNED_BY: &str = "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]";
        let suite = self.suite();
        format!(
            "deb {SIGNED_BY} http://deb.debian.org/debian {suite} main\n\
             deb {SIGNED_BY} http://deb.debian.org/debian {suite}-updates main\n\
             deb {SIGNED_BY} http://deb.debian.org/debian-security {suite}-security main\n"
        )
    }
}

pub struct Kernel {
    pub version: Version,
    /// What `uname -r` says in the guest, e.g. "6.1.0-56-cloud-amd64".
    pub release: String,
    pub image: PathBuf,
    pub modules: PathBuf,
}

/// The newest cloud kernel of `version` unpacked; fetches and unpacks the newest the archive
/// offers when there is none.
pub fn ensure_fetched(version: Version) -> Result<Kernel> {
    let dir = build::target_dir()
        .join("xtask/vmtest/kernels")
        .join(version.name());
    let root = dir.join("root");
    if let Some(kernel) = newest_unpacked(version, &root)? {
        println!(
            "ok: kernel {} present in {}",
            kernel.release,
            root.display()
        );
        return Ok(kernel);
    }
    let apt = PrivateApt::new(&dir.join("apt"), version)?;
    // The lists are always fresh here: the archive keeps only recent kernel ABIs.
    cmd::run(apt.command("apt-get").arg("update"))?;
    let pattern = format!(
        "^linux-image-{}[0-9]+-cloud-amd64$",
        version.release_prefix().replace('.', r"\.")
    );
    let offered = cmd::output(
        apt.command("apt-cache")
            .args(["search", "--names-only"])
            .arg(&pattern),
    )?;
    let release = newest_release(version, &offered).with_context(|| {
        format!(
            "Debian {} offers no package matching {pattern}",
            version.suite()
        )
    })?;
    let package = format!("linux-image-{release}");
    println!(
        "fetching: {package} (apt-get download, unpacked into {})",
        root.display()
    );
    let download = dir.join("download");
    recreate_dir(&download)?;
    cmd::run(
        apt.command("apt-get")
            .current_dir(&download)
            .args(["download", &package]),
    )?;
    let deb = only_file(&download)?;
    cmd::run(cmd::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    // Package scripts never ran, so the module index is ours to write; it comes last and marks
    // the kernel complete.
    cmd::run(cmd::new(DEPMOD).arg("-b").arg(&root).arg(&release))?;
    fs::remove_dir_all(&download).with_context(|| format!("removing {}", download.display()))?;
    newest_unpacked(version, &root)?
        .with_context(|| format!("{package} is unpacked but not found in {}", root.display()))
}

/// apt with its own sources list, package lists and cache in `dir`: the machine's sources
/// (another Debian release, or none) and its apt state are neither read nor changed.
struct PrivateApt {
    options: Vec<String>,
}

impl PrivateApt {
    fn new(dir: &Path, version: Version) -> Result<PrivateApt> {
        for sub in ["lists/partial", "cache/archives/partial"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        }
        let sources = dir.join("sources.list");
        fs::write(&sources, version.sources_list())
            .with_context(|| format!("writing {}", sources.display()))?;
        let path = |sub: &str| dir.join(sub).display().to_string();
        let options = [
            ("Dir::Etc::sourcelist", sources.display().to_string()),
            ("Dir::Etc::sourceparts", "/dev/null".to_owned()),
            ("Dir::State", path("state")),
            ("Dir::State::lists", path("lists")),
            ("Dir::Cache", path("cache")),
            // The lists and downloads are root's files in root's directory; apt's default
            // download user (_apt) may not be able to reach them.
            ("APT::Sandbox::User", "root".to_owned()),
        ];
        Ok(PrivateApt {
            options: options
                .into_iter()
                .flat_map(|(name, value)| ["-o".to_owned(), format!("{name}={value}")])
                .collect(),
        })
    }

    fn command(&self, program: &str) -> std::process::Command {
        let mut command = cmd::new(program);
        command.args(&self.options);
        command
    }
}

/// The unpacked cloud kernel of `version` with the highest ABI whose image and module index are
/// both present under `root`.
fn newest_unpacked(version: Version, root: &Path) -> Result<Option<Kernel>> {
    let boot = root.join("boot");
    if !boot.is_dir() {
        return Ok(None);
    }
    let mut newest: Option<(u32, Kernel)> = None;
    for entry in fs::read_dir(&boot).with_context(|| format!("reading {}", boot.display()))? {
        let name = entry?.file_name();
        let Some(release) = name.to_str().and_then(|n| n.strip_prefix("vmlinuz-")) else {
            continue;
        };
        let Some(abi) = cloud_abi(version, release) else {
            continue;
        };
        let kernel = Kernel {
            version,
            release: release.to_owned(),
            image: boot.join(&name),
            modules: root.join("lib/modules").join(release),
        };
        let complete = kernel.modules.join("modules.dep").is_file();
        if complete && newest.as_ref().is_none_or(|(best, _)| abi > *best) {
            newest = Some((abi, kernel));
        }
    }
    Ok(newest.map(|(_, kernel)| kernel))
}

/// The ABI number of a cloud kernel release of `version` ("6.1.0-56-cloud-amd64" is 56).
fn cloud_abi(version: Version, release: &str) -> Option<u32> {
    release
        .strip_prefix(version.release_prefix())?
        .strip_suffix("-cloud-amd64")?
        .parse()
        .ok()
}

/// The release of the image package with the highest ABI in `apt-cache search` output
/// ("NAME - DESCRIPTION" lines).
fn newest_release(version: Version, offered: &str) -> Option<String> {
    offered
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.strip_prefix("linux-image-"))
        .filter_map(|release| Some((cloud_abi(version, release)?, release)))
        .max_by_key(|(abi, _)| *abi)
        .map(|(_, release)| release.to_owned())
}

fn recreate_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// The one file `apt-get download` left in `dir`.
fn only_file(dir: &Path) -> Result<PathBuf> {
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    match files.as_slice() {
        [file] => Ok(file.clone()),
        _ => bail!("expected one package in {}, found {files:?}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_abi_of_cloud_releases_of_the_version_only() {
        assert_eq!(cloud_abi(Version::V6_1, "6.1.0-56-cloud-amd64"), Some(56));
        assert_eq!(cloud_abi(Version::V5_10, "5.10.0-46-cloud-amd64"), Some(46));
        assert_eq!(cloud_abi(Version::V5_10, "6.1.0-56-cloud-amd64"), None);
        assert_eq!(cloud_abi(Version::V6_1, "6.1.0-56-amd64"), None);
        assert_eq!(
            cloud_abi(Version::V6_1, "6.1.0-56-cloud-amd64-unsigned"),
            None
        );
        assert_eq!(cloud_abi(Version::V6_1, "6.12.0-1-cloud-amd64"), None);
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
            newest_release(Version::V6_1, offered).as_deref(),
            Some("6.1.0-50-cloud-amd64")
        );
        assert_eq!(newest_release(Version::V5_10, offered), None);
        assert_eq!(newest_release(Version::V6_1, ""), None);
    }

    #[test]
    fn each_version_has_its_releases_archives() {
        let bullseye = Version::V5_10.sources_list();
        assert!(bullseye.contains("/debian bullseye main"));
        assert!(bullseye.contains("/debian-security bullseye-security main"));
        assert!(!Version::V6_1.sources_list().contains("bullseye"));
    }

    #[test]
    fn finds_the_newest_complete_kernel_unpacked() {
        let root = std::env::temp_dir().join(format!("xtask-kernel-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (release, complete) in [
            ("5.10.0-45-cloud-amd64", true),
            ("5.10.0-46-cloud-amd64", false),
            ("6.1.0-56-cloud-amd64", true),
        ] {
            fs::create_dir_all(root.join("boot")).unwrap();
            fs::write(root.join(format!("boot/vmlinuz-{release}")), "").unwrap();
            let modules = root.join("lib/modules").join(release);
            fs::create_dir_all(&modules).unwrap();
            if complete {
                fs::write(modules.join("modules.dep"), "").unwrap();
            }
        }
        let found = newest_unpacked(Version::V5_10, &root).unwrap().unwrap();
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            found.release, "5.10.0-45-cloud-amd64",
            "46 has no module index"
        );
        assert_eq!(found.image, root.join("boot/vmlinuz-5.10.0-45-cloud-amd64"));
    }
}
