//! Front ends: the TUI on tty1 and plain line output on the consoles.

pub mod bars;
pub mod map;
pub mod plain;
pub mod session;
pub mod tui;
pub mod words;
