//! The configuration global the agent fills in before load.

use detector_common::{Config, Namespaces};

/// Set by the agent with `EbpfLoader::set_global("CONFIG", ..)`; read only through
/// [`volatile`], or the compiler would fold the zero initialiser into the code.
#[unsafe(no_mangle)]
pub(crate) static CONFIG: Config = Config::UNSET;

/// Offset of a kernel struct field, as resolved from the running kernel's BTF. One field is
/// read at a time: copying the whole table would cost stack the programs do not have.
macro_rules! offset {
    ($field:ident) => {
        $crate::config::volatile(&$crate::config::CONFIG.offsets.$field)
    };
}
pub(crate) use offset;

#[inline(always)]
pub fn volatile<T: Copy>(value: &T) -> T {
    // SAFETY: a reference is valid for reads.
    unsafe { core::ptr::read_volatile(value) }
}

#[inline(always)]
pub fn host_ns() -> Namespaces {
    volatile(&CONFIG.host_ns)
}

#[inline(always)]
pub fn host_mnt_ns() -> u32 {
    volatile(&CONFIG.host_ns.mnt)
}

#[inline(always)]
pub fn agent_tgid() -> u32 {
    volatile(&CONFIG.agent_tgid)
}

/// See `Config::identity_subsys`.
#[inline(always)]
pub fn identity_subsys() -> u32 {
    volatile(&CONFIG.identity_subsys)
}

#[inline(always)]
pub fn identity_hierarchy() -> u32 {
    volatile(&CONFIG.identity_hierarchy)
}

/// A TCP port of a node-local API the agent watches (`runtime_api_ports`).
#[inline(always)]
pub fn is_runtime_api_port(port: u16) -> bool {
    let ports = volatile(&CONFIG.runtime_api_ports);
    port != 0 && ports.contains(&port)
}

/// Whether the acts of `refusal` (a [`detector_common::refusal`] bit) are refused.
#[inline(always)]
pub fn enforcing(refusal: u32) -> bool {
    volatile(&CONFIG.enforce) & refusal != 0
}

/// Whether any act is refused: the one test on the path every write-open takes.
#[inline(always)]
pub fn enforcing_any() -> bool {
    volatile(&CONFIG.enforce) != 0
}

/// What an LSM program returns for an act it refuses, or lets through.
#[inline(always)]
pub fn lsm_verdict(deny: bool) -> i32 {
    const EPERM: i32 = 1;
    if deny { -EPERM } else { 0 }
}

#[inline(always)]
pub fn reading_module_id() -> u32 {
    volatile(&CONFIG.reading_module)
}

#[inline(always)]
pub fn loading_module_id() -> u32 {
    volatile(&CONFIG.loading_module)
}
