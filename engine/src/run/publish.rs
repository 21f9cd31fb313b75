//! The collector: turns a successful attempt's temporary directory into products. The step's
//! `output` patterns are checked, the whole directory is renamed into the task's output
//! directory in one step, so a downstream task (or a crash) never sees half a result, and the
//! files the patterns select are hashed. The run loop hashes small outputs itself and large ones
//! on a blocking thread ([`Moved::bytes`]).

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSetBuilder};
use walkdir::WalkDir;

use crate::scan;
use crate::store::{Fingerprint, ProductRecord};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("output pattern `{0}` matched no file")]
    MissingOutput(String),
    /// The store keeps products' paths as text.
    #[error("the output `{0}` has a name that is not valid UTF-8 (shown with U+FFFD); rename it in the command")]
    NotUtf8(String),
    #[error("cannot read the output of the attempt in `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot move the output into `{path}`: {source}")]
    Move {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The files under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Result<Vec<String>, PublishError> {
    let mut files = Vec::new();
    for entry in WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| PublishError::Read {
            path: dir.to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_file() {
            // On Unix a backslash is an ordinary character of a name, not a separator.
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            let Some(rel) = rel.to_str() else {
                let name = rel.to_string_lossy().into_owned();
                return Err(PublishError::NotUtf8(name));
            };
            files.push(rel.to_string());
        }
    }
    Ok(files)
}

/// Checks the output patterns against `tmp`, then renames `tmp` to `out_dir` (replacing what was
/// there) and returns the products, hashed.
pub fn publish(
    tmp: &Path,
    out_dir: &Path,
    patterns: &[String],
    trash: &Path,
    task: u64,
) -> Result<Vec<ProductRecord>, PublishError> {
    move_into_place(tmp, out_dir, patterns, trash, task)?.hash()
}

/// A task's outputs, moved into place and fingerprinted, not yet hashed.
#[derive(Debug)]
pub struct Moved {
    /// Each selected file, with its fingerprint.
    files: Vec<(PathBuf, Fingerprint)>,
    task: u64,
}

impl Moved {
    /// How many bytes the products hold: what hashing them costs.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, f)| f.size).sum()
    }

    /// The products, hashed.
    pub fn hash(self) -> Result<Vec<ProductRecord>, PublishError> {
        let task = self.task;
        self.files
            .into_iter()
            .map(|(path, fingerprint)| {
                let hash = scan::hash_file(&path).map_err(|source| PublishError::Read {
                    path: path.clone(),
                    source,
                })?;
                Ok(ProductRecord {
                    size: fingerprint.size,
                    path,
                    hash,
                    fingerprint,
                    task,
                })
            })
            .collect()
    }
}

/// Checks the output patterns against `tmp`, then renames `tmp` to `out_dir` (replacing what was
/// there) and fingerprints the selected files; they are still to be hashed.
pub fn move_into_place(
    tmp: &Path,
    out_dir: &Path,
    patterns: &[String],
    trash: &Path,
    task: u64,
) -> Result<Moved, PublishError> {
    let selected = select(tmp, patterns)?;
    replace_dir(tmp, out_dir, trash)?;
    fingerprinted(out_dir, selected, task)
}

/// The selected files of `out_dir`, with their fingerprints (taken once they are in place: the
/// rename changes their ctime).
fn fingerprinted(out_dir: &Path, selected: Vec<String>, task: u64) -> Result<Moved, PublishError> {
    let mut files = Vec::with_capacity(selected.len());
    for rel in selected {
        let path = out_dir.join(&rel);
        match scan::fingerprint(&path) {
            Ok(fingerprint) => files.push((path, fingerprint)),
            Err(source) => return Err(PublishError::Read { path, source }),
        }
    }
    Ok(Moved { files, task })
}

/// The products of an output directory that is already in place (recovery after a crash between
/// the rename and its commit).
pub fn collect_published(
    out_dir: &Path,
    patterns: &[String],
    task: u64,
) -> Result<Vec<ProductRecord>, PublishError> {
    let selected = select(out_dir, patterns)?;
    fingerprinted(out_dir, selected, task)?.hash()
}

/// The files of `dir` the patterns select (every file when there are none); a pattern that
/// matches nothing is an error.
fn select(dir: &Path, patterns: &[String]) -> Result<Vec<String>, PublishError> {
    let files = files_under(dir)?;
    let selected: Vec<String> = if patterns.is_empty() {
        files
    } else {
        let mut chosen = Vec::new();
        for pattern in patterns {
            let glob =
                Glob::new(pattern).map_err(|_| PublishError::MissingOutput(pattern.clone()))?;
            let set = GlobSetBuilder::new()
                .add(glob)
                .build()
                .map_err(|_| PublishError::MissingOutput(pattern.clone()))?;
            let matched: Vec<&String> = files.iter().filter(|f| set.is_match(f.as_str())).collect();
            if matched.is_empty() {
                return Err(PublishError::MissingOutput(pattern.clone()));
            }
            chosen.extend(matched.into_iter().cloned());
        }
        chosen.sort();
        chosen.dedup();
        chosen
    };
    Ok(selected)
}

