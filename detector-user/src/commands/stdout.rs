//! Output of the one-shot sub-commands. A reader that has gone (`| head -1`, `| grep -q`) ends
//! the output quietly, as it does for Unix tools; `println!` would panic instead.

use std::io::{self, Write};

use super::exit;

/// Writes `text` to stdout; returns the exit code: `code` when written or when the reader has
/// gone, [`exit::PROBES_FAILED`] on another error, which goes to stderr.
pub fn write(text: &str, code: u8) -> u8 {
    match write_to(io::stdout().lock(), text) {
        Ok(()) => code,
        Err(e) => {
            eprintln!("writing to stdout: {e}");
            exit::PROBES_FAILED
        }
    }
}

fn write_to(mut out: impl Write, text: &str) -> io::Result<()> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing(io::ErrorKind);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(self.0.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_gone_reader_is_no_error_and_other_errors_are() {
        assert!(write_to(Failing(io::ErrorKind::BrokenPipe), "x").is_ok());
        assert!(write_to(Failing(io::ErrorKind::StorageFull), "x").is_err());
        let mut buf = Vec::new();
        write_to(&mut buf, "table\n").unwrap();
        assert_eq!(buf, b"table\n");
    }
}
