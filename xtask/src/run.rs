//! `cargo xtask run`: set up, build in release mode, and become `escape-detector run`.

use std::{ffi::OsString, os::unix::process::CommandExt as _, process::ExitCode};

use anyhow::{Context as _, Result};

use crate::{
    build::{self, Profile},
    cmd, setup,
};

pub fn run(args: &[OsString]) -> Result<ExitCode> {
    // Checked first: building for minutes only to be refused at load time helps nobody.
    if !cmd::is_root() {
        eprintln!(
            "escape-detector must run as root (it loads eBPF programs): run `cargo xtask run` as root"
        );
        return Ok(ExitCode::FAILURE);
    }
    setup::run()?;
    let binary = build::agent(Profile::Release)?;
    let mut detector = cmd::new(&binary);
    detector.arg("run").args(args);
    println!("$ {}", cmd::display(&detector));
    // exec, so that signals (Ctrl-C, SIGTERM) reach the detector itself.
    let error = detector.exec();
    Err(error).with_context(|| format!("could not execute {}", binary.display()))
}
