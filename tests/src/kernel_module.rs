//! Kernel modules for the module-load technique: finding a harmless one of the running kernel,
//! and unloading it again whatever the test does.

use std::{
    ffi::CString,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, ensure};

/// A module with no dependencies and no effect until configured: the one the tests load.
pub const DUMMY: &str = "dummy";
/// Its file below the running kernel's `kernel/` module tree.
pub const DUMMY_FILE: &str = "drivers/net/dummy.ko";

/// True when the running kernel loads modules at all.
pub fn supported() -> bool {
    Path::new("/proc/modules").exists()
}

pub fn is_loaded(name: &str) -> bool {
    fs::read_to_string("/proc/modules")
        .is_ok_and(|list| list.lines().any(|l| l.split(' ').next() == Some(name)))
}

/// `kernel/<relative>` of the running kernel's module tree, e.g. `drivers/net/dummy.ko`.
pub fn file(relative: &str) -> anyhow::Result<PathBuf> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let path = Path::new("/lib/modules")
        .join(release.trim())
        .join("kernel")
        .join(relative);
    ensure!(path.exists(), "no module file {}", path.display());
    Ok(path)
}

/// Unloads the module on drop if it is loaded then: the test's own load must not outlive it.
pub struct UnloadOnDrop {
    name: String,
}

impl UnloadOnDrop {
    /// Fails when the module is already loaded: the test could then not load it itself, and
    /// would unload something it did not load.
    pub fn new(name: &str) -> anyhow::Result<UnloadOnDrop> {
        ensure!(!is_loaded(name), "module {name} is already loaded");
        Ok(UnloadOnDrop {
            name: name.to_owned(),
        })
    }
}

impl Drop for UnloadOnDrop {
    fn drop(&mut self) {
        if !is_loaded(&self.name) {
            return;
        }
        let Ok(name) = CString::new(self.name.as_str()).context("module name") else {
            return;
        };
        // SAFETY: delete_module(2) with a valid NUL-terminated name and no flags.
        let rc = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), 0) };
        if rc != 0 {
            eprintln!(
                "could not unload module {}: {}",
                self.name,
                std::io::Error::last_os_error()
            );
        }
    }
}
