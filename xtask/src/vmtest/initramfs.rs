//! The guest's root filesystem, an initramfs made of two cpio archives cached under
//! target/xtask/vmtest/: the system part (busybox, runc and other host programs, every shared
//! library, kernel modules, /init), one per kernel, which changes when Debian packages do, and
//! the project part, shared by the kernels
//! (the detector, the e2e test binaries and the escape-act helper), which changes with every
//! build. Each part is rewritten only when its manifest (every file's source, size and mtime)
//! changes; the kernel unpacks the two back to back. Uncompressed: gzip saved no boot time under
//! TCG and cost a second of compression at every rebuild.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{self, BufWriter},
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

use super::{artifacts::Artifacts, cpio, kernel::Kernel, kmod, ldd};
use crate::cmd;

const INIT_SCRIPT: &str = include_str!("init.sh");

/// Static, so it runs in every container rootfs too; the e2e harness copies it from this path.
const BUSYBOX: &str = "/bin/busybox";
/// Host programs the guest runs from the same paths: runc; promtool, which checks the metrics
/// page; and tools of which the e2e harness asks more than busybox's applets offer (`losetup
/// --find --show`, `mkfs.ext2 -q -F`, `readlink` of several links, `setpriv --reuid
/// --bounding-set`).
const HOST_PROGRAMS: &[&str] = &[
    "/usr/sbin/runc",
    "/usr/bin/promtool",
    "/usr/sbin/losetup",
    "/usr/sbin/mkfs.ext2",
    "/usr/bin/readlink",
    "/usr/bin/setpriv",
    SHELL,
];
/// /bin/sh, as on the development VMs: busybox's sh runs its own applets before any program
/// on the PATH, so a container that entered the host's mount namespace would get busybox's
/// `readlink`, which takes one link only.
const SHELL: &str = "/usr/bin/dash";
/// mkfs.ext2's defaults.
const HOST_FILES: &[&str] = &["/etc/mke2fs.conf"];
/// Mount points, and /newroot, the tmpfs /init moves everything to.
const EMPTY_DIRS: &[&str] = &["/proc", "/sys", "/dev", "/run", "/tmp", "/newroot"];

const DETECTOR: &str = "/bin/escape-detector";
/// init.sh names it to the tests, which copy it into every container rootfs.
const ACT: &str = "/bin/escape-act";
const TESTS_DIR: &str = "/vmtest/tests";
/// A test binary's file here names the only tests init.sh runs of it, one per line.
const ONLY_DIR: &str = "/vmtest/only";
/// Modules to load, one path a line, relative to /lib/modules/RELEASE.
const MODULE_LIST: &str = "/vmtest/modules";

/// Builds (or reuses) both parts in `dir` and returns the initramfs to boot `kernel` with.
/// `extra` host files (guest path, host path) join the project part, their shared libraries
/// the system part.
pub fn build(
    dir: &Path,
    kernel: &Kernel,
    artifacts: &Artifacts,
    extra: &[(&str, &Path)],
) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut project = project_tree(artifacts)?;
    for (guest, host) in extra {
        project.host_file(guest, host)?;
    }
    let system = system_tree(kernel, &project)?;
    let version = kernel.version.name();
    let parts = [
        (format!("system-{version}"), system.manifest()?, system),
        ("project".to_owned(), project.manifest()?, project),
    ];
    for (name, manifest, tree) in &parts {
        let archive = dir.join(format!("{name}.cpio"));
        write_cached(&archive, manifest, |out| tree.write_cpio(out))?;
    }
    // The parts' manifests together: the project part is shared, so another kernel's run may
    // have rewritten it since this kernel's initramfs was put together.
    let manifest: String = parts
        .iter()
        .map(|(_, manifest, _)| manifest.as_str())
        .collect();
    let initramfs = dir.join(format!("initramfs-{version}.cpio"));
    write_cached(&initramfs, &manifest, |out| {
        for (name, _, _) in &parts {
            io::copy(&mut File::open(dir.join(format!("{name}.cpio")))?, out)?;
        }
        Ok(())
    })?;
    Ok(initramfs)
}

fn project_tree(artifacts: &Artifacts) -> Result<Tree> {
    let mut tree = Tree::default();
    tree.host_file(DETECTOR, &artifacts.detector)?;
    tree.host_file(ACT, &artifacts.act)?;
    for test in &artifacts.tests {
        tree.host_file(&format!("{TESTS_DIR}/{}", test.name), &test.path)?;
        if !test.only.is_empty() {
            let names = test.only.iter().map(|name| format!("{name}\n")).collect();
            tree.insert(
                &format!("{ONLY_DIR}/{}", test.name),
                Node::Text(names, 0o644),
            );
        }
    }
    Ok(tree)
}

