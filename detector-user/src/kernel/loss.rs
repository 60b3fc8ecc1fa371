//! Kernel-side loss counters: failed ring-buffer reservations, per CPU and event kind, summed
//! and exported as `escape_detector_events_lost_total`; container processes the kernel's
//! container-task map had no room for (`escape_detector_container_marks_failed_total`); new
//! cgroups its container-cgroup map had no room for
//! (`escape_detector_container_cgroups_failed_total`).

use aya::maps::{MapData, PerCpuArray};
use detector_common::{CGROUP_FAILED_SLOT, EventKind, KIND_SLOTS, MARK_FAILED_SLOT};

use crate::metrics::Metrics;

pub struct LossCounters {
    map: PerCpuArray<MapData, u64>,
    exported: [u64; KIND_SLOTS as usize],
}

impl LossCounters {
    pub fn new(map: PerCpuArray<MapData, u64>) -> LossCounters {
        LossCounters {
            map,
            exported: [0; KIND_SLOTS as usize],
        }
    }

    /// Adds what the kernel counted since the last call to the exported counters.
    pub fn refresh(&mut self, metrics: &Metrics) {
        for kind in EventKind::ALL {
            let new = self.take_new(kind as u32);
            if new > 0 {
                metrics
                    .events_lost_total
                    .with_label_values(&[kind.name()])
                    .inc_by(new);
            }
        }
        metrics
            .container_marks_failed_total
            .inc_by(self.take_new(MARK_FAILED_SLOT));
        metrics
            .container_cgroups_failed_total
            .inc_by(self.take_new(CGROUP_FAILED_SLOT));
    }

    /// What slot `slot` counted, over all CPUs, since the last call.
    fn take_new(&mut self, slot: u32) -> u64 {
        let Ok(per_cpu) = self.map.get(&slot, 0) else {
            return 0;
        };
        let total: u64 = per_cpu.iter().sum();
        let seen = &mut self.exported[slot as usize];
        let new = total.saturating_sub(*seen);
        *seen = total.max(*seen);
        new
    }
}
