//! `cargo xtask image`: the agent as an OCI image, built here with podman and no registry: a
//! statically linked (glibc) release binary on an empty base (deploy/image/Dockerfile), tagged
//! `localhost/escape-detector:VERSION` in the local store and saved as an OCI archive that
//! `podman load`, `ctr images import` or a registry push takes.

use std::{fs, path::PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::{build, cmd, setup};

const REPOSITORY: &str = "localhost/escape-detector";
const DOCKERFILE: &str = "deploy/image/Dockerfile";
/// The binary's name in the build context, as the Dockerfile copies it.
const BINARY: &str = "escape-detector";

pub struct Image {
    /// `localhost/escape-detector:VERSION`.
    pub reference: String,
    pub archive: PathBuf,
}

/// `cargo xtask image`: set up, build, and say where the image is.
pub fn run() -> Result<()> {
    setup::run()?;
    let image = build()?;
    println!("image: {} (local podman store)", image.reference);
    println!("archive: {}", image.archive.display());
    Ok(())
}

/// Builds the static binary and the image, checks that the binary runs in it, and saves it.
pub fn build() -> Result<Image> {
    let binary = static_agent()?;
    let context = build::target_dir().join("xtask").join("image");
    fs::create_dir_all(&context).with_context(|| format!("creating {}", context.display()))?;
    fs::copy(&binary, context.join(BINARY))
        .with_context(|| format!("copying {} into the build context", binary.display()))?;
    let version = env!("CARGO_PKG_VERSION");
    let reference = reference();
    let replaced = image_id(&reference);
    // No intermediate images (--layers=false), and the same binary makes the same image
    // (--timestamp 0): rebuilding leaves nothing behind.
    cmd::run(
        podman()
            .args([
                "build",
                "--layers=false",
                "--timestamp",
                "0",
                "--file",
                DOCKERFILE,
            ])
            .args(["--build-arg", &format!("VERSION={version}")])
            .args(["--tag", &reference])
            .arg(&context),
    )?;
    remove_if_replaced(replaced, &reference);
    // The base is empty, without a dynamic loader: this runs only if the binary is static.
    let printed = cmd::output(
        podman()
            .args(["run", "--rm", "--network", "none"])
            .args(LOW_ULIMITS)
            .args([&reference, "--version"]),
    )?;
    if !printed.contains(version) {
        bail!("`escape-detector --version` in {reference} printed {printed:?}");
    }
    let archive = context.join(format!("escape-detector-{version}.oci.tar"));
    // podman save refuses to overwrite an archive.
    let _ = fs::remove_file(&archive);
    cmd::run(
        podman()
            .args(["save", "--format", "oci-archive", "--output"])
            .arg(&archive)
            .arg(&reference),
    )?;
    Ok(Image { reference, archive })
}

/// `localhost/escape-detector:VERSION`, the image `build` makes and the DaemonSet runs.
pub fn reference() -> String {
    format!("{REPOSITORY}:{}", env!("CARGO_PKG_VERSION"))
}

/// Whether podman is on the PATH (`cargo xtask setup` installs it; it needs root).
pub fn podman_present() -> bool {
    cmd::output(cmd::new("podman").arg("--version")).is_ok()
}

/// The release agent, linked statically so that it runs on an empty base image. The target is
/// named so that the flag reaches this target's crates only, not build scripts (detector-user's
/// builds the kernel programs), and the binary lands apart from the dynamic one.
fn static_agent() -> Result<PathBuf> {
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let flags_var = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        target.to_uppercase().replace('-', "_")
    );
    cmd::run(
        cmd::new("cargo")
            .env(flags_var, "-C target-feature=+crt-static")
            .args(["build", "--release", "--package", "detector-user"])
            .args(["--target", &target]),
    )?;
    Ok(build::target_dir()
        .join(target)
        .join("release")
        .join(BINARY))
}

/// rlimits within the current ones: podman's defaults are higher, and raising them needs
/// CAP_SYS_RESOURCE, which root lacks on this machine kind.
const LOW_ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
];

/// podman as this machine kind runs it: runc (crun refuses the hybrid cgroup layout) and
/// cgroupfs.
fn podman() -> std::process::Command {
    let mut podman = cmd::new("podman");
    podman.args(["--runtime", "runc", "--cgroup-manager", "cgroupfs"]);
    podman
}

fn image_id(reference: &str) -> Option<String> {
    cmd::output(podman().args(["image", "inspect", "--format", "{{.Id}}", reference]))
        .ok()
        .map(|id| id.trim().to_owned())
}

/// A rebuild with a new binary leaves the old image untagged: remove it, unless a container
/// still uses it.
fn remove_if_replaced(old: Option<String>, reference: &str) {
    if let Some(old) = old
        && image_id(reference).is_some_and(|new| new != old)
    {
        let _ = cmd::output(podman().args(["image", "rm", &old]));
    }
}
