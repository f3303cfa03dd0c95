// Added by inplace (not part of ext4-view 1.0.0; see the workspace Cargo.toml).
//
// ext4-view 1.0 reads files, directories and links, but keeps inode numbers and everything
// else in an inode to itself: extended attributes (in the inode after `i_extra_isize`, and in
// the block `i_file_acl` points at), the block count, the flags. inplace parses those fields
// itself; these calls hand it the raw bytes, read through the same journal-replayed,
// checksum-verified path ext4-view uses for everything else.
//
// ext4-view 1.0 also reaches every file by path, resolving it from the root each time: a walk
// over a directory of n entries costs n lookups of O(n). `RawInode` and the `*_inode` calls
// walk by inode number instead: a directory entry names its inode, and metadata, listing,
// reading and link targets take that inode, read once.

use crate::inode::{Inode, InodeIndex, get_inode_location};
use crate::iters::file_blocks::FileBlocks;
use crate::path::{Path, PathBuf};
use crate::resolve::FollowSymlinks;
use crate::{DirEntry, Ext4, Ext4Error, File, Metadata, ReadDir};
use alloc::vec;
use alloc::vec::Vec;

impl Ext4 {
    /// The inode number and raw on-disk record (`inode_size` bytes) of `path`, not
    /// following a final symbolic link. The record's checksum was verified when `path` was
    /// resolved; journal blocks replace stale ones.
    ///
    /// # Errors
    ///
    /// As [`Ext4::symlink_metadata`].
    pub fn inode_record<'p, P>(&self, path: P) -> Result<(u32, Vec<u8>), Ext4Error>
    where
        P: TryInto<Path<'p>>,
    {
        let path = path.try_into().map_err(|_| Ext4Error::MalformedPath)?;
        let inode: Inode =
            self.path_to_inode(path, FollowSymlinks::ExcludeFinalComponent)?;
        let (block, offset) = get_inode_location(self, inode.index)?;
        let mut data = vec![0; usize::from(self.0.superblock.inode_size)];
        self.read_from_block(block, offset, &mut data)?;
        Ok((inode.index.get(), data))
    }

    /// One whole filesystem block (`block_size` bytes), journal blocks replacing stale ones.
    ///
    /// # Errors
    ///
    /// When `block` is 0 or past the end of the filesystem, or on a read error.
    pub fn read_raw_block(&self, block: u64) -> Result<Vec<u8>, Ext4Error> {
        let mut data = vec![0; self.0.superblock.block_size.to_usize()];
        self.read_from_block(block, 0, &mut data)?;
        Ok(data)
    }

    /// The block size in bytes.
    #[must_use]
    pub fn block_size(&self) -> u32 {
        // Block sizes are 1 KiB to 64 KiB.
        #[allow(clippy::as_conversions, clippy::cast_possible_truncation)]
        let size = self.0.superblock.block_size.to_usize() as u32;
        size
    }
}

/// An inode read by number: its parsed form and its raw record.
#[derive(Clone)]
pub struct RawInode {
    inode: Inode,
    record: Vec<u8>,
}

impl RawInode {
    /// The inode number.
    #[must_use]
    pub fn number(&self) -> u32 {
        self.inode.index.get()
    }

    /// The raw on-disk record (`inode_size` bytes), checksum verified.
    #[must_use]
    pub fn record(&self) -> &[u8] {
        &self.record
    }

    /// What `Ext4::symlink_metadata` says of it.
    #[must_use]
    pub fn metadata(&self) -> &Metadata {
        &self.inode.metadata
    }
}

impl DirEntry {
    /// The number of the inode this entry names.
    #[must_use]
    pub fn inode_number(&self) -> u32 {
        self.inode.get()
    }
}

impl Ext4 {
    /// Reads inode `number` (the root directory is 2).
    ///
    /// # Errors
    ///
    /// When the number is 0 or past the inode count, the checksum fails, or on a read error.
    pub fn inode(&self, number: u32) -> Result<RawInode, Ext4Error> {
        let index = InodeIndex::new(number).ok_or(Ext4Error::NotFound)?;
        let (inode, record) = Inode::read_with_record(self, index)?;
        Ok(RawInode { inode, record })
    }

    /// The entries of directory `dir`, as [`Ext4::read_dir`] lists them; `path` is only
    /// what [`DirEntry::path`] reports.
    ///
    /// # Errors
    ///
    /// `NotADirectory` when it is not a directory; otherwise as [`Ext4::read_dir`].
    pub fn read_dir_inode(&self, dir: &RawInode, path: PathBuf) -> Result<ReadDir, Ext4Error> {
        if !dir.inode.metadata.is_dir() {
            return Err(Ext4Error::NotADirectory);
        }
        ReadDir::new(self.clone(), &dir.inode, path)
    }

    /// Opens regular file `file` for reading.
    ///
    /// # Errors
    ///
    /// `IsADirectory` or `IsASpecialFile` when it is not a regular file.
    pub fn open_inode(&self, file: &RawInode) -> Result<File, Ext4Error> {
        if file.inode.metadata.is_dir() {
            return Err(Ext4Error::IsADirectory);
        }
        if !file.inode.metadata.file_type.is_regular_file() {
            return Err(Ext4Error::IsASpecialFile);
        }
        File::open_inode(self, file.inode.clone())
    }

    /// Where symbolic link `link` points.
    ///
    /// # Errors
    ///
    /// `NotASymlink` when it is not one; otherwise as [`Ext4::read_link`].
    pub fn read_link_inode(&self, link: &RawInode) -> Result<PathBuf, Ext4Error> {
        link.inode.symlink_target(self)
    }

    /// The filesystem block that holds the start of `file`'s data: `None` for an empty file,
    /// one that starts with a hole, or data kept in the inode.
    ///
    /// # Errors
    ///
    /// When the extent tree or block map cannot be read.
    pub fn first_data_block(&self, file: &RawInode) -> Result<Option<u64>, Ext4Error> {
        if file.inode.metadata.size_in_bytes == 0 || !file.inode.metadata.file_type.is_regular_file() {
            return Ok(None);
        }
        match FileBlocks::new(self.clone(), &file.inode)?.next() {
            Some(Ok(0)) | None => Ok(None),
            Some(Ok(block)) => Ok(Some(block)),
            Some(Err(e)) => Err(e),
        }
    }
}
