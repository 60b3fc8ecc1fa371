//! Device numbers as the kernel keeps them inside (`super_block.s_dev`, `MKDEV`): 12 bits of
//! major above 20 bits of minor, unlike the `st_dev` user space sees.

const MINOR_BITS: u32 = 20;

pub const fn join(major: u32, minor: u32) -> u32 {
    (major << MINOR_BITS) | minor
}

/// (major, minor)
pub const fn split(dev: u32) -> (u32, u32) {
    (dev >> MINOR_BITS, dev & ((1 << MINOR_BITS) - 1))
}
