//! `Fingerprint`: the stat summary that decides whether an item's content must be read again,
//! for files (one stat) and directories (every entry under them), and the "racy" rule that keeps
//! it honest when a file changes within one timestamp tick of being looked at.

use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::tree::{EntryKind, Tree};
pub use crate::store::Fingerprint;

/// How recent a change must be for a fingerprint to be [racy](Fingerprint::racy), on a
/// filesystem with sub-second timestamps (ext4, XFS, btrfs, tmpfs, APFS...). Their timestamps come
/// from the kernel's coarse clock, which moves in ticks of 1 to 10 ms.
pub const RACY_WINDOW: Duration = Duration::from_millis(100);

/// The same for a filesystem with whole-second timestamps (ext3, HFS+: one second; FAT: two),
/// recognised by a fingerprint whose mtime and ctime both have zero nanoseconds.
pub const RACY_WINDOW_COARSE: Duration = Duration::from_secs(2);

impl Fingerprint {
    /// Whether two fingerprints agree on everything but [`racy`](Fingerprint::racy).
    pub fn same_stat(&self, other: &Fingerprint) -> bool {
        Fingerprint {
            racy: other.racy,
            ..*self
        } == *other
    }

    /// The stat of a file from its metadata (symlinks already followed), not yet judged racy.
    pub(crate) fn stat(meta: &Metadata) -> Fingerprint {
        Fingerprint {
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            ctime_ns: ctime_ns(meta),
            inode: meta.ino(),
            dev: meta.dev(),
            tree: 0,
            racy: false,
        }
    }

    /// The fingerprint of a file from its metadata, taken at `taken_at` (nanoseconds since the
    /// epoch, read before the stat).
    pub(crate) fn of_file(meta: &Metadata, taken_at: i128) -> Fingerprint {
        let mut fp = Fingerprint::stat(meta);
        fp.racy = fp.is_racy_at(taken_at);
        fp
    }

    /// The fingerprint of a directory from its own metadata and the entries under it.
    pub(crate) fn of_directory(meta: &Metadata, tree: &Tree, taken_at: i128) -> Fingerprint {
        let own = Fingerprint::stat(meta);
        let mut racy = own.is_racy_at(taken_at);
        let mut size = 0u64;
        let mut mtime = own.mtime_ns;
        let mut ctime = own.ctime_ns;
        let mut digest = blake3::Hasher::new();
        digest.update(b"engine tree fingerprint v1\0");
        for entry in &tree.entries {
            let fp = &entry.fingerprint;
            mtime = mtime.max(fp.mtime_ns);
            ctime = ctime.max(fp.ctime_ns);
            racy |= fp.is_racy_at(taken_at);
            match entry.kind {
                EntryKind::File => {
                    size = size.saturating_add(fp.size);
                    digest.update(b"f");
                    digest.update(&entry.rel);
                    digest.update(b"\0");
                    digest.update(&fp.size.to_le_bytes());
                    digest.update(&fp.mtime_ns.to_le_bytes());
                    digest.update(&fp.ctime_ns.to_le_bytes());
                    digest.update(&fp.inode.to_le_bytes());
                    digest.update(&fp.dev.to_le_bytes());
                }
                EntryKind::Dir => {
                    digest.update(b"d");
                    digest.update(&entry.rel);
                    digest.update(b"\0");
                }
            }
        }
        let hash = digest.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        Fingerprint {
            size,
            mtime_ns: mtime,
            ctime_ns: ctime,
            tree: u64::from_le_bytes(first),
            racy,
            ..own
        }
    }

    /// Whether this stat's own timestamps are racy for a fingerprint taken at `taken_at`.
    fn is_racy_at(&self, taken_at: i128) -> bool {
        let coarse = self.mtime_ns % 1_000_000_000 == 0 && self.ctime_ns % 1_000_000_000 == 0;
        let window = if coarse {
            RACY_WINDOW_COARSE
        } else {
            RACY_WINDOW
        };
        self.mtime_ns.max(self.ctime_ns) >= taken_at.saturating_sub(window.as_nanos() as i128)
    }
}

/// The fingerprint of a file or directory (symlinks followed). A directory's walks everything
/// under it (see [`Fingerprint`]); it fails on an entry that cannot be listed or read.
pub fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    fingerprint_at(path, now_ns())
}

