//! The ids (inode or MFT record numbers) of what a reader has listed, so that a walk reaches
//! each entry from its directory's listing instead of resolving its path from the root.
//!
//! It keeps every directory seen, by path, and the names of the last few directories listed.
//! A walk lists a directory, then asks for each entry: each of those is a map lookup, and
//! each directory is read once per walk. Memory grows with the number of directories, not
//! files. The filesystem is never mounted, so nothing changes under the index.

use std::collections::{HashMap, VecDeque};

/// How many directory listings are kept by name.
const RECENT: usize = 8;

/// One entry of a listing, as the index keeps it.
pub struct Listed {
    pub name: Vec<u8>,
    pub id: u64,
    pub is_dir: bool,
}

/// What [`DirIndex::resolve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Id(u64),
    Missing,
    /// A component before the last is not a directory (a symbolic link, say): the reader
    /// resolves such a path its own way.
    Through,
}

pub struct DirIndex {
    root: u64,
    /// Turns a name into its key: the name itself where names are exact (ext4), an upcased
    /// form where they are compared without case (NTFS).
    fold: fn(&[u8]) -> Vec<u8>,
    /// Key of a directory's path (its folded components joined by `/`) to its id.
    dirs: HashMap<Vec<u8>, u64>,
    /// The last listings, newest first: the directory's key and its entries by folded name.
    recent: VecDeque<(Vec<u8>, Names)>,
}

/// A listing's entries: folded name to id and whether it is a directory.
type Names = HashMap<Vec<u8>, (u64, bool)>;

impl DirIndex {
    pub fn new(root: u64, fold: fn(&[u8]) -> Vec<u8>) -> DirIndex {
        DirIndex { root, fold, dirs: HashMap::new(), recent: VecDeque::new() }
    }

    fn key(&self, comps: &[&[u8]]) -> Vec<u8> {
        let mut k = Vec::new();
        for c in comps {
            k.push(b'/');
            k.extend_from_slice(&(self.fold)(c));
        }
        k
    }

    /// Records the listing of directory `dir` (its components) whose id is `id`. A path with
    /// `..` in it is not recorded: it names its directory through another one.
    pub fn listed(&mut self, dir: &[&[u8]], id: u64, entries: &[Listed]) {
        if has_dot_dot(dir) {
            return;
        }
        let key = self.key(dir);
        let mut names = HashMap::with_capacity(entries.len());
        let mut child = key.clone();
        for e in entries {
            let name = (self.fold)(&e.name);
            if e.is_dir {
                child.truncate(key.len());
                child.push(b'/');
                child.extend_from_slice(&name);
                self.dirs.insert(child.clone(), e.id);
            }
            names.insert(name, (e.id, e.is_dir));
        }
        if !dir.is_empty() {
            self.dirs.insert(key.clone(), id);
        }
        self.recent.retain(|(k, _)| *k != key);
        self.recent.push_front((key, names));
        self.recent.truncate(RECENT);
    }

    /// The id of `comps`, listing directories with `list(dir components, dir id)` where the
    /// index does not know them yet. A path with `..` is [`Resolved::Through`].
    pub fn resolve<E>(
        &mut self,
        comps: &[&[u8]],
        mut list: impl FnMut(&[&[u8]], u64) -> Result<Vec<Listed>, E>,
    ) -> Result<Resolved, E> {
        if comps.is_empty() {
            return Ok(Resolved::Id(self.root));
        }
        if has_dot_dot(comps) {
            return Ok(Resolved::Through);
        }
        if let Some(id) = self.dirs.get(&self.key(comps)) {
            return Ok(Resolved::Id(*id));
        }
        // The deepest known directory above the path.
        let mut at = comps.len() - 1;
        let mut dir = self.root;
        while at > 0 {
            if let Some(id) = self.dirs.get(&self.key(&comps[..at])) {
                dir = *id;
                break;
            }
            at -= 1;
        }
        for i in at..comps.len() {
            let parent = self.key(&comps[..i]);
            let name = (self.fold)(comps[i]);
            let found = match self.recent.iter().find(|(k, _)| *k == parent) {
                Some((_, names)) => names.get(&name).copied(),
                None => {
                    let entries = list(&comps[..i], dir)?;
                    self.listed(&comps[..i], dir, &entries);
                    self.recent[0].1.get(&name).copied()
                }
            };
            match found {
                None => return Ok(Resolved::Missing),
                Some((id, _)) if i + 1 == comps.len() => return Ok(Resolved::Id(id)),
                Some((id, true)) => dir = id,
                Some((_, false)) => return Ok(Resolved::Through),
            }
        }
        unreachable!("the loop returns at the last component")
    }
}

