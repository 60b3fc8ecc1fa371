//! Kernel-side loss counters: failed ring-buffer reservations, per CPU and event kind, summed
//! and exported as `escape_detector_events_lost_total`.

use aya::maps::{MapData, PerCpuArray};
use detector_common::{EventKind, KIND_SLOTS};

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
            let slot = kind as u32;
            let Ok(per_cpu) = self.map.get(&slot, 0) else {
                continue;
            };
            let total: u64 = per_cpu.iter().sum();
            let seen = &mut self.exported[slot as usize];
            if total > *seen {
                metrics
                    .events_lost_total
                    .with_label_values(&[kind.name()])
                    .inc_by(total - *seen);
                *seen = total;
            }
        }
    }
}
