//! Kernel programs of escape-detector: entry points only; each concern lives in its module.
#![no_std]
#![no_main]

mod bpf_calls;
mod config;
mod devices;
mod emit;
mod files;
mod handles;
mod identity;
mod kread;
mod lifecycle;
mod maps;
mod modules;
mod mounts;
mod namespaces;
mod ptrace;
mod signals;
mod sockets;
mod syscall_record;
mod task;
mod watched;

use aya_ebpf::{
    macros::{fentry, fexit, lsm, raw_tracepoint, tracepoint},
    programs::{FEntryContext, FExitContext, LsmContext, RawTracePointContext, TracePointContext},
};

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    lifecycle::on_exec(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    lifecycle::on_fork(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> i32 {
    lifecycle::on_exit();
    0
}

#[raw_tracepoint(tracepoint = "cgroup_attach_task")]
pub fn cgroup_attach_task(ctx: RawTracePointContext) -> i32 {
    lifecycle::on_cgroup_attach(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: RawTracePointContext) -> i32 {
    lifecycle::on_cgroup_mkdir(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "cgroup_rmdir")]
pub fn cgroup_rmdir(ctx: RawTracePointContext) -> i32 {
    lifecycle::on_cgroup_rmdir(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn signal_generate(ctx: RawTracePointContext) -> i32 {
    signals::on_signal_generate(&ctx);
    0
}

#[fentry(function = "switch_task_namespaces")]
pub fn switch_task_namespaces(ctx: FEntryContext) -> i32 {
    namespaces::on_switch_task_namespaces(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_setns")]
pub fn sys_enter_setns(ctx: TracePointContext) -> u32 {
    namespaces::on_setns_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_setns")]
pub fn sys_exit_setns(ctx: TracePointContext) -> u32 {
    namespaces::on_setns_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_unshare")]
pub fn sys_enter_unshare(ctx: TracePointContext) -> u32 {
    namespaces::on_unshare_enter(syscall_record::arg(&ctx, 0).unwrap_or(0));
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_unshare")]
pub fn sys_exit_unshare(ctx: TracePointContext) -> u32 {
    namespaces::on_unshare_exit(syscall_record::ret(&ctx));
    0
}

/// `ksys_unshare(unsigned long unshare_flags)`.
#[fentry(function = "ksys_unshare")]
pub fn ksys_unshare_entry(ctx: FEntryContext) -> i32 {
    namespaces::on_unshare_enter(ctx.arg(0));
    0
}

#[fexit(function = "ksys_unshare")]
pub fn ksys_unshare(ctx: FExitContext) -> i32 {
    let result: i32 = ctx.arg(1);
    namespaces::on_unshare_exit(result.into());
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_openat")]
pub fn sys_exit_openat(ctx: TracePointContext) -> u32 {
    files::on_open_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_openat2")]
pub fn sys_exit_openat2(ctx: TracePointContext) -> u32 {
    files::on_open_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_open")]
pub fn sys_exit_open(ctx: TracePointContext) -> u32 {
    files::on_open_exit(&ctx);
    0
}

/// creat(2) is open(O_CREAT | O_WRONLY | O_TRUNC) under its own syscall number, with its own
/// tracepoint: without it a write-open by creat goes unseen on this backend.
#[tracepoint(category = "syscalls", name = "sys_exit_creat")]
pub fn sys_exit_creat(ctx: TracePointContext) -> u32 {
    files::on_open_exit(&ctx);
    0
}

#[lsm(hook = "file_open")]
pub fn file_open(ctx: LsmContext) -> i32 {
    files::on_file_open(&ctx)
}

#[fexit(function = "security_file_open")]
pub fn security_file_open(ctx: FExitContext) -> i32 {
    files::on_security_file_open(&ctx);
    0
}

#[fentry(function = "blkdev_open")]
pub fn blkdev_open(ctx: FEntryContext) -> i32 {
    devices::on_blkdev_open(&ctx);
    0
}

#[fentry(function = "open_kcore")]
pub fn open_kcore(ctx: FEntryContext) -> i32 {
    devices::on_open_kcore(&ctx);
    0
}

#[fentry(function = "security_inode_mknod")]
pub fn security_inode_mknod(ctx: FEntryContext) -> i32 {
    devices::on_inode_mknod(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_mknodat")]
pub fn sys_enter_mknodat(ctx: TracePointContext) -> u32 {
    devices::on_mknodat_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_mknodat")]
pub fn sys_exit_mknodat(ctx: TracePointContext) -> u32 {
    devices::on_mknod_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_mknod")]
pub fn sys_enter_mknod(ctx: TracePointContext) -> u32 {
    devices::on_mknod_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_mknod")]
pub fn sys_exit_mknod(ctx: TracePointContext) -> u32 {
    devices::on_mknod_exit(&ctx);
    0
}

#[fexit(function = "do_handle_open")]
pub fn do_handle_open(ctx: FExitContext) -> i32 {
    handles::on_do_handle_open(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_open_by_handle_at")]
pub fn sys_exit_open_by_handle_at(ctx: TracePointContext) -> u32 {
    handles::on_open_by_handle_exit(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "module_load")]
pub fn module_load(ctx: RawTracePointContext) -> i32 {
    modules::on_module_load(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "module_request")]
pub fn module_request(ctx: RawTracePointContext) -> i32 {
    modules::on_module_request(&ctx);
    0
}

#[lsm(hook = "kernel_read_file")]
pub fn kernel_read_file(ctx: LsmContext) -> i32 {
    modules::on_kernel_read_file(&ctx)
}

#[lsm(hook = "kernel_load_data")]
pub fn kernel_load_data(ctx: LsmContext) -> i32 {
    modules::on_kernel_load_data(&ctx)
}

#[lsm(hook = "kernel_module_request")]
pub fn kernel_module_request(ctx: LsmContext) -> i32 {
    modules::on_kernel_module_request(&ctx)
}

#[tracepoint(category = "syscalls", name = "sys_enter_mount")]
pub fn sys_enter_mount(ctx: TracePointContext) -> u32 {
    mounts::on_mount_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_mount")]
pub fn sys_exit_mount(ctx: TracePointContext) -> u32 {
    mounts::on_mount_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_fsconfig")]
pub fn sys_enter_fsconfig(ctx: TracePointContext) -> u32 {
    mounts::on_fsconfig_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_fsconfig")]
pub fn sys_exit_fsconfig(ctx: TracePointContext) -> u32 {
    mounts::on_fsconfig_exit(&ctx);
    0
}

#[fexit(function = "vfs_get_tree")]
pub fn vfs_get_tree(ctx: FExitContext) -> i32 {
    mounts::on_vfs_get_tree(&ctx);
    0
}

#[fexit(function = "path_mount")]
pub fn path_mount(ctx: FExitContext) -> i32 {
    mounts::on_path_mount(&ctx);
    0
}

#[fexit(function = "__do_loopback")]
pub fn do_loopback(ctx: FExitContext) -> i32 {
    mounts::on_do_loopback(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_bpf")]
pub fn sys_enter_bpf(ctx: TracePointContext) -> u32 {
    bpf_calls::on_bpf_enter(&ctx);
    0
}

#[fentry(function = "security_bpf")]
pub fn security_bpf(ctx: FEntryContext) -> i32 {
    bpf_calls::on_security_bpf(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_ptrace")]
pub fn sys_enter_ptrace(ctx: TracePointContext) -> u32 {
    ptrace::on_ptrace_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_ptrace")]
pub fn sys_exit_ptrace(ctx: TracePointContext) -> u32 {
    ptrace::on_access_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_process_vm_readv")]
pub fn sys_enter_process_vm_readv(ctx: TracePointContext) -> u32 {
    ptrace::on_process_vm_enter(&ctx, detector_common::ptrace_access::VM_READ);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_process_vm_readv")]
pub fn sys_exit_process_vm_readv(ctx: TracePointContext) -> u32 {
    ptrace::on_access_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_process_vm_writev")]
pub fn sys_enter_process_vm_writev(ctx: TracePointContext) -> u32 {
    ptrace::on_process_vm_enter(&ctx, detector_common::ptrace_access::VM_WRITE);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_process_vm_writev")]
pub fn sys_exit_process_vm_writev(ctx: TracePointContext) -> u32 {
    ptrace::on_access_exit(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_pidfd_getfd")]
pub fn sys_enter_pidfd_getfd(ctx: TracePointContext) -> u32 {
    ptrace::on_pidfd_getfd_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_pidfd_getfd")]
pub fn sys_exit_pidfd_getfd(ctx: TracePointContext) -> u32 {
    ptrace::on_access_exit(&ctx);
    0
}

#[fexit(function = "proc_mem_open")]
pub fn proc_mem_open(ctx: FExitContext) -> i32 {
    ptrace::on_proc_mem_open(&ctx);
    0
}

#[fexit(function = "security_ptrace_access_check")]
pub fn security_ptrace_access_check(ctx: FExitContext) -> i32 {
    ptrace::on_ptrace_access_check(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    sockets::on_connect_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    sockets::on_connect_exit(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: RawTracePointContext) -> i32 {
    sockets::on_inet_sock_set_state(&ctx);
    0
}

#[fexit(function = "security_unix_stream_connect")]
pub fn security_unix_stream_connect(ctx: FExitContext) -> i32 {
    sockets::on_unix_stream_connect(&ctx);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
