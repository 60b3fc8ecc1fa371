//! Installs what building and testing need, and only what is missing, so that it is cheap to run
//! before every other task.

use std::{collections::BTreeSet, fs, path::PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::{build, cmd};

/// Debian packages, one a line so that a new tool is a one-line change.
const APT_PACKAGES: &[&str] = &[
    // bpf-linker links against the LLVM major of the nightly that compiles the kernel crate.
    "llvm-22-dev",
    // LLVM 22's development files are incomplete for bpf-linker without Polly.
    "libpolly-22-dev",
    // rustc links through cc; escape-act (the helper the e2e containers run) links glibc
    // statically, from libc6-dev's libc.a.
    "gcc",
    "libc6-dev",
    // The end-to-end tests run real containers from a busybox rootfs.
    "runc",
    "busybox-static",
    // The block-device technique mounts a small ext2 image (mkfs.ext2) on a loop device.
    "e2fsprogs",
    // promtool checks the Prometheus alert rules under deploy/; the alerting e2e test runs a
    // real Prometheus and Alertmanager on loopback.
    "prometheus",
    "prometheus-alertmanager",
    // `cargo xtask image` builds the agent's image; the pod-spec e2e test runs it.
    "podman",
    // The PyPI tools that check deploy/ (PYTHON_TOOLS) live in a private venv.
    "python3-venv",
    // systemd-analyze checks the unit under deploy/systemd.
    "systemd",
    // `cargo xtask vmtest` boots other kernels (Debian's 6.1 and 5.10 cloud kernels, which it
    // fetches and unpacks itself) under TCG, and writes the unpacked modules' index (depmod).
    "qemu-system-x86",
    "kmod",
    // `cargo xtask vmtest --systemd` boots a Debian root made by mmdebstrap, packed by cpio.
    "mmdebstrap",
    "cpio",
    // The machine image's qemu-img is a backport that Debian's qemu-system-x86 conflicts with:
    // apt removes it while installing the VM lane, and this puts Debian's own back.
    "qemu-utils",
    // `cargo xtask bench`: the redis workload, and the systems compared with the detector.
    "redis-server",
    "redis-tools",
    "auditd",
    "bpftrace",
    // `cargo xtask bench --profile` records the getppid loop with perf.
    "linux-perf",
];

/// The nightly builds the kernel crate with `-Z build-std=core` (needs the sources) and lints it.
const NIGHTLY_COMPONENTS: &[&str] = &["rust-src", "clippy"];

/// PyPI tools that check deploy/, pinned, in a private venv under the target directory (never
/// system-wide): checkov scans the manifests and the Dockerfile; kubernetes-validate holds the
/// Kubernetes API schemas and validates the manifests offline; the Grafana Foundation SDK holds
/// Grafana's dashboard schema (its versions put an epoch before Grafana's version).
const PYTHON_TOOLS: &[(&str, &str)] = &[
    ("checkov", "3.3.30"),
    ("kubernetes-validate", "1.37.0"),
    ("grafana-foundation-sdk", "1769699379!11.6.0"),
];
/// Debian's interpreter, whatever python3 comes first on the PATH (pyenv's, say).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

const BPF_LINKER_VERSION: &str = "0.13.0";
/// `cargo xtask fuzz` and the test command's short fuzzing run.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn run() -> Result<()> {
    install_apt_packages()?;
    install_nightly_components()?;
    install_bpf_linker()?;
    install_cargo_fuzz()?;
    install_python_tools()
}

fn install_apt_packages() -> Result<()> {
    let missing = missing_apt_packages(true);
    if missing.is_empty() {
        return Ok(());
    }
    if !cmd::is_root() {
        bail!(
            "installing {} needs root: run this as root, or install them with apt-get yourself",
            missing.join(", ")
        );
    }
    // One update and one install for all missing packages: the update is the slow part.
    cmd::run(apt_get().arg("update"))?;
    apt_install(&missing)?;
    // An install may remove a listed package it conflicts with; put those back.
    let removed = missing_apt_packages(false);
    if removed.is_empty() {
        return Ok(());
    }
    println!(
        "reinstalling what the install removed: {}",
        removed.join(", ")
    );
    apt_install(&removed)
}

/// The listed packages not installed, saying so per package when `report` is set.
fn missing_apt_packages(report: bool) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for &package in APT_PACKAGES {
        let present = apt_package_installed(package);
        if report {
            if present {
                println!("ok: {package} present");
            } else {
                println!("installing: {package} (apt)");
            }
        }
        if !present {
            missing.push(package);
        }
    }
    missing
}

fn apt_install(packages: &[&str]) -> Result<()> {
    cmd::run(
        apt_get()
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages),
    )
}

