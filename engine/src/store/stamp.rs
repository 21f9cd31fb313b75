//! The stamp: how the store file looked (inode, size, change time) when an engine last wrote
//! it, kept beside it in `state.redb.stamp`. An open whose file does not match the stamp (a copy,
//! a restore, a file written by anything but an engine, a stamp lost in a crash) verifies every
//! page of the file before trusting it; an open that matches skips the check, so a clean open
//! stays fast. The change time cannot be set by a program, so no write to the file goes unseen;
//! damage the disk does in place is found by `engine store check` and the daemon's backups.
//!
//! The stamp is written after each commit and each close, without an fsync: a stamp lost or
//! left behind by a race between two engines only costs the next open a check.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The file's identity and last change, as the stamp records it.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    size: u64,
    ctime_ns: i128,
}

impl Stamp {
    fn of(store: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(store).ok()?;
        Some(Stamp {
            inode: meta.ino(),
            size: meta.len(),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        })
    }

    fn text(&self) -> String {
        format!("{} {} {}\n", self.inode, self.size, self.ctime_ns)
    }

    fn parse(text: &str) -> Option<Stamp> {
        let mut fields = text.split_whitespace();
        let stamp = Stamp {
            inode: fields.next()?.parse().ok()?,
            size: fields.next()?.parse().ok()?,
            ctime_ns: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(stamp)
    }
}

pub(super) fn path_of(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".stamp");
    PathBuf::from(name)
}

/// Whether the file is as an engine last left it.
pub(super) fn matches(store: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path_of(store)) else {
        return false;
    };
    Stamp::parse(&text).is_some_and(|stamp| Stamp::of(store) == Some(stamp))
}

/// Records the file as it is now (after this engine wrote it).
pub(super) fn record(store: &Path) {
    let Some(stamp) = Stamp::of(store) else {
        return;
    };
    let target = path_of(store);
    let mut temp = target.as_os_str().to_owned();
    temp.push(format!(".{}", std::process::id()));
    let temp = PathBuf::from(temp);
    if std::fs::write(&temp, stamp.text()).is_ok() && std::fs::rename(&temp, &target).is_err() {
        let _ = std::fs::remove_file(&temp);
    }
}

/// Forgets the stamp: the next open checks the file.
pub(super) fn forget(store: &Path) {
    let _ = std::fs::remove_file(path_of(store));
}
