//! The kernel's watched-socket map: connections to these socket files are reported.

use aya::maps::{HashMap, MapData};
use detector_common::FileId;

/// Where the socket table records the sockets the kernel should report connections to.
pub trait WatchSockets: Send {
    fn watch(&mut self, socket: FileId);
    fn unwatch(&mut self, socket: FileId);
}

pub struct KernelSocketWatch {
    map: HashMap<MapData, FileId, u32>,
}

impl KernelSocketWatch {
    pub fn new(map: HashMap<MapData, FileId, u32>) -> KernelSocketWatch {
        KernelSocketWatch { map }
    }
}

impl WatchSockets for KernelSocketWatch {
    fn watch(&mut self, socket: FileId) {
        if let Err(e) = self.map.insert(socket, 1, 0) {
            log::warn!(
                "cannot watch socket inode {} in the kernel: {e}",
                socket.ino
            );
        }
    }

    fn unwatch(&mut self, socket: FileId) {
        // Already gone is fine: the map only ever holds what was added here.
        let _ = self.map.remove(&socket);
    }
}
