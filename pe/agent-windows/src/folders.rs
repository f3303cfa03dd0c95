//! Resolving the user's Known Folders.
//!
//! On Windows the agent asks the shell (`platform::ShellFolders`), so redirected folders are
//! honoured. [`RootFolders`] is the stand-in: every folder is `<root>\<Name>` under one profile
//! root (Linux, and tests on either OS).

use crate::mapping::KnownFolder;
use std::io;
use std::path::PathBuf;

/// Where the user's Known Folders are.
pub trait Folders {
    /// The absolute path of `folder` for the current user.
    fn resolve(&self, folder: KnownFolder) -> io::Result<PathBuf>;
}

/// Every Known Folder as `<root>/<Name>`; the profile is `root`.
#[derive(Debug, Clone)]
pub struct RootFolders {
    pub root: PathBuf,
}

impl Folders for RootFolders {
    fn resolve(&self, folder: KnownFolder) -> io::Result<PathBuf> {
        Ok(match folder {
            KnownFolder::Profile => self.root.clone(),
            f => self.root.join(f.name()),
        })
    }
}
