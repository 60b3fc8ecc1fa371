//! The container runtimes' files on this host that a container must not reach: their and the
//! kubelet's API sockets and their binaries, known by device and inode. Runtimes re-create
//! their socket when they restart and upgrades replace binaries, so the table is refreshed.

use std::{
    collections::HashMap,
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
};

use detector_common::{FileId, WatchedFile};

use crate::kernel::watched_files::WatchFiles;

/// Where docker, containerd (also k3s's), CRI-O, podman, cri-dockerd, buildkit and the kubelet
/// listen by default. /var/run is usually a link to /run: both are listed for hosts where it
/// is not, and a socket reached by two paths is watched once.
const DEFAULT_SOCKETS: &[&str] = &[
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock.ttrpc",
    "/var/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
    "/run/podman/podman.sock",
    "/run/cri-dockerd.sock",
    "/run/buildkit/buildkitd.sock",
    "/var/lib/kubelet/pod-resources/kubelet.sock",
    "/var/lib/kubelet/device-plugins/kubelet.sock",
];

/// Words in the names runtimes give their abstract unix sockets (containerd's shims before 1.4
/// listened on `@/containerd-shim/<namespace>/<id>/shim.sock`: CVE-2020-15257). Abstract
/// sockets have no file to know them by; their name is the host listener's choice.
const ABSTRACT_SOCKET_WORDS: &[&str] = &[
    "containerd",
    "docker",
    "crio",
    "cri-o",
    "podman",
    "conmon",
    "kubelet",
    "buildkit",
];

/// Whether an abstract unix socket's name is a container runtime's.
pub fn is_runtime_abstract_socket(name: &str) -> bool {
    ABSTRACT_SOCKET_WORDS.iter().any(|word| name.contains(word))
}

/// The programs that start and run containers (OCI runtimes, shims, engines, the kubelet):
/// whoever rewrites one runs code on the host the next time a container starts.
const RUNTIME_BINARIES: &[&str] = &[
    "runc",
    "crun",
    "runsc",
    "youki",
    "kata-runtime",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v1",
    "containerd-shim-runc-v2",
    "containerd-shim-kata-v2",
    "dockerd",
    "docker-init",
    "docker-proxy",
    "conmon",
    "crio",
    "podman",
    "kubelet",
];

/// Where distributions and installers put them.
const BINARY_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/bin",
    "/sbin",
    "/usr/libexec/docker",
    "/usr/libexec/podman",
    "/usr/lib/cri-o-runc/sbin",
];

pub struct RuntimeFiles {
    paths: Vec<(PathBuf, WatchedFile)>,
    known: HashMap<FileId, (PathBuf, WatchedFile)>,
}

