//! The container runtime and kubelet API sockets of this host, known by the inode they are
//! bound to. Runtimes re-create their socket when they restart, so the table is refreshed.

use std::{
    collections::HashMap,
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
};

use detector_common::FileId;

use crate::kernel::watched_sockets::WatchSockets;

/// Where docker, containerd (also k3s's), CRI-O, podman, cri-dockerd, buildkit and the kubelet
/// listen by default. /var/run is usually a link to /run: both are listed for hosts where it
/// is not, and a socket reached by two paths is watched once.
const DEFAULT_PATHS: &[&str] = &[
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

pub struct RuntimeSockets {
    paths: Vec<PathBuf>,
    known: HashMap<FileId, PathBuf>,
}

impl RuntimeSockets {
    /// The default paths and `extra` ones; nothing is looked at before [`Self::refresh`].
    pub fn new(extra: &[PathBuf]) -> RuntimeSockets {
        let mut paths: Vec<PathBuf> = DEFAULT_PATHS.iter().map(PathBuf::from).collect();
        paths.extend(extra.iter().cloned());
        RuntimeSockets {
            paths,
            known: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub fn with_known(known: &[(u32, u64, &str)]) -> RuntimeSockets {
        RuntimeSockets {
            paths: Vec::new(),
            known: known
                .iter()
                .map(|&(dev, ino, path)| (FileId { dev, _pad: 0, ino }, PathBuf::from(path)))
                .collect(),
        }
    }

    /// Looks at every path again and tells `watch` about sockets that appeared or went away.
    pub fn refresh(&mut self, watch: &mut dyn WatchSockets) {
        let mut now: HashMap<FileId, PathBuf> = HashMap::new();
        for path in &self.paths {
            if let Some(socket) = socket_file(path) {
                now.entry(socket).or_insert_with(|| path.clone());
            }
        }
        for (socket, path) in &now {
            if !self.known.contains_key(socket) {
                log::info!("watching connections to {}", path.display());
                watch.watch(*socket);
            }
        }
        for socket in self.known.keys() {
            if !now.contains_key(socket) {
                watch.unwatch(*socket);
            }
        }
        self.known = now;
    }

    /// The host path of a watched socket the kernel saw.
    pub fn path_of(&self, socket: &FileId) -> Option<&Path> {
        self.known.get(socket).map(PathBuf::as_path)
    }
}

/// The socket at `path` (links followed), with its device in the kernel's internal encoding.
fn socket_file(path: &Path) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    meta.file_type()
        .is_socket()
        .then(|| super::file_id::of_metadata(&meta))
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
    impl WatchSockets for Recorder {
        fn watch(&mut self, socket: FileId) {
            self.watched.push(socket);
        }
        fn unwatch(&mut self, socket: FileId) {
            self.unwatched.push(socket);
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
        let mut sockets = RuntimeSockets::new(&[path.clone(), alias.clone(), plain.clone()]);
        let mut recorder = Recorder::default();
        sockets.refresh(&mut recorder);
        assert_eq!(recorder.watched.len(), 1, "one socket under two names");
        let socket = recorder.watched[0];
        assert_eq!(sockets.path_of(&socket), Some(path.as_path()));
        sockets.refresh(&mut recorder);
        assert_eq!(recorder.watched.len(), 1, "nothing new");
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        sockets.refresh(&mut recorder);
        assert_eq!(recorder.unwatched, vec![socket]);
        assert_eq!(sockets.path_of(&socket), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
