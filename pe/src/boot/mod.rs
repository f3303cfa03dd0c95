//! The PE's PID 1: mounts, consoles, kernel parameters, driver loading, settling.

pub mod children;
pub mod cmdline;
pub mod console;
pub mod firmware;
pub mod init;
pub mod log;
pub mod medium;
pub mod modules;
pub mod mounts;
pub mod power;
pub mod preset_fetch;
pub mod preset_source;
pub mod report;
pub mod settle;
pub mod shell;
pub mod unattended;
