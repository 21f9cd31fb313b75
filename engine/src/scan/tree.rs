//! `Tree`: the files and subdirectories under a directory item, with their stat, sorted by path.
//! Both the directory's fingerprint and its content hash are computed over this one listing.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::error::ScanError;
use super::fingerprint::Fingerprint;

/// The name of the engine's state directory, never entered by a scan.
pub(crate) const STATE_DIR: &str = ".engine";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
}

#[derive(Debug, Clone)]
pub(crate) struct TreeEntry {
    /// Path relative to the directory item, `/`-separated, as raw bytes (no NUL can occur).
    pub rel: Vec<u8>,
    pub path: PathBuf,
    pub kind: EntryKind,
    /// The entry's own stat; `racy` is not meaningful here (the directory's is computed from the
    /// newest timestamps).
    pub fingerprint: Fingerprint,
}

/// Every regular file and directory under a directory (symlinks followed, `.engine` skipped,
/// fifos, sockets, devices and broken links left out), sorted by `rel` bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    pub entries: Vec<TreeEntry>,
}

impl Tree {
    pub(crate) fn list(dir: &Path) -> Result<Tree, ScanError> {
        let mut entries = Vec::new();
        let walker = WalkDir::new(dir)
            .follow_links(true)
            .min_depth(1)
            .into_iter()
            .filter_entry(|entry| entry.depth() == 0 || entry.file_name() != STATE_DIR);
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => match skippable(error) {
                    Ok(()) => continue,
                    Err((path, error)) => {
                        return Err(ScanError::read(
                            path.unwrap_or_else(|| dir.to_path_buf()),
                            error,
                        ))
                    }
                },
            };
            let path = entry.into_path();
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(ScanError::read(path, error)),
            };
            let kind = if meta.is_file() {
                EntryKind::File
            } else if meta.is_dir() {
                EntryKind::Dir
            } else {
                continue;
            };
            let rel = relative_bytes(&path, dir);
            entries.push(TreeEntry {
                rel,
                kind,
                fingerprint: Fingerprint::stat(&meta),
                path,
            });
        }
        entries.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
        Ok(Tree { entries })
    }
}

/// Decides what a walkdir error means for a scan: `Ok` to skip the entry (a symlink loop, whose
/// content is already walked through its ancestor; an entry gone since it was listed, or a broken
/// symlink), or the path and error to report.
pub(crate) fn skippable(error: walkdir::Error) -> Result<(), (Option<PathBuf>, io::Error)> {
    if let Some(ancestor) = error.loop_ancestor() {
        tracing::warn!(
            path = %error.path().unwrap_or(ancestor).display(),
            ancestor = %ancestor.display(),
            "skipping a symlink loop"
        );
        return Ok(());
    }
    let path = error.path().map(Path::to_path_buf);
    if error.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) {
        tracing::debug!(path = ?path, "skipping an entry that vanished or a broken symlink");
        return Ok(());
    }
    Err((path, io::Error::from(error)))
}

fn relative_bytes(path: &Path, base: &Path) -> Vec<u8> {
    let rel = path.strip_prefix(base).unwrap_or(path);
    let mut out = Vec::new();
    for (i, component) in rel.components().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(component.as_os_str().as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_files_and_dirs_sorted_by_path_skipping_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(root.join(".engine")).unwrap();
        fs::write(root.join(".engine/state.redb"), "x").unwrap();
        fs::write(root.join("a/b/c.txt"), "c").unwrap();
        fs::write(root.join("a.txt"), "a").unwrap();
        fs::write(root.join(".hidden"), "h").unwrap();
        let tree = Tree::list(root).unwrap();
        let rels: Vec<_> = tree
            .entries
            .iter()
            .map(|e| (String::from_utf8_lossy(&e.rel).into_owned(), e.kind))
            .collect();
        assert_eq!(
            rels,
            vec![
                (".hidden".to_string(), EntryKind::File),
                ("a".to_string(), EntryKind::Dir),
                ("a.txt".to_string(), EntryKind::File),
                ("a/b".to_string(), EntryKind::Dir),
                ("a/b/c.txt".to_string(), EntryKind::File),
            ]
        );
    }

    #[test]
    fn follows_symlinks_and_skips_broken_ones_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("item");
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        fs::write(elsewhere.join("data.bin"), "data").unwrap();
        std::os::unix::fs::symlink(elsewhere.join("data.bin"), root.join("link.bin")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("linked")).unwrap();
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("broken")).unwrap();
        std::os::unix::fs::symlink(&root, root.join("loop")).unwrap();
        let tree = Tree::list(&root).unwrap();
        let rels: Vec<_> = tree
            .entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.rel).into_owned())
            .collect();
        assert_eq!(rels, vec!["link.bin", "linked", "linked/data.bin"]);
        assert_eq!(tree.entries[0].fingerprint.size, 4);
    }
}