pub(crate) fn apt_get() -> std::process::Command {
    let mut command = cmd::new("apt-get");
    command.env("DEBIAN_FRONTEND", "noninteractive");
    command
}

fn apt_package_installed(package: &str) -> bool {
    // dpkg-query fails for packages it has never heard of: that is "missing" too.
    cmd::output(cmd::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_ok_and(|status| status.trim() == "install ok installed")
}

fn install_nightly_components() -> Result<()> {
    let listed = cmd::output(cmd::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .context("the nightly toolchain is needed to build the kernel crate")?;
    // Components are listed with the host triple appended ("clippy-x86_64-unknown-linux-gnu"),
    // except target-independent ones ("rust-src").
    let installed: BTreeSet<&str> = listed.lines().map(str::trim).collect();
    for &component in NIGHTLY_COMPONENTS {
        let with_triple = format!("{component}-");
        let present = installed
            .iter()
            .any(|listed| *listed == component || listed.starts_with(&with_triple));
        if present {
            println!("ok: nightly {component} present");
        } else {
            println!("installing: nightly {component} (rustup)");
            cmd::run(cmd::new("rustup").args([
                "component",
                "add",
                component,
                "--toolchain",
                "nightly",
            ]))?;
        }
    }
    Ok(())
}

fn install_bpf_linker() -> Result<()> {
    if bpf_linker_version().as_deref() == Some(BPF_LINKER_VERSION) {
        println!("ok: bpf-linker {BPF_LINKER_VERSION} present");
        return Ok(());
    }
    println!("installing: bpf-linker {BPF_LINKER_VERSION} (cargo install, LLVM 22)");
    // Without LLVM_PREFIX llvm-sys looks for a system-wide LLVM and the link fails.
    cmd::run(
        cmd::new("cargo")
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--locked", "--no-default-features", "--features", "llvm-22"]),
    )?;
    match bpf_linker_version() {
        Some(version) if version == BPF_LINKER_VERSION => Ok(()),
        found => bail!(
            "after installing, `bpf-linker --version` reports {found:?}, expected {BPF_LINKER_VERSION} \
             (cargo installed it into {})",
            cmd::cargo_bin_dir().display()
        ),
    }
}

/// The version `bpf-linker --version` reports ("bpf-linker 0.13.0"), if it runs at all.
fn bpf_linker_version() -> Option<String> {
    let printed = cmd::output(cmd::new("bpf-linker").arg("--version")).ok()?;
    printed.split_whitespace().nth(1).map(str::to_owned)
}

fn install_cargo_fuzz() -> Result<()> {
    let version = || cmd::output(cmd::new("cargo").args(["fuzz", "--version"])).ok();
    // "cargo-fuzz 0.13.2"
    let installed = |printed: Option<String>| {
        printed.is_some_and(|p| p.split_whitespace().nth(1) == Some(CARGO_FUZZ_VERSION))
    };
    if installed(version()) {
        println!("ok: cargo-fuzz {CARGO_FUZZ_VERSION} present");
        return Ok(());
    }
    println!("installing: cargo-fuzz {CARGO_FUZZ_VERSION} (cargo install)");
    cmd::run(
        cmd::new("cargo")
            .args(["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION])
            .arg("--locked"),
    )?;
    if !installed(version()) {
        bail!("after installing, `cargo fuzz --version` does not report {CARGO_FUZZ_VERSION}");
    }
    Ok(())
}

/// An executable of the Python tools' venv, e.g. `python_tool("checkov")`.
pub fn python_tool(name: &str) -> PathBuf {
    python_venv().join("bin").join(name)
}

fn python_venv() -> PathBuf {
    build::target_dir().join("xtask").join("pytools")
}

/// Creates the venv and installs [`PYTHON_TOOLS`] unless a stamp says this exact list is there.
fn install_python_tools() -> Result<()> {
    let venv = python_venv();
    let stamp = venv.join("installed-requirements.txt");
    let wanted: String = PYTHON_TOOLS
        .iter()
        .map(|(name, version)| format!("{name}=={version}\n"))
        .collect();
    if fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        println!("ok: python tools present in {}", venv.display());
        return Ok(());
    }
    println!(
        "installing: {} (pip, into {})",
        wanted.trim().replace('\n', ", "),
        venv.display()
    );
    cmd::run(
        cmd::new(SYSTEM_PYTHON)
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    let requirements = venv.join("requirements.txt");
    fs::write(&requirements, &wanted)?;
    cmd::run(
        cmd::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--requirement",
            ])
            .arg(&requirements),
    )?;
    fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))
}
