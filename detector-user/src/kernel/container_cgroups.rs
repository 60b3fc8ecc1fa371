//! The kernel's container-cgroup map, as the agent writes it: the cgroups it classified as a
//! container's, and the removal of the pending entries of those it found to be the host's.

use std::sync::Arc;

use aya::maps::{HashMap, MapData};
use detector_common::{EventKind, LossReason, identity};

use crate::metrics::Metrics;

/// Where the agent records its verdict on a cgroup for the kernel's filters.
pub trait ContainerCgroups: Send {
    fn classify(&mut self, cgroup_id: u64, is_container: bool);
}

pub struct KernelContainerCgroups {
    map: HashMap<MapData, u64, u32>,
    metrics: Arc<Metrics>,
}

impl KernelContainerCgroups {
    pub fn new(map: HashMap<MapData, u64, u32>, metrics: Arc<Metrics>) -> KernelContainerCgroups {
        KernelContainerCgroups { map, metrics }
    }
}

impl ContainerCgroups for KernelContainerCgroups {
    fn classify(&mut self, cgroup_id: u64, is_container: bool) {
        if !is_container {
            // Absent means the host's; a host cgroup made before the agent started never had
            // an entry, so a missing key is no error.
            let _ = self.map.remove(&cgroup_id);
            return;
        }
        if let Err(e) = self.map.insert(cgroup_id, identity::CGROUP_CONTAINER, 0) {
            // Its processes' acts now pass for the host's, as when the kernel's own insert
            // of a new cgroup fails.
            self.metrics
                .events_lost(EventKind::CgroupMkdir.name(), LossReason::MapFull.name(), 1);
            log::warn!("cannot record cgroup {cgroup_id} as a container's in the kernel: {e}");
        }
    }
}
