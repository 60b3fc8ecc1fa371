//! Kernel programs of escape-detector: entry points only; each concern lives in its module.
#![no_std]
#![no_main]

mod config;
mod emit;
mod files;
mod kread;
mod lifecycle;
mod maps;
mod modules;
mod mounts;
mod namespaces;
mod task;

use aya_ebpf::{
    macros::{lsm, raw_tracepoint, tracepoint},
    programs::{LsmContext, RawTracePointContext, TracePointContext},
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

#[lsm(hook = "file_open")]
pub fn file_open(ctx: LsmContext) -> i32 {
    files::on_file_open(&ctx)
}

#[tracepoint(category = "syscalls", name = "sys_enter_init_module")]
pub fn sys_enter_init_module(ctx: TracePointContext) -> u32 {
    modules::on_init_module_enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_finit_module")]
pub fn sys_enter_finit_module(ctx: TracePointContext) -> u32 {
    modules::on_finit_module_enter(&ctx);
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