impl RuntimeFiles {
    /// The default paths and `extra_sockets`; nothing is looked at before [`Self::refresh`].
    pub fn new(extra_sockets: &[PathBuf]) -> RuntimeFiles {
        let sockets = DEFAULT_SOCKETS
            .iter()
            .map(PathBuf::from)
            .chain(extra_sockets.iter().cloned())
            .map(|path| (path, WatchedFile::RuntimeSocket));
        let binaries = BINARY_DIRS.iter().flat_map(|dir| {
            RUNTIME_BINARIES
                .iter()
                .map(move |name| (Path::new(dir).join(name), WatchedFile::RuntimeBinary))
        });
        RuntimeFiles {
            paths: sockets.chain(binaries).collect(),
            known: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub fn with_known(known: &[(u32, u64, &str, WatchedFile)]) -> RuntimeFiles {
        RuntimeFiles {
            paths: Vec::new(),
            known: known
                .iter()
                .map(|&(dev, ino, path, what)| {
                    (FileId { dev, _pad: 0, ino }, (PathBuf::from(path), what))
                })
                .collect(),
        }
    }

    /// Looks at every path again and tells `watch` about files that appeared or went away.
    pub fn refresh(&mut self, watch: &mut dyn WatchFiles) {
        let mut now: HashMap<FileId, (PathBuf, WatchedFile)> = HashMap::new();
        for (path, what) in &self.paths {
            if let Some(file) = runtime_file(path, *what) {
                // Named by where the links lead: /usr/bin/runc is often a link to ../sbin/runc.
                now.entry(file).or_insert_with(|| {
                    (path.canonicalize().unwrap_or_else(|_| path.clone()), *what)
                });
            }
        }
        for (file, (path, what)) in &now {
            if !self.known.contains_key(file) {
                log::info!("watching {} ({what:?})", path.display());
                watch.watch(*file, *what);
            }
        }
        for file in self.known.keys() {
            if !now.contains_key(file) {
                watch.unwatch(*file);
            }
        }
        self.known = now;
    }

    /// The host path of a watched file the kernel saw, when it is `what`.
    pub fn path_of(&self, file: &FileId, what: WatchedFile) -> Option<&Path> {
        self.known
            .get(file)
            .filter(|(_, kind)| *kind == what)
            .map(|(path, _)| path.as_path())
    }
}

/// The file at `path` (links followed) when it is what `what` expects: a socket, or a regular
/// file. Its device is in the kernel's internal encoding.
fn runtime_file(path: &Path, what: WatchedFile) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    let expected = match what {
        WatchedFile::RuntimeSocket => meta.file_type().is_socket(),
        WatchedFile::RuntimeBinary => meta.is_file(),
    };
    expected.then(|| super::file_id::of_metadata(&meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[derive(Default)]
    struct Recorder {
        watched: Vec<FileId>,
        unwatched: Vec<FileId>,
    }
    impl WatchFiles for Recorder {
        fn watch(&mut self, file: FileId, _: WatchedFile) {
            self.watched.push(file);
        }
        fn unwatch(&mut self, file: FileId) {
            self.unwatched.push(file);
        }
    }

    #[test]
    fn follows_sockets_as_they_come_and_go_and_ignores_other_files() {
        let dir = std::env::temp_dir().join(format!("escdet-sockets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("api.sock");
        let alias = dir.join("alias.sock");
        let plain = dir.join("plain");
        std::fs::write(&plain, "").unwrap();
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        std::os::unix::fs::symlink(&path, &alias).unwrap();
        let mut sockets = RuntimeFiles {
            paths: [&path, &alias, &plain]
                .map(|p| (p.clone(), WatchedFile::RuntimeSocket))
                .to_vec(),
            known: HashMap::new(),
        };
        let mut recorder = Recorder::default();
        sockets.refresh(&mut recorder);
        assert_eq!(recorder.watched.len(), 1, "one socket under two names");
        let socket = recorder.watched[0];
        assert_eq!(
            sockets.path_of(&socket, WatchedFile::RuntimeSocket),
            Some(path.as_path())
        );
        assert_eq!(sockets.path_of(&socket, WatchedFile::RuntimeBinary), None);
        sockets.refresh(&mut recorder);
        assert_eq!(recorder.watched.len(), 1, "nothing new");
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        sockets.refresh(&mut recorder);
        assert_eq!(recorder.unwatched, vec![socket]);
        assert_eq!(sockets.path_of(&socket, WatchedFile::RuntimeSocket), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn binaries_are_regular_files_only() {
        let dir = std::env::temp_dir().join(format!("escdet-binaries-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let runc = dir.join("runc");
        std::fs::write(&runc, "#!/bin/sh\n").unwrap();
        let mut files = RuntimeFiles {
            paths: vec![
                (runc.clone(), WatchedFile::RuntimeBinary),
                (dir.clone(), WatchedFile::RuntimeBinary),
                (runc.clone(), WatchedFile::RuntimeSocket),
            ],
            known: HashMap::new(),
        };
        let mut recorder = Recorder::default();
        files.refresh(&mut recorder);
        assert_eq!(recorder.watched.len(), 1, "{:?}", recorder.watched);
        let binary = recorder.watched[0];
        assert_eq!(
            files.path_of(&binary, WatchedFile::RuntimeBinary),
            Some(runc.as_path())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn abstract_sockets_are_known_by_the_runtimes_names() {
        assert!(is_runtime_abstract_socket(
            "/containerd-shim/moby/3f2a/shim.sock"
        ));
        assert!(!is_runtime_abstract_socket("/tmp/.X11-unix/X0"));
        assert!(!is_runtime_abstract_socket(""));
    }

    #[test]
    fn every_default_path_is_absolute() {
        let files = RuntimeFiles::new(&[]);
        assert!(files.paths.iter().all(|(p, _)| p.is_absolute()));
        assert!(files.paths.len() <= 256, "the kernel's map holds 256 files");
    }
}
