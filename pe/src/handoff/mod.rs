//! Hand-off: make the new OS put the captured files back on its first boot. For a Linux image
//! ([`linux`]) the PE mounts the new root through the kernel, installs the static restore agent
//! and a systemd unit that runs it before anyone can log in. For a Windows image ([`windows`])
//! it stages the profiles into the new C: for the Windows agent to move at each first logon.

pub mod elf;
pub mod linux;
pub mod windows;

pub use linux::{hand_off, Report, Target};
