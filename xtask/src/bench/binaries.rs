//! The programs the bench runs: built here, or taken ready-made from a directory where there
//! is no cargo (a VM guest).

use std::{
    env,
    path::{Path, PathBuf},
};

use anyhow::{Result, ensure};
use escape_detector_e2e::detector;

use crate::{
    build::{self, Profile},
    setup,
};

/// Where the e2e harness finds `escape-act` for its containers' root filesystem.
const ACT_BIN_ENV: &str = "ESCAPE_ACT_BIN";

pub struct Binaries {
    /// escape-detector, release build.
    pub detector: PathBuf,
    /// bench-load, static: the workloads.
    pub load: PathBuf,
    /// escape-act, static: the act whose alert latency is measured.
    pub act: PathBuf,
}

impl Binaries {
    /// From `dir` when given (names as cargo builds them), else set up and built.
    pub fn obtain(dir: Option<&Path>) -> Result<Binaries> {
        let Some(dir) = dir else {
            setup::run()?;
            return Ok(Binaries {
                detector: build::agent(Profile::Release)?,
                load: build::bench_load()?,
                act: build::act()?,
            });
        };
        let binaries = Binaries {
            detector: dir.join("escape-detector"),
            load: dir.join("bench-load"),
            act: dir.join("escape-act"),
        };
        for binary in [&binaries.detector, &binaries.load, &binaries.act] {
            ensure!(binary.is_file(), "{} does not exist", binary.display());
        }
        Ok(binaries)
    }

    /// The e2e harness, whose detector and containers the bench uses, is told its binaries
    /// through the environment.
    pub fn export_for_harness(&self) {
        // SAFETY: called from xtask's only thread, before the bench starts any other; nothing
        // reads the environment concurrently.
        unsafe {
            env::set_var(detector::BIN_ENV, &self.detector);
            env::set_var(ACT_BIN_ENV, &self.act);
        }
    }
}
