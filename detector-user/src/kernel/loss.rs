//! The kernel's loss counters (per CPU, by reason and event kind), summed over CPUs and added to
//! `escape_detector_events_lost_total{kind,reason}`.

use aya::maps::{MapData, PerCpuArray};
use detector_common::{EventKind, LOSS_SLOTS, LossReason, loss_slot};

use crate::metrics::Metrics;

pub struct LossCounters {
    map: PerCpuArray<MapData, u64>,
    exported: [u64; LOSS_SLOTS as usize],
}

impl LossCounters {
    pub fn new(map: PerCpuArray<MapData, u64>) -> LossCounters {
        LossCounters {
            map,
            exported: [0; LOSS_SLOTS as usize],
        }
    }

    /// Adds what the kernel counted since the last call to the exported counters.
    pub fn refresh(&mut self, metrics: &Metrics) {
        for reason in LossReason::ALL {
            for kind in EventKind::ALL {
                let new = self.take_new(loss_slot(kind, reason));
                if new > 0 {
                    metrics.events_lost(kind.name(), reason.name(), new);
                }
            }
        }
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
