//! What differs between Windows and the stand-in used on Linux: Known Folders, long paths,
//! reparse points, ACLs and creation times.

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use self::windows::*;

#[cfg(not(windows))]
mod other;
#[cfg(not(windows))]
pub use self::other::*;
