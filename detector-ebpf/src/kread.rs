//! Reads of kernel memory at BTF-resolved offsets. A missing field or a failed read is `None`,
//! never a guess.

use aya_ebpf::helpers::{
    bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes, bpf_probe_read_user_str_bytes,
    generated,
};
use detector_common::FIELD_MISSING;

/// The `T` at `base + off`.
#[inline(always)]
pub fn field<T>(base: *const u8, off: u32) -> Option<T> {
    if off == FIELD_MISSING || base.is_null() {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel validates the address; a bad one is an error, not a fault.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize).cast::<T>()) }.ok()
}

/// The `T` at `base + off`, or zero when it cannot be read (a field this kernel lacks, a null
/// base, a bad address), without a branch on the outcome: the helper zero-fills its destination
/// when it fails. Chains of these (a pointer, then a field behind it) keep the verifier's
/// paths few, where an `Option` per read doubles them. `T` must be valid when all zero.
#[inline(always)]
pub fn read_or_zero<T: Copy>(base: *const u8, off: u32) -> T {
    let mut value = core::mem::MaybeUninit::<T>::zeroed();
    // The offsets live in read-only, frozen configuration: the verifier folds this test.
    if off != FIELD_MISSING {
        // SAFETY: the destination is ours and as large as the size passed; the helper
        // validates the source and zero-fills the destination when it cannot read it.
        unsafe {
            generated::bpf_probe_read_kernel(
                value.as_mut_ptr().cast(),
                core::mem::size_of::<T>() as u32,
                base.wrapping_add(off as usize).cast(),
            )
        };
    }
    // SAFETY: zero-initialised and, when the read succeeded, overwritten with a `T`.
    unsafe { value.assume_init() }
}

/// The non-null pointer at `base + off`.
#[inline(always)]
pub fn pointer(base: *const u8, off: u32) -> Option<*const u8> {
    field::<*const u8>(base, off).filter(|p| !p.is_null())
}

/// Copies the kernel string at `src` into `dst` (NUL-terminated); an unreadable string leaves
/// `dst` empty.
#[inline(always)]
pub fn kernel_str(src: *const u8, dst: &mut [u8]) {
    // SAFETY: the helper bounds the copy by dst's length and validates src.
    if src.is_null() || unsafe { bpf_probe_read_kernel_str_bytes(src, dst) }.is_err() {
        clear(dst);
    }
}

/// Copies the user string at `src` into `dst` (NUL-terminated); unreadable leaves it empty.
#[inline(always)]
pub fn user_str(src: *const u8, dst: &mut [u8]) {
    // SAFETY: as for kernel_str, with the user-memory helper.
    if src.is_null() || unsafe { bpf_probe_read_user_str_bytes(src, dst) }.is_err() {
        clear(dst);
    }
}

/// Copies `len` bytes (already bounded by the caller to `dst`'s size) of user memory.
/// Returns the number of bytes copied.
#[inline(always)]
pub fn user_bytes(src: *const u8, dst: *mut u8, len: u32) -> u32 {
    // SAFETY: the caller bounds len by the size of dst; the helper validates src.
    let ret = unsafe { generated::bpf_probe_read_user(dst.cast(), len, src.cast()) };
    if ret == 0 { len } else { 0 }
}

#[inline(always)]
fn clear(dst: &mut [u8]) {
    if let Some(first) = dst.first_mut() {
        *first = 0;
    }
}