/// Everything but the project's binaries, whose shared libraries it holds too.
fn system_tree(kernel: &Kernel, project: &Tree) -> Result<Tree> {
    let mut tree = Tree::default();
    tree.insert("/init", Node::Text(INIT_SCRIPT.to_owned(), 0o755));
    // The kernel opens it for /init before anything is mounted.
    tree.insert("/dev/console", Node::CharDevice(5, 1));
    for dir in EMPTY_DIRS {
        tree.insert(dir, Node::Dir);
    }
    tree.host_file(BUSYBOX, Path::new(BUSYBOX))?;
    for applet in busybox_applets()? {
        tree.insert(
            &format!("/bin/{applet}"),
            Node::Symlink("busybox".to_owned()),
        );
    }
    tree.insert("/bin/sh", Node::Symlink(SHELL.to_owned()));
    for path in HOST_PROGRAMS.iter().chain(HOST_FILES) {
        tree.host_file(path, Path::new(path))?;
    }
    let programs = HOST_PROGRAMS
        .iter()
        .map(PathBuf::from)
        .chain(project.host_sources());
    for program in programs {
        for library in ldd::shared_libraries(&program)? {
            tree.host_file(path_str(&library)?, &library)?;
        }
    }
    add_modules(&mut tree, kernel)?;
    Ok(tree)
}

fn add_modules(tree: &mut Tree, kernel: &Kernel) -> Result<()> {
    let modules_dep = kernel.modules.join("modules.dep");
    let modules_dep = fs::read_to_string(&modules_dep)
        .with_context(|| format!("reading {}", modules_dep.display()))?;
    let at_boot = kmod::load_order(&modules_dep, kmod::LOADED_AT_BOOT)?;
    let by_tests = kmod::load_order(&modules_dep, kmod::LOADED_BY_TESTS)?;
    for module in at_boot.iter().chain(&by_tests) {
        tree.host_file(
            &format!("/lib/modules/{}/{module}", kernel.release),
            &kernel.modules.join(module),
        )?;
    }
    let list: String = at_boot.iter().map(|module| format!("{module}\n")).collect();
    tree.insert(MODULE_LIST, Node::Text(list, 0o644));
    Ok(())
}

fn busybox_applets() -> Result<Vec<String>> {
    let listed = cmd::output(cmd::new(BUSYBOX).arg("--list"))?;
    Ok(listed
        .lines()
        .map(str::trim)
        .filter(|applet| !applet.is_empty() && *applet != "busybox")
        .map(str::to_owned)
        .collect())
}

/// Writes `archive` unless the manifest beside it shows it holds what `manifest` describes.
pub(super) fn write_cached(
    archive: &Path,
    manifest: &str,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let manifest_path = archive.with_extension("manifest");
    if archive.is_file() && fs::read_to_string(&manifest_path).ok().as_deref() == Some(manifest) {
        println!("ok: {} is up to date", archive.display());
        return Ok(());
    }
    println!("building: {}", archive.display());
    write_whole(archive, write)?;
    // Last: a manifest never describes an archive that is not complete.
    fs::write(&manifest_path, manifest)
        .with_context(|| format!("writing {}", manifest_path.display()))
}

/// Writes `path` through a temporary file renamed into place, so that an interrupted run leaves
/// the old file or none, never a truncated one.
fn write_whole(path: &Path, write: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let partial = path.with_extension("partial");
    let written = write_then_rename(&partial, path, write);
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written.with_context(|| format!("writing {}", path.display()))
}

