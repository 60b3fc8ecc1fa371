//! The kernel's watched-file map: connections to the sockets and write-opens of the binaries
//! in it are reported.

use aya::maps::{HashMap, MapData};
use detector_common::{FileId, WatchedFile};

/// Where the runtime-file table records the files the kernel should watch.
pub trait WatchFiles: Send {
    fn watch(&mut self, file: FileId, what: WatchedFile);
    fn unwatch(&mut self, file: FileId);
}

pub struct KernelFileWatch {
    map: HashMap<MapData, FileId, u32>,
}

impl KernelFileWatch {
    pub fn new(map: HashMap<MapData, FileId, u32>) -> KernelFileWatch {
        KernelFileWatch { map }
    }
}

impl WatchFiles for KernelFileWatch {
    fn watch(&mut self, file: FileId, what: WatchedFile) {
        if let Err(e) = self.map.insert(file, what as u32, 0) {
            log::warn!("cannot watch inode {} in the kernel: {e}", file.ino);
        }
    }

    fn unwatch(&mut self, file: FileId) {
        // Already gone is fine: the map only ever holds what was added here.
        let _ = self.map.remove(&file);
    }
}
