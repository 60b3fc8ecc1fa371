//! The project's binaries the guest runs: the release detector, the e2e test binaries and the
//! static `escape-act` helper the tests put in their containers.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build::{self, Profile},
    cmd,
};
use serde_json::Value;

const E2E_PACKAGE: &str = "escape-detector-e2e";

#[derive(Clone)]
pub struct Artifacts {
    pub detector: PathBuf,
    pub act: PathBuf,
    pub tests: Vec<TestBinary>,
}

#[derive(Clone, Debug)]
pub struct TestBinary {
    /// The test target's name (`harness` for tests/harness.rs).
    pub name: String,
    pub path: PathBuf,
    /// The tests the guest runs, by exact name; none for all of them.
    pub only: Vec<String>,
}

pub fn build() -> Result<Artifacts> {
    let detector = build::agent(Profile::Release)?;
    let act = build::act()?;
    let tests = e2e_test_binaries()?;
    if tests.is_empty() {
        bail!("cargo built no test binary for {E2E_PACKAGE}");
    }
    Ok(Artifacts {
        detector,
        act,
        tests,
    })
}

/// Builds the e2e tests without running them and reads their paths from cargo's messages.
fn e2e_test_binaries() -> Result<Vec<TestBinary>> {
    let mut cargo = cmd::new("cargo");
    cargo
        .args(["test", "--package", E2E_PACKAGE, "--release", "--no-run"])
        .arg("--message-format=json");
    let messages = stdout_of(&mut cargo)?;
    let mut tests = Vec::new();
    for line in messages.lines().filter(|line| line.starts_with('{')) {
        let message: Value =
            serde_json::from_str(line).with_context(|| format!("cargo printed {line}"))?;
        if let Some(test) = test_binary(&message) {
            tests.push(test);
        }
    }
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tests)
}

impl TestBinary {
    /// How many tests the guest will run of it, which is what its guest time follows.
    pub fn tests_run(&self) -> Result<usize> {
        if self.only.is_empty() {
            Ok(list_tests(self)?.len())
        } else {
            Ok(self.only.len())
        }
    }
}

/// The names of `binary`'s tests (libtest's `--list`, which runs none of them).
pub fn list_tests(binary: &TestBinary) -> Result<Vec<String>> {
    let mut list = Command::new(&binary.path);
    list.args(["--list", "--format", "terse"]);
    let listing = stdout_of(&mut list)?;
    Ok(listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

/// Runs `command` with its progress (stderr) shown and returns its stdout.
fn stdout_of(command: &mut Command) -> Result<String> {
    let shown = cmd::display(command);
    println!("$ {shown}");
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        bail!("`{shown}` failed ({})", output.status);
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{shown}` printed non-UTF-8"))
}

/// The executable of an integration test target (tests/*.rs), from one cargo message. The
/// library's own unit tests are left out: they test the harness's pure helpers, not the kernel,
/// and `cargo xtask test` runs them on the host.
fn test_binary(message: &Value) -> Option<TestBinary> {
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = message.get("target")?;
    let is_integration_test = target
        .get("kind")?
        .as_array()?
        .iter()
        .any(|kind| kind.as_str() == Some("test"));
    if !is_integration_test || message.get("profile")?.get("test")?.as_bool() != Some(true) {
        return None;
    }
    Some(TestBinary {
        name: target.get("name")?.as_str()?.to_owned(),
        path: PathBuf::from(message.get("executable")?.as_str()?),
        only: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: &str, executable: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"reason":"compiler-artifact","target":{{"kind":["{kind}"],"name":"harness"}},"profile":{{"test":true}},"executable":{executable}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn takes_integration_test_executables() {
        let test = test_binary(&message("test", r#""/t/release/deps/harness-1a""#)).unwrap();
        assert_eq!(test.name, "harness");
        assert_eq!(test.path, PathBuf::from("/t/release/deps/harness-1a"));
    }

    #[test]
    fn leaves_out_unit_tests_libraries_and_other_messages() {
        assert!(test_binary(&message("lib", r#""/t/release/deps/e2e-1a""#)).is_none());
        assert!(test_binary(&message("test", "null")).is_none());
        let finished =
            serde_json::from_str(r#"{"reason":"build-finished","success":true}"#).unwrap();
        assert!(test_binary(&finished).is_none());
    }
}