/// Moves `from` to `to`: the old `to` is first moved into `trash` and then deleted, so `to` is at
/// every instant either the old directory, absent, or the new one.
fn replace_dir(from: &Path, to: &Path, trash: &Path) -> Result<(), PublishError> {
    let moving = |source| PublishError::Move {
        path: to.to_path_buf(),
        source,
    };
    // Usually `to` is new and its parent there: one rename. Otherwise it fails without a
    // change, and the steps below make room.
    match std::fs::rename(from, to) {
        Ok(()) => return Ok(()),
        Err(error) if is_cross_device(&error) => return replace_across(from, to, trash),
        Err(_) => {}
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(moving)?;
    }
    let old = if to.exists() {
        Some(set_aside(to, trash).map_err(moving)?)
    } else {
        None
    };
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(error) if is_cross_device(&error) => {
            // Put back what was set aside; the copy below replaces it.
            if let Some(old) = &old {
                std::fs::rename(old, to).map_err(moving)?;
            }
            return replace_across(from, to, trash);
        }
        Err(error) => return Err(moving(error)),
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// Moves the directory `to` out of the way, into `trash` (the state directory's), or beside
/// itself when `trash` is on another file system; returns where it went.
fn set_aside(to: &Path, trash: &Path) -> std::io::Result<PathBuf> {
    let name = format!("{}-{}", std::process::id(), crate::store::now_ms());
    std::fs::create_dir_all(trash)?;
    let old = trash.join(&name);
    match std::fs::rename(to, &old) {
        Err(error) if is_cross_device(&error) => {
            let beside = sibling(to, &format!("old-{name}"));
            std::fs::rename(to, &beside)?;
            Ok(beside)
        }
        moved => moved.map(|()| old),
    }
}

/// Replaces `to` by `from` when they are on different file systems (the state directory and
/// `--out` apart): `from` is copied, with every file and directory synced, into a staging
/// directory beside `to`, which is then renamed into place, so `to` is still replaced in one
/// step. `from` is removed once it is.
fn replace_across(from: &Path, to: &Path, trash: &Path) -> Result<(), PublishError> {
    let moving = |source| PublishError::Move {
        path: to.to_path_buf(),
        source,
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(moving)?;
    }
    let name = format!("{}-{}", std::process::id(), crate::store::now_ms());
    let staged = sibling(to, &format!("staging-{name}"));
    if let Err(error) = copy_synced(from, &staged) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(moving(error));
    }
    let old = if to.exists() {
        Some(set_aside(to, trash).map_err(moving)?)
    } else {
        None
    };
    std::fs::rename(&staged, to).map_err(moving)?;
    if let Some(parent) = to.parent() {
        sync_dir(parent).map_err(moving)?;
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old);
    }
    let _ = std::fs::remove_dir_all(from);
    Ok(())
}

/// A hidden name beside `path` that no output directory has (group segments never start with
/// a dot): `.NAME.WHAT`.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{what}"))
}

fn is_cross_device(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(libc::EXDEV)
}

/// Copies the tree `from` to `to` (files with their permissions, symlinks as symlinks) and
/// syncs every file and directory it made.
fn copy_synced(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut dirs = Vec::new();
    for entry in WalkDir::new(from) {
        let entry = entry.map_err(std::io::Error::from)?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let target = to.join(rel);
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&target)?;
            dirs.push(target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    for dir in dirs.iter().rev() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::decide::products_intact;

    #[test]
    fn publishes_selected_outputs_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(tmp.join("sub")).unwrap();
        std::fs::write(tmp.join("a.txt"), "a").unwrap();
        std::fs::write(tmp.join("sub/b.log"), "b").unwrap();
        let out = dir.path().join("out/step/g");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("stale"), "old").unwrap();
        let products =
            publish(&tmp, &out, &["*.txt".into()], &dir.path().join("trash"), 7).unwrap();
        assert_eq!(products.len(), 1);
        assert_eq!(products[0].path, out.join("a.txt"));
        assert!(!out.join("stale").exists());
        assert!(out.join("sub/b.log").exists());
        assert!(products_intact(&products).is_ok());
        std::fs::write(out.join("a.txt"), "changed").unwrap();
        assert!(products_intact(&products).is_err());
    }

    #[test]
    fn a_pattern_matching_nothing_fails() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let error = publish(
            &tmp,
            &dir.path().join("out"),
            &["report.txt".into()],
            dir.path(),
            1,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "output pattern `report.txt` matched no file"
        );
        assert!(tmp.exists(), "nothing moved");
    }
}
