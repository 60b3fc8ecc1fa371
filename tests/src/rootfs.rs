//! The busybox root filesystem every test container runs on, built once per test process and
//! copied for each container (a technique may write into its container's copy). Beside busybox
//! it holds [`ACT`], for the system calls no busybox applet makes.

use std::{
    env, fs,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use anyhow::{Context, bail};

use crate::{ids, temp_dir};

/// Installed by Debian's busybox-static; a dynamic busybox would not run in a rootfs without libc.
const BUSYBOX: &str = "/bin/busybox";

/// Where a container finds `escape-act` (tests/act), which makes one system call busybox cannot:
/// `escape-act bpf | ptrace PID | vm-read PID | connect PATH | fsmount FSTYPE DIR`.
pub const ACT: &str = "/bin/escape-act";

/// Names the host's static `escape-act` binary; `cargo xtask test` builds it and sets it.
const ACT_BIN_ENV: &str = "ESCAPE_ACT_BIN";

/// Directories the container runtime mounts over or the techniques use.
const DIRS: [&str; 8] = ["bin", "proc", "sys", "dev", "tmp", "etc", "mnt", "root"];

const ETC_FILES: [(&str, &str); 3] = [
    (
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    ),
    ("group", "root:x:0:\nnogroup:x:65534:\n"),
    ("hostname", "escdet\n"),
];

static TEMPLATE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Copies the busybox root filesystem to `dest`, which must not exist yet.
pub fn copy_to(dest: &Path) -> anyhow::Result<()> {
    let template = template()?;
    let status = Command::new("cp")
        .arg("-a")
        .arg(template)
        .arg(dest)
        .status()
        .context("running cp")?;
    if !status.success() {
        bail!(
            "cp -a {} {} failed: {status}",
            template.display(),
            dest.display()
        );
    }
    Ok(())
}

/// The template root filesystem, built on first use.
pub fn template() -> anyhow::Result<&'static Path> {
    let built = TEMPLATE.get_or_init(|| build().map_err(|e| format!("{e:#}")));
    match built {
        Ok(path) => Ok(path),
        Err(e) => bail!("building the busybox rootfs: {e}"),
    }
}

fn build() -> anyhow::Result<PathBuf> {
    let busybox = fs::read(BUSYBOX).with_context(|| {
        format!("reading {BUSYBOX} (install busybox-static: run `cargo xtask setup`)")
    })?;
    if !is_static_elf(&busybox) {
        bail!("{BUSYBOX} is dynamically linked; install busybox-static: run `cargo xtask setup`");
    }
    let act = read_act()?;
    let root = std::env::temp_dir().join(format!("escdet-rootfs-{}", ids::random_hex(6)));
    // The template is a static, which is never dropped: remove it when the test process exits.
    // SAFETY: registers a plain extern "C" function; atexit has no other precondition.
    if unsafe { libc::atexit(remove_template) } != 0 {
        bail!("atexit refused the rootfs clean-up handler");
    }
    populate(&root, &busybox, &act).with_context(|| format!("populating {}", root.display()))?;
    Ok(root)
}

/// The host's copy of `escape-act`, which tests also run on the host.
pub fn host_act() -> anyhow::Result<PathBuf> {
    let path = env::var_os(ACT_BIN_ENV).with_context(|| {
        format!(
            "{ACT_BIN_ENV} is not set; it must name the static escape-act binary the containers \
             run (`cargo xtask test` builds it and sets it)"
        )
    })?;
    Ok(PathBuf::from(path))
}

/// The helper [`ACT_BIN_ENV`] names, which must be static like busybox.
fn read_act() -> anyhow::Result<Vec<u8>> {
    let path = host_act()?;
    let act =
        fs::read(&path).with_context(|| format!("reading {ACT_BIN_ENV}={}", path.display()))?;
    if !is_static_elf(&act) {
        bail!(
            "{ACT_BIN_ENV}={} is not a static executable and the containers have no libc; build \
             it with `-C target-feature=+crt-static` (`cargo xtask test` does)",
            path.display()
        );
    }
    Ok(act)
}

fn populate(root: &Path, busybox: &[u8], act: &[u8]) -> anyhow::Result<()> {
    fs::create_dir(root)?;
    for dir in DIRS {
        fs::create_dir(root.join(dir))?;
    }
    let binary = install(root, BUSYBOX, busybox)?;
    install(root, ACT, act)?;
    for applet in applets(&binary)? {
        if applet != "busybox" {
            symlink("busybox", root.join("bin").join(applet))?;
        }
    }
    for (name, content) in ETC_FILES {
        fs::write(root.join("etc").join(name), content)?;
    }
    Ok(())
}

/// Writes an executable at `path` (absolute inside the container) under `root`.
fn install(root: &Path, path: &str, content: &[u8]) -> anyhow::Result<PathBuf> {
    let on_host = root.join(path.trim_start_matches('/'));
    fs::write(&on_host, content)?;
    fs::set_permissions(&on_host, fs::Permissions::from_mode(0o755))?;
    Ok(on_host)
}

fn applets(busybox: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new(busybox).arg("--list").output()?;
    if !out.status.success() {
        bail!("busybox --list failed: {}", out.status);
    }
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// True for a 64-bit ELF without a PT_INTERP program header (no dynamic loader needed).
fn is_static_elf(image: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read = |at: usize, len: usize| image.get(at..at + len);
    let u16_at = |at| read(at, 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |at| read(at, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let u64_at = |at| read(at, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    if read(0, 5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| u32_at(phoff + i * phentsize).is_some_and(|t| t != PT_INTERP))
}

extern "C" fn remove_template() {
    if let Some(Ok(root)) = TEMPLATE.get() {
        temp_dir::remove_tree(root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic_executables() {
        assert!(is_static_elf(&fs::read(BUSYBOX).unwrap()));
        assert!(!is_static_elf(&fs::read("/bin/ls").unwrap()));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }

    #[test]
    fn installs_busybox_and_the_act_helper_as_executables() {
        let dir = crate::temp_dir::TempDir::new("rootfs-test").unwrap();
        let root = dir.path().join("root");
        populate(&root, &fs::read(BUSYBOX).unwrap(), b"act").unwrap();
        let act = root.join(ACT.trim_start_matches('/'));
        assert_eq!(fs::read(&act).unwrap(), b"act");
        assert_eq!(
            fs::metadata(&act).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            PathBuf::from("busybox")
        );
    }
}