fn has_dot_dot(comps: &[&[u8]]) -> bool {
    comps.iter().any(|c| *c == b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(n: &[u8]) -> Vec<u8> {
        n.to_vec()
    }

    /// A tree: 1 = root { a/ (2) { b (3), c/ (4) { d (5) } }, l (6, not a dir) }.
    fn list(dir: u64) -> Vec<Listed> {
        let e = |name: &str, id, is_dir| Listed { name: name.as_bytes().to_vec(), id, is_dir };
        match dir {
            1 => vec![e("a", 2, true), e("l", 6, false)],
            2 => vec![e("b", 3, false), e("c", 4, true)],
            4 => vec![e("d", 5, false)],
            _ => panic!("listed {dir}, which is not a directory"),
        }
    }

    #[test]
    fn each_directory_is_listed_once_per_walk() {
        let mut idx = DirIndex::new(1, exact);
        let mut lists = Vec::new();
        let mut go = |idx: &mut DirIndex, path: &[&[u8]]| {
            idx.resolve(path, |_, id| -> Result<_, ()> {
                lists.push(id);
                Ok(list(id))
            })
            .unwrap()
        };
        assert_eq!(go(&mut idx, &[]), Resolved::Id(1));
        assert_eq!(go(&mut idx, &[b"a", b"c", b"d"]), Resolved::Id(5));
        assert_eq!(go(&mut idx, &[b"a", b"b"]), Resolved::Id(3));
        assert_eq!(go(&mut idx, &[b"a", b"c"]), Resolved::Id(4));
        assert_eq!(go(&mut idx, &[b"a", b"x"]), Resolved::Missing);
        assert_eq!(go(&mut idx, &[b"l", b"x"]), Resolved::Through);
        assert_eq!(go(&mut idx, &[b"a", b"..", b"l"]), Resolved::Through);
        assert_eq!(go(&mut idx, &[b"a", b"c", b"d"]), Resolved::Id(5));
        assert_eq!(lists, vec![1, 2, 4]);
    }

    #[test]
    fn a_folded_index_finds_names_in_any_case() {
        let mut idx = DirIndex::new(1, |n| n.to_ascii_uppercase());
        let r = idx.resolve(&[b"A", b"C", b"D"], |_, id| -> Result<_, ()> { Ok(list(id)) });
        assert_eq!(r, Ok(Resolved::Id(5)));
    }

    #[test]
    fn old_listings_are_dropped_and_listed_again() {
        let mut idx = DirIndex::new(1, exact);
        let mut n = 0;
        // RECENT listings of other directories push the root's out.
        idx.resolve(&[b"a"], |_, id| -> Result<_, ()> { Ok(list(id)) }).unwrap();
        for i in 0..RECENT as u64 {
            idx.listed(&[b"z", format!("{i}").as_bytes()], 100 + i, &[]);
        }
        idx.resolve(&[b"l"], |_, id| -> Result<_, ()> {
            n += 1;
            Ok(list(id))
        })
        .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_listing_error_is_returned() {
        let mut idx = DirIndex::new(1, exact);
        assert_eq!(idx.resolve(&[b"a"], |_, _| Err("broken")), Err("broken"));
    }
}
