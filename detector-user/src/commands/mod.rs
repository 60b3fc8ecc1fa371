//! One module per sub-command.

pub mod check_config;
pub mod probe;
pub mod reload;
pub mod rules;
pub mod run;
pub mod stdout;

/// Exit codes of CONTRACT.md.
pub mod exit {
    pub const OK: u8 = 0;
    pub const PROBES_FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
}
