//! Builds the agent; detector-user's build script compiles the kernel crate on the nightly.

use std::{
    env,
    path::{Path, PathBuf},
};

use anyhow::Result;

use crate::{cmd, setup};

#[derive(Clone, Copy)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    fn dir_name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// `cargo xtask build`: set up, build, and say where the binary is.
pub fn run(profile: Profile) -> Result<()> {
    setup::run()?;
    let binary = agent(profile)?;
    println!("built: {}", binary.display());
    Ok(())
}

/// Builds `escape-detector` (without setup) and returns the path of the binary.
pub fn agent(profile: Profile) -> Result<PathBuf> {
    let mut build = cmd::new("cargo");
    build.args(["build", "--package", "detector-user"]);
    if let Profile::Release = profile {
        build.arg("--release");
    }
    cmd::run(&mut build)?;
    Ok(agent_path(profile))
}

/// Where cargo puts `escape-detector` for `profile`.
pub fn agent_path(profile: Profile) -> PathBuf {
    target_dir()
        .join(profile.dir_name())
        .join("escape-detector")
}

/// Builds `escape-act`, the helper the e2e tests run inside their containers, and returns the
/// path of the binary.
pub fn act() -> Result<PathBuf> {
    static_binary("escape-act")
}

/// Builds `bench-load`, the workloads `cargo xtask bench` times (on the host and in containers),
/// and returns the path of the binary.
pub fn bench_load() -> Result<PathBuf> {
    static_binary("bench-load")
}

/// Builds the binary named like its `package`, linked statically, since the containers' busybox
/// root filesystem has no libc; `cargo rustc` gives the flag to this crate alone, not to its
/// dependencies' build scripts.
fn static_binary(package: &str) -> Result<PathBuf> {
    cmd::run(
        cmd::new("cargo")
            .args(["rustc", "--release", "--package", package, "--bin", package])
            .args(["--", "-C", "target-feature=+crt-static"]),
    )?;
    Ok(target_dir().join(Profile::Release.dir_name()).join(package))
}

pub fn target_dir() -> PathBuf {
    let root = cmd::workspace_root();
    match env::var_os("CARGO_TARGET_DIR") {
        // A relative CARGO_TARGET_DIR is relative to where cargo runs: the workspace root here.
        Some(dir) => root.join(Path::new(&dir)),
        None => root.join("target"),
    }
}
