//! Hand-off: make the new OS put the captured files back on its first boot. For a Linux image
//! ([`linux`]) the PE mounts the new root through the kernel, installs the static restore agent
//! and a systemd unit that runs it before anyone can log in. Windows targets are refused until
//! their agent exists.

pub mod elf;
pub mod linux;

pub use linux::{hand_off, Report, Target};
