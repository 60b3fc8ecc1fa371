//! The ring-buffer reader: drains kernel records into typed events for the pipeline. It runs
//! before any probe is attached, so no event is produced while nobody reads.

use std::sync::Arc;

use aya::maps::{MapData, RingBuf};
use detector_common::{EventKind, user::Event};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, oneshot},
};

use crate::metrics::{self, Metrics};

/// Events in flight between reader and pipeline. When the pipeline falls behind the reader
/// waits, the ring buffer fills, and the kernel counts what it cannot queue.
pub const QUEUE_DEPTH: usize = 16 * 1024;

/// Moves records from the ring buffer to `events` until `stop` fires (or its sender is gone);
/// then it moves what the ring buffer still holds and returns, which closes `events`.
pub async fn read_events(
    ring: RingBuf<MapData>,
    events: mpsc::Sender<Event>,
    metrics: Arc<Metrics>,
    mut stop: oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    // SAFETY: the ring buffer owns its map fd, which stays open and the same for as long as
    // the AsyncFd owns the ring buffer.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("registering the ring buffer: {e}"))?;
    let mut batch = Vec::with_capacity(256);
    loop {
        let mut ready = tokio::select! {
            ready = ring.readable_mut() => ready?,
            _ = &mut stop => break,
        };
        decode_all(ready.get_inner_mut(), &mut batch, &metrics);
        ready.clear_ready();
        if !send_all(&mut batch, &events).await {
            return Ok(());
        }
    }
    decode_all(ring.get_mut(), &mut batch, &metrics);
    send_all(&mut batch, &events).await;
    Ok(())
}

fn decode_all(ring: &mut RingBuf<MapData>, batch: &mut Vec<Event>, metrics: &Metrics) {
    while let Some(record) = ring.next() {
        match Event::decode(&record) {
            Ok(event) => {
                metrics
                    .events_total
                    .with_label_values(&[event.kind().name()])
                    .inc();
                batch.push(event);
            }
            Err(e) => {
                let kind = e.kind().map_or(metrics::UNKNOWN_KIND, EventKind::name);
                metrics.events_lost(kind, metrics::DECODE_ERROR, 1);
                log::warn!("dropping a kernel record: {e}");
            }
        }
    }
}

/// Whether the pipeline is still there to take them.
async fn send_all(batch: &mut Vec<Event>, events: &mpsc::Sender<Event>) -> bool {
    for event in batch.drain(..) {
        if events.send(event).await.is_err() {
            return false;
        }
    }
    true
}
