//! Device numbers as the kernel keeps them inside (`super_block.s_dev`, `MKDEV`): 12 bits of
//! major above 20 bits of minor, unlike the `st_dev` user space sees.

const MINOR_BITS: u32 = 20;

pub const fn join(major: u32, minor: u32) -> u32 {
    (major << MINOR_BITS) | minor
}

/// A device number as system calls take it (`new_encode_dev`: the minor's low byte, the
/// major's 12 bits, then the minor's upper 12 bits) in the kernel's encoding.
pub const fn from_user(dev: u32) -> u32 {
    let major = (dev & 0xfff00) >> 8;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    join(major, minor)
}

/// (major, minor)
pub const fn split(dev: u32) -> (u32, u32) {
    (dev >> MINOR_BITS, dev & ((1 << MINOR_BITS) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_makedev_encodes() {
        // glibc's makedev(8, 1) and makedev(259, 300).
        assert_eq!(from_user(0x801), join(8, 1));
        assert_eq!(from_user(0x0011_032c), join(259, 300));
        assert_eq!(split(join(259, 300)), (259, 300));
    }
}