pub(crate) fn fingerprint_at(path: &Path, taken_at: i128) -> io::Result<Fingerprint> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let tree = Tree::list(path).map_err(super::hash::into_io)?;
        Ok(Fingerprint::of_directory(&meta, &tree, taken_at))
    } else {
        Ok(Fingerprint::of_file(&meta, taken_at))
    }
}

/// The current time in nanoseconds since the epoch: read before stats, it is their `taken_at`.
pub(crate) fn now_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

fn mtime_ns(meta: &Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

fn ctime_ns(meta: &Metadata) -> i128 {
    i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Duration;

    fn set_mtime(path: &Path, time: SystemTime) {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    #[test]
    fn file_fingerprint_is_its_stat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        fs::write(&path, "hello").unwrap();
        let fp = fingerprint_at(&path, i128::MAX).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(fp.size, 5);
        assert_eq!(fp.inode, meta.ino());
        assert_eq!(fp.dev, meta.dev());
        assert_eq!(fp.tree, 0);
        assert!(!fp.racy);
        assert_eq!(fingerprint_at(&path, i128::MAX).unwrap(), fp);
    }

    #[test]
    fn touching_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        fs::write(&path, "hello").unwrap();
        let before = fingerprint_at(&path, i128::MAX).unwrap();
        set_mtime(&path, SystemTime::now() - Duration::from_secs(3600));
        let after = fingerprint_at(&path, i128::MAX).unwrap();
        assert_ne!(before, after);
        assert_eq!(before.size, after.size);
    }

    #[test]
    fn a_fresh_file_is_racy_and_a_settled_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        let before = now_ns();
        fs::write(&path, "hello").unwrap();
        assert!(fingerprint_at(&path, before).unwrap().racy);
        let settled = before + 2 * RACY_WINDOW.as_nanos() as i128 + 1_000_000_000;
        let fp = fingerprint_at(&path, settled).unwrap();
        assert!(!fp.racy);
        assert!(fp.same_stat(&fingerprint_at(&path, before).unwrap()));
        assert_ne!(fp, fingerprint_at(&path, before).unwrap());
    }

    #[test]
    fn whole_second_timestamps_get_the_coarse_window() {
        let stat = |mtime_ns: i128| Fingerprint {
            size: 1,
            mtime_ns,
            ctime_ns: mtime_ns,
            inode: 1,
            dev: 1,
            tree: 0,
            racy: false,
        };
        let now = 1_700_000_010_000_000_000i128;
        let second = 1_000_000_000i128;
        // One second old: settled at nanosecond resolution, racy at whole seconds.
        assert!(!stat(now - second + 1).is_racy_at(now));
        assert!(stat(now - second).is_racy_at(now));
        assert!(!stat(now - 3 * second).is_racy_at(now));
        // A change in the future (a clock behind the file server's) is racy.
        assert!(stat(now + 5 * second + 1).is_racy_at(now));
    }

    #[test]
    fn directory_fingerprint_follows_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        fs::create_dir_all(run.join("lane1")).unwrap();
        fs::write(run.join("lane1/a.bin"), "aaaa").unwrap();
        fs::write(run.join("b.bin"), "bb").unwrap();
        let first = fingerprint_at(&run, i128::MAX).unwrap();
        assert_eq!(first.size, 6);
        assert_ne!(first.tree, 0);
        assert_eq!(fingerprint_at(&run, i128::MAX).unwrap(), first);

        let old = SystemTime::now() - Duration::from_secs(3600);
        set_mtime(&run.join("lane1/a.bin"), old);
        let touched = fingerprint_at(&run, i128::MAX).unwrap();
        assert_ne!(touched.tree, first.tree);

        fs::write(run.join("lane1/c.bin"), "").unwrap();
        let added = fingerprint_at(&run, i128::MAX).unwrap();
        assert_ne!(added.tree, touched.tree);
        assert_eq!(added.size, 6);

        fs::remove_file(run.join("lane1/c.bin")).unwrap();
        fs::create_dir(run.join("empty")).unwrap();
        let with_dir = fingerprint_at(&run, i128::MAX).unwrap();
        assert_ne!(with_dir.tree, touched.tree);
    }

    #[test]
    fn missing_path_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let error = fingerprint(&dir.path().join("nope")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
