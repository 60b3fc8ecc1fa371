//! Where alerts go: stdout, and a file and a webhook when configured.
//!
//! Each output writes on its own thread, behind a bounded queue, so a slow or stuck output (a
//! full disk, a stdout nobody reads) never blocks the event loop: when an output's queue is full
//! the alert is dropped for that output and counted. A failed write is logged and counted; it
//! never stops the agent. An alert reaches the file whole or not at all: one write of the whole
//! line, and a write the file took only part of (a full disk) is cut back off the file.

use std::{
    fs::{File, OpenOptions},
    io::{self, Seek, Write},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use prometheus::IntCounter;

use crate::{metrics::Metrics, webhook::Webhook};

/// Alerts waiting for one output. Alerts are rare; this many queued means the output is stuck.
pub const QUEUE_DEPTH: usize = 1024;
/// How long shutdown waits for the outputs to write what is queued.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// The `reason` label of `escape_detector_alerts_dropped_total`.
const QUEUE_FULL: &str = "queue_full";
const OUTPUT_FAILED: &str = "output_failed";

enum Sink {
    Stdout,
    File(File),
    Webhook(Webhook),
}

pub struct Output {
    name: &'static str,
    sink: Sink,
}

impl Output {
    pub fn stdout() -> Output {
        Output {
            name: "stdout",
            sink: Sink::Stdout,
        }
    }

    pub fn file(path: &Path) -> io::Result<Output> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Output {
            name: "file",
            sink: Sink::File(file),
        })
    }

    pub fn webhook(webhook: Webhook) -> Output {
        Output {
            name: "webhook",
            sink: Sink::Webhook(webhook),
        }
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()
            }
            Sink::File(file) => write_whole(file, line.as_bytes()),
            Sink::Webhook(webhook) => webhook.post(line),
        }
    }
}

/// One write of the whole line: O_APPEND keeps concurrent writers' lines whole. When the file
/// takes only part of it, that part is cut off again (from where the line began, which the
/// file offset tells), so the file holds whole lines only.
fn write_whole(file: &mut File, line: &[u8]) -> io::Result<()> {
    let written = loop {
        match file.write(line) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => break result?,
        }
    };
    if written == line.len() {
        return Ok(());
    }
    let end = file.stream_position()?;
    file.set_len(end - written as u64)?;
    Err(io::Error::new(
        io::ErrorKind::WriteZero,
        format!(
            "the file took {written} of the alert's {} bytes (disk full?); cut back",
            line.len()
        ),
    ))
}

/// One output's queue and the thread that writes it.
struct Queue {
    name: &'static str,
    lines: SyncSender<Arc<str>>,
    /// Lines queued and not yet written (or failed).
    pending: Arc<AtomicUsize>,
    writer: JoinHandle<()>,
    /// Whether the last alert was dropped, so that a run of drops is logged once.
    dropping: bool,
}

pub struct Outputs {
    queues: Vec<Queue>,
}