fn write_then_rename(
    partial: &Path,
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let mut out = BufWriter::new(File::create(partial)?);
    write(&mut out)?;
    out.into_inner().map_err(io::IntoInnerError::into_error)?;
    fs::rename(partial, path)?;
    Ok(())
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// A file tree by absolute guest path. A BTreeMap visits a directory before anything in it,
/// the order the kernel needs when it unpacks.
#[derive(Default)]
pub(super) struct Tree {
    nodes: BTreeMap<String, Node>,
}

#[derive(Debug)]
pub(super) enum Node {
    Dir,
    /// A host file copied with its permissions.
    HostFile(PathBuf),
    Text(String, u32),
    Symlink(String),
    CharDevice(u32, u32),
}

impl Tree {
    /// Adds `node` at `path` and every missing parent directory. A later node replaces an
    /// earlier one at the same path.
    pub(super) fn insert(&mut self, path: &str, node: Node) {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.and_then(Path::to_str).filter(|dir| *dir != "/") {
            self.nodes.entry(dir.to_owned()).or_insert(Node::Dir);
            parent = Path::new(dir).parent();
        }
        self.nodes.insert(path.to_owned(), node);
    }

    pub(super) fn host_file(&mut self, guest_path: &str, source: &Path) -> Result<()> {
        if !source.is_file() {
            bail!(
                "{} is missing (needed at {guest_path} in the guest)",
                source.display()
            );
        }
        self.insert(guest_path, Node::HostFile(source.to_owned()));
        Ok(())
    }

    fn host_sources(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.nodes.values().filter_map(|node| match node {
            Node::HostFile(source) => Some(source.clone()),
            _ => None,
        })
    }

    /// One line per node; a host file's line has its size and modification time, so that a
    /// rebuilt binary or an upgraded package changes the manifest.
    pub(super) fn manifest(&self) -> Result<String> {
        let mut manifest = String::new();
        for (path, node) in &self.nodes {
            let stamp = match node {
                Node::HostFile(source) => {
                    let metadata = fs::metadata(source)
                        .with_context(|| format!("reading {}", source.display()))?;
                    format!(
                        " {} bytes, mode {:o}, modified {}.{:09}",
                        metadata.len(),
                        metadata.permissions().mode(),
                        metadata.mtime(),
                        metadata.mtime_nsec()
                    )
                }
                _ => String::new(),
            };
            manifest.push_str(&format!("{path} {node:?}{stamp}\n"));
        }
        Ok(manifest)
    }

    pub(super) fn write_cpio(&self, out: &mut impl io::Write) -> Result<()> {
        let mut writer = cpio::Writer::new(out);
        for (path, node) in &self.nodes {
            match node {
                Node::Dir => writer.dir(path, 0o755)?,
                Node::HostFile(source) => {
                    let data = fs::read(source)
                        .with_context(|| format!("reading {}", source.display()))?;
                    let permissions = fs::metadata(source)?.permissions().mode() & 0o7777;
                    writer.file(path, permissions, &data)?;
                }
                Node::Text(text, permissions) => {
                    writer.file(path, *permissions, text.as_bytes())?
                }
                Node::Symlink(target) => writer.symlink(path, target)?,
                Node::CharDevice(major, minor) => {
                    writer.char_device(path, 0o600, (*major, *minor))?
                }
            }
        }
        writer.finish()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_parent_directories_before_their_contents() {
        let mut tree = Tree::default();
        tree.insert(
            "/lib/modules/6.1/kernel/loop.ko",
            Node::Text(String::new(), 0o644),
        );
        tree.insert("/lib64/ld.so", Node::Text(String::new(), 0o755));
        let paths: Vec<&str> = tree.nodes.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                "/lib",
                "/lib/modules",
                "/lib/modules/6.1",
                "/lib/modules/6.1/kernel",
                "/lib/modules/6.1/kernel/loop.ko",
                "/lib64",
                "/lib64/ld.so",
            ]
        );
    }

    #[test]
    fn rewrites_an_archive_only_when_its_manifest_changes() {
        let dir = std::env::temp_dir().join(format!("xtask-initramfs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let archive = dir.join("initramfs-5.10.cpio");
        let mut writes = 0;
        let mut write = |manifest: &str, content: &'static str| {
            write_cached(&archive, manifest, |out| {
                writes += 1;
                Ok(io::Write::write_all(out, content.as_bytes())?)
            })
            .unwrap();
        };
        write("system a\nproject a\n", "first");
        write("system a\nproject a\n", "not written");
        write("system a\nproject b\n", "second");
        let content = fs::read_to_string(&archive).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(content, "second");
        assert_eq!(writes, 2);
    }

    #[test]
    fn a_changed_script_changes_the_manifest() {
        let mut tree = Tree::default();
        tree.insert("/init", Node::Text("echo one\n".into(), 0o755));
        let before = tree.manifest().unwrap();
        tree.insert("/init", Node::Text("echo two\n".into(), 0o755));
        assert_ne!(tree.manifest().unwrap(), before);
    }
}
