// Added by inplace (not part of ext4-view 1.0.0; see the workspace Cargo.toml).
//
// ext4-view 1.0 reads files, directories and links, but keeps inode numbers and everything
// else in an inode to itself: extended attributes (in the inode after `i_extra_isize`, and in
// the block `i_file_acl` points at), the block count, the flags. inplace parses those fields
// itself; these two calls hand it the raw bytes, read through the same journal-replayed,
// checksum-verified path ext4-view uses for everything else.

use crate::inode::{Inode, get_inode_location};
use crate::path::Path;
use crate::resolve::FollowSymlinks;
use crate::{Ext4, Ext4Error};
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