impl Outputs {
    /// Starts one writer thread per output.
    pub fn new(outputs: Vec<Output>, metrics: &Metrics) -> io::Result<Outputs> {
        let queues = outputs
            .into_iter()
            .map(|output| {
                let name = output.name;
                metrics
                    .alerts_dropped_total
                    .with_label_values(&[name, QUEUE_FULL]);
                let failures = Failures {
                    errors: metrics.output_errors_total.with_label_values(&[name]),
                    dropped: metrics
                        .alerts_dropped_total
                        .with_label_values(&[name, OUTPUT_FAILED]),
                };
                let (lines, queued) = mpsc::sync_channel(QUEUE_DEPTH);
                let pending = Arc::new(AtomicUsize::new(0));
                let writer = thread::Builder::new()
                    .name(format!("output-{name}"))
                    .spawn({
                        let pending = pending.clone();
                        move || write_queued(output, &queued, &pending, &failures)
                    })?;
                Ok(Queue {
                    name,
                    lines,
                    pending,
                    writer,
                    dropping: false,
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(Outputs { queues })
    }

    /// Queues `line` for every output; never waits. An output whose queue is full loses it.
    pub fn emit(&mut self, line: &str, metrics: &Metrics) {
        let line: Arc<str> = line.into();
        for queue in &mut self.queues {
            queue.pending.fetch_add(1, Ordering::AcqRel);
            let Err(e) = queue.lines.try_send(line.clone()) else {
                queue.dropping = false;
                continue;
            };
            queue.pending.fetch_sub(1, Ordering::AcqRel);
            let reason = match e {
                TrySendError::Full(_) => QUEUE_FULL,
                // Only a writer that panicked leaves its queue.
                TrySendError::Disconnected(_) => OUTPUT_FAILED,
            };
            metrics
                .alerts_dropped_total
                .with_label_values(&[queue.name, reason])
                .inc();
            // Once per run of drops: a stuck output in an alert storm must not flood the log.
            if !queue.dropping {
                log::warn!("alert output {}: dropping alerts ({reason})", queue.name);
                queue.dropping = true;
            }
        }
    }

    /// Waits until every output has written (or failed) what was queued before.
    #[cfg(test)]
    pub fn wait_written(&self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self
            .queues
            .iter()
            .any(|q| q.pending.load(Ordering::Acquire) != 0)
        {
            assert!(Instant::now() < deadline, "outputs did not drain");
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Counters an output's thread bumps on a failed write.
struct Failures {
    errors: IntCounter,
    dropped: IntCounter,
}

fn write_queued(
    mut output: Output,
    queued: &Receiver<Arc<str>>,
    pending: &AtomicUsize,
    failures: &Failures,
) {
    // Only the first of a run of failures is logged: a stdout nobody reads fails every alert.
    let mut failing = false;
    for line in queued {
        match output.write_line(&line) {
            Ok(()) if failing => {
                log::info!("alert output {}: writing again", output.name);
                failing = false;
            }
            Ok(()) => {}
            Err(e) => {
                failures.errors.inc();
                failures.dropped.inc();
                if !failing {
                    log::warn!("alert output {}: {e}; failures are counted", output.name);
                    failing = true;
                }
            }
        }
        pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Outputs {
    /// Closing the queues ends each writer once it has written what is queued. A writer stuck
    /// in a write (a stdout nobody reads) is left behind after [`DRAIN_TIMEOUT`], so that the
    /// agent still exits.
    fn drop(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        for Queue {
            name,
            lines,
            pending,
            writer,
            ..
        } in self.queues.drain(..)
        {
            drop(lines);
            while !writer.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if writer.is_finished() {
                let _ = writer.join();
            } else {
                log::warn!(
                    "alert output {name}: {} alerts still queued at exit",
                    pending.load(Ordering::Acquire)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};

    use nix::{fcntl::OFlag, sys::stat::Mode, unistd::mkfifo};

    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("escdet-outputs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn dropped(metrics: &Metrics, output: &str, reason: &str) -> u64 {
        metrics
            .alerts_dropped_total
            .with_label_values(&[output, reason])
            .get()
    }

    #[test]
    fn appends_lines_to_the_file_and_counts_failures() {
        let dir = temp_dir("append");
        let path = dir.join("alerts.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        let metrics = Metrics::new().unwrap();
        let mut outputs = Outputs::new(vec![Output::file(&path).unwrap()], &metrics).unwrap();
        outputs.emit("{\"a\":1}\n", &metrics);
        outputs.wait_written();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n{\"a\":1}\n");

        let full = Output {
            name: "file",
            sink: Sink::File(File::options().write(true).open("/dev/full").unwrap()),
        };
        let mut failing = Outputs::new(vec![full], &metrics).unwrap();
        failing.emit("x\n", &metrics);
        failing.wait_written();
        let errors = metrics.output_errors_total.with_label_values(&["file"]);
        assert_eq!(errors.get(), 1);
        assert_eq!(dropped(&metrics, "file", OUTPUT_FAILED), 1);
        assert_eq!(dropped(&metrics, "file", QUEUE_FULL), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A reader that does not read fills the pipe, the writer blocks, its queue fills: the
    /// event loop goes on, the surplus is counted, and what the reader gets is whole lines.
    #[test]
    fn a_stuck_output_never_blocks_the_emitter_and_its_drops_are_counted() {
        let dir = temp_dir("stuck");
        let fifo = dir.join("alerts.fifo");
        mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        // Opened first and without blocking, so the output's open does not wait for a reader.
        let mut reader = File::options()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(&fifo)
            .unwrap();
        let metrics = Metrics::new().unwrap();
        let mut outputs = Outputs::new(vec![Output::file(&fifo).unwrap()], &metrics).unwrap();
        let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(1000));
        let sent = 4 * QUEUE_DEPTH;
        let started = Instant::now();
        for _ in 0..sent {
            outputs.emit(&line, &metrics);
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "emit waited for the output: {:?}",
            started.elapsed()
        );
        let lost = dropped(&metrics, "file", QUEUE_FULL);
        assert!(lost > 0, "nothing dropped while the output was stuck");

        let mut received = Vec::new();
        let mut buf = vec![0; 1 << 16];
        while outputs.queues[0].pending.load(Ordering::Acquire) != 0 {
            match reader.read(&mut buf) {
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        drop(outputs);
        reader.read_to_end(&mut received).unwrap();
        let text = String::from_utf8(received).unwrap();
        assert!(
            text.lines().all(|l| format!("{l}\n") == line),
            "a line was cut"
        );
        assert_eq!(text.lines().count() as u64 + lost, sent as u64);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
