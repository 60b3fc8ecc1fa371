//! The shared libraries a host program needs, as `ldd` resolves them, so that the guest can run
//! the host's binaries unchanged: each library goes to the same path in the guest.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

/// The libraries of `program` with the dynamic loader among them; none for a static program.
pub fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>> {
    let mut ldd = cmd::new("ldd");
    ldd.arg(program).stdin(Stdio::null());
    let output = ldd
        .output()
        .with_context(|| format!("could not start `{}`", cmd::display(&ldd)))?;
    let printed = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // ldd refuses static programs with a message and exit code 1.
        if String::from_utf8_lossy(&output.stderr).contains("not a dynamic executable")
            || printed.contains("not a dynamic executable")
        {
            return Ok(Vec::new());
        }
        bail!(
            "`{}` failed ({}): {}",
            cmd::display(&ldd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse(&printed).with_context(|| format!("the libraries of {}", program.display()))
}

/// Library paths from ldd's output. The vDSO has no file; a library ldd cannot find is an error,
/// since the program would not start in the guest either.
fn parse(printed: &str) -> Result<Vec<PathBuf>> {
    let mut libraries = Vec::new();
    for line in printed
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or, for the loader,
        // "/lib64/ld-linux-x86-64.so.2 (0x...)".
        let resolved = match line.split_once(" => ") {
            Some((name, target)) => {
                if target.starts_with("not found") {
                    bail!("ldd cannot find {name}");
                }
                target
            }
            None => line,
        };
        let path = resolved.split(" (").next().unwrap_or_default();
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_libraries_and_the_loader_but_not_the_vdso() {
        let printed = "\tlinux-vdso.so.1 (0x00007ffd1d5f2000)
\tlibseccomp.so.2 => /lib/x86_64-linux-gnu/libseccomp.so.2 (0x00007f8edd9d0000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8edd7ee000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f8edda03000)
";
        assert_eq!(
            parse(printed).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libseccomp.so.2",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_missing_library_is_an_error() {
        assert!(parse("\tlibgone.so.1 => not found\n").is_err());
    }
}
