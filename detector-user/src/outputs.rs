//! Where alerts go: stdout, and a file when configured. A failed write is logged and
//! counted; it never stops the agent.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::Path,
};

use crate::metrics::Metrics;

enum Sink {
    Stdout,
    File(File),
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

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match &mut self.sink {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()
            }
            // One write per line: O_APPEND keeps concurrent writers' lines whole.
            Sink::File(file) => file.write_all(line.as_bytes()),
        }
    }
}

pub struct Outputs {
    outputs: Vec<Output>,
}

impl Outputs {
    pub fn new(outputs: Vec<Output>, metrics: &Metrics) -> Outputs {
        for output in &outputs {
            metrics
                .output_errors_total
                .with_label_values(&[output.name()]);
        }
        Outputs { outputs }
    }

    pub fn emit(&mut self, line: &str, metrics: &Metrics) {
        for output in &mut self.outputs {
            if let Err(e) = output.write_line(line) {
                metrics
                    .output_errors_total
                    .with_label_values(&[output.name()])
                    .inc();
                log::warn!("alert output {}: {e}", output.name());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines_to_the_file_and_counts_failures() {
        let dir = std::env::temp_dir().join(format!("escdet-outputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        let metrics = Metrics::new().unwrap();
        let mut outputs = Outputs::new(vec![Output::file(&path).unwrap()], &metrics);
        outputs.emit("{\"a\":1}\n", &metrics);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n{\"a\":1}\n");

        let full = Output {
            name: "file",
            sink: Sink::File(File::options().write(true).open("/dev/full").unwrap()),
        };
        let mut failing = Outputs::new(vec![full], &metrics);
        failing.emit("x\n", &metrics);
        assert_eq!(
            metrics
                .output_errors_total
                .with_label_values(&["file"])
                .get(),
            1
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
