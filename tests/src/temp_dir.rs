//! Temporary directories that remove themselves.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::{ids, mounts};

pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/escdet-<purpose>-<random>`. The `escdet` prefix makes leftovers and
    /// stray mounts easy to find (`grep escdet /proc/mounts`).
    pub fn new(purpose: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("escdet-{purpose}-{}", ids::random_hex(6)));
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove_tree(&self.path);
    }
}

/// Removes `dir` recursively unless something is mounted inside it, which a recursive removal
/// would empty; that case is reported instead, since it means a mount leaked.
pub fn remove_tree(dir: &Path) {
    let mounted = mounts::mount_points_under(dir);
    if !mounted.is_empty() {
        eprintln!(
            "not removing {}: still mounted there: {mounted:?}",
            dir.display()
        );
        return;
    }
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            eprintln!("removing {}: {e}", dir.display())
        }
        _ => {}
    }
}
