//! A host kernel setting (/proc/sys or /sys file) restored to its saved value on drop.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, ensure};

pub struct KernelSetting {
    path: PathBuf,
    saved: String,
}

impl KernelSetting {
    /// Reads the current value; call it before anything may change the setting.
    pub fn save(path: impl AsRef<Path>) -> anyhow::Result<KernelSetting> {
        let path = path.as_ref().to_owned();
        let saved =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(KernelSetting { path, saved })
    }

    pub fn saved(&self) -> &str {
        self.saved.trim_end_matches('\n')
    }

    /// The value the kernel holds now.
    pub fn current(&self) -> anyhow::Result<String> {
        let now = fs::read_to_string(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?;
        Ok(now.trim_end_matches('\n').to_owned())
    }

    /// Writes the saved value back and checks the kernel took it.
    pub fn restore_now(&self) -> anyhow::Result<()> {
        fs::write(&self.path, &self.saved)
            .with_context(|| format!("restoring {}", self.path.display()))?;
        let now = self.current()?;
        ensure!(
            now == self.saved(),
            "{} reads {now:?} after restoring {:?}",
            self.path.display(),
            self.saved()
        );
        Ok(())
    }
}

impl Drop for KernelSetting {
    fn drop(&mut self) {
        if let Err(e) = self.restore_now() {
            eprintln!("{e:#}");
        }
    }
}
