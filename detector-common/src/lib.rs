//! Types shared by the kernel programs (`detector-ebpf`) and the agent (`detector-user`).
//!
//! Every type is `#[repr(C)]`, `Copy`, and has no implicit padding: the verifier rejects reads
//! of uninitialised padding, and the agent reads these bytes straight out of the ring buffer.
//! With the `user` feature the types also implement `aya::Pod`.
#![no_std]

pub mod bpf_cmd;
pub mod config;
pub mod event;
pub mod helper_files;
pub mod kdev;
pub mod magic;

pub use config::*;
pub use event::*;

#[cfg(feature = "user")]
pub mod user;
