//! Builds the kernel programs (`detector-ebpf`) with aya-build into OUT_DIR. Without the BPF
//! toolchain (bpf-linker, a nightly with rust-src) it writes an empty stub object instead, so
//! that `cargo check`, clippy and the unit tests work anywhere; the binary then refuses to
//! load and says how to get the toolchain (`cargo xtask setup`).

use std::{env, fs, path::PathBuf};

const STUB_ENV: &str = "ESCAPE_DETECTOR_EBPF_STUB";

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed={STUB_ENV}");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let object = out_dir.join("detector-ebpf");
    let forced_stub = env::var_os(STUB_ENV).is_some_and(|v| v == "1");
    let have_linker = which::which("bpf-linker").is_ok();
    if forced_stub || !have_linker {
        let why = if forced_stub {
            format!("{STUB_ENV}=1")
        } else {
            "bpf-linker not found".to_string()
        };
        println!("cargo:warning=kernel programs not built ({why}); run `cargo xtask setup`");
        fs::write(&object, [])?;
        return Ok(());
    }
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../detector-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "detector-ebpf",
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
