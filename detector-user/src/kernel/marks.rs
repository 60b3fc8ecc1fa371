//! The kernel's container-task map, as the agent writes it: processes whose cgroup names a
//! container are marked even when they share the host's mount namespace, so their acts are
//! not filtered out in the kernel.

use std::sync::Arc;

use aya::maps::{HashMap, MapData};
use detector_common::task_mark;

use crate::metrics::Metrics;

/// Where the pipeline records container processes for the kernel's filter.
pub trait MarkContainerTasks: Send {
    fn mark(&mut self, tgid: u32);
}

pub struct ContainerMarks {
    map: HashMap<MapData, u32, u32>,
    metrics: Arc<Metrics>,
}

impl ContainerMarks {
    pub fn new(map: HashMap<MapData, u32, u32>, metrics: Arc<Metrics>) -> ContainerMarks {
        ContainerMarks { map, metrics }
    }
}

impl MarkContainerTasks for ContainerMarks {
    fn mark(&mut self, tgid: u32) {
        let mark = self.map.get(&tgid, 0).unwrap_or(0) | task_mark::AGENT;
        if let Err(e) = self.map.insert(tgid, mark, 0) {
            self.metrics.container_marks_failed_total.inc();
            log::warn!("cannot mark pid {tgid} as a container process in the kernel: {e}");
        }
    }
}
