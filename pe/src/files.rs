//! Host files written whole or not at all: the helper the Windows agent uses too.

pub use inplace_agent::files::write_atomic;
