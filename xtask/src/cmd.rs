//! Running external commands: each one is echoed before it runs, and a failure names the command.

use std::{
    env,
    ffi::{OsStr, OsString},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

/// The workspace root; xtask is always run from this workspace, so its own manifest locates it.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
}

/// Where `cargo install` puts binaries (bpf-linker among them).
pub fn cargo_bin_dir() -> PathBuf {
    match env::var_os("CARGO_HOME") {
        Some(cargo_home) => PathBuf::from(cargo_home).join("bin"),
        None => PathBuf::from(env::var_os("HOME").unwrap_or_default()).join(".cargo/bin"),
    }
}

/// A command run from the workspace root, with cargo's bin directory on its PATH so that a
/// bpf-linker installed by `setup` is found by rustc even when the caller's PATH lacks it.
pub fn new(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(workspace_root())
        .env("PATH", path_with_cargo_bin());
    command
}

fn path_with_cargo_bin() -> OsString {
    let cargo_bin = cargo_bin_dir();
    let current = env::var_os("PATH").unwrap_or_default();
    if env::split_paths(&current).any(|dir| dir == cargo_bin) {
        return current;
    }
    env::join_paths(std::iter::once(cargo_bin).chain(env::split_paths(&current)))
        .expect("cargo's bin directory and the inherited PATH join into a PATH")
}

/// Runs `command` with inherited output, failing unless it exits successfully.
pub fn run(command: &mut Command) -> Result<()> {
    let shown = display(command);
    println!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `command` quietly and returns its stdout, failing (with its stderr) unless it succeeds.
/// For probes whose output decides what to do next.
pub fn output(command: &mut Command) -> Result<String> {
    let shown = display(command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{shown}` printed non-UTF-8"))
}

/// The command as a shell line, with the environment it sets (PATH aside, which every command
/// gets) in front.
pub fn display(command: &Command) -> String {
    let env = command
        .get_envs()
        .filter(|(key, _)| *key != "PATH")
        .filter_map(|(key, value)| Some(format!("{}={}", key.display(), quote(value?))));
    let program = std::iter::once(quote(command.get_program()));
    let args = command.get_args().map(quote);
    env.chain(program).chain(args).collect::<Vec<_>>().join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c))
    {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
