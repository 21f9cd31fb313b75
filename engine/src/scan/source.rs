//! `scan_source`: one source's items with their content hashes, reading only what changed.
//!
//! Three phases: walk the root (one thread: listing is sequential), fingerprint every match and
//! look up what was recorded for it (in parallel: for 100,000 files this is 100,000 stats), then
//! hash what must be hashed (in parallel, biggest files first so one large file does not start
//! last; every file of a directory item is a job of its own, so a single huge directory is hashed
//! on all threads too).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use dsl::model::source::{ItemKind, SourceDef};

use super::error::ScanError;
use super::fingerprint::{now_ns, Fingerprint};
use super::hash::{directory_digest, hash_file_with, BUFFER_SIZE};
use super::parallel;
use super::tree::{EntryKind, Tree};
use super::walk::{self, Candidate, Matcher};
use super::{Item, ScanStats};

/// Lists and hashes the items of one source. `root` is the source root already resolved to an
/// absolute path.
///
/// `known(path)` returns the fingerprint and hash recorded last time (from the store); when the
/// fingerprint is unchanged, and not [racy](Fingerprint::racy), the hash is reused without reading
/// the content. Fingerprinting and hashing run in parallel on up to `threads` threads (0 counts as
/// 1). Items are returned sorted by `rel`.
///
/// Errors: a missing root, or a root that is not a directory, names the source and the path; an
/// entry that cannot be listed or read fails the whole scan with its path (an entry that vanishes
/// during the scan is left out instead). A glob that does not compile is an error too, though the
/// language's checks reject it first.
pub fn scan_source(
    source: &SourceDef,
    root: &Path,
    known: &(dyn Fn(&Path) -> Option<(Fingerprint, String)> + Sync),
    threads: usize,
) -> Result<(Vec<Item>, ScanStats), ScanError> {
    scan_source_at(source, root, known, threads, now_ns())
}

/// [`scan_source`] with the moment its fingerprints count as taken (nanoseconds since the epoch;
/// read before the first stat, and far in the future in tests that want nothing racy).
pub(crate) fn scan_source_at(
    source: &SourceDef,
    root: &Path,
    known: &(dyn Fn(&Path) -> Option<(Fingerprint, String)> + Sync),
    threads: usize,
    taken_at: i128,
) -> Result<(Vec<Item>, ScanStats), ScanError> {
    let matcher = Matcher::new(source)?;
    check_root(source, root)?;
    let candidates = walk::walk(source, root, &matcher)?;

    let staged = parallel::try_map(
        &candidates,
        threads,
        || (),
        |_, candidate| stage(candidate, source.items, known, taken_at),
    )?;
    // Vanished candidates are dropped here; the rest keep their path and name, moved, not copied.
    let mut staged: Vec<Staged> = candidates
        .into_iter()
        .zip(staged)
        .filter_map(|(candidate, staged)| {
            staged.map(|(fingerprint, content)| Staged {
                path: candidate.path,
                rel: candidate.rel,
                fingerprint,
                content,
            })
        })
        .collect();

    let mut jobs = Vec::new();
    for (item, staged) in staged.iter().enumerate() {
        match &staged.content {
            Content::Reused(_) => {}
            Content::File { .. } => jobs.push(Job {
                item,
                entry: None,
                path: staged.path.clone(),
                size: staged.fingerprint.size,
            }),
            Content::Directory { tree, .. } => {
                for (entry, tree_entry) in tree.entries.iter().enumerate() {
                    if tree_entry.kind == EntryKind::File {
                        jobs.push(Job {
                            item,
                            entry: Some(entry),
                            path: tree_entry.path.clone(),
                            size: tree_entry.fingerprint.size,
                        });
                    }
                }
            }
        }
    }
    jobs.sort_by_key(|job| std::cmp::Reverse(job.size));
    let hashes = parallel::try_map(
        &jobs,
        threads,
        || vec![0u8; BUFFER_SIZE],
        |buffer, job| match hash_file_with(&job.path, buffer) {
            Ok(hashed) => Ok(Some(hashed)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ScanError::read(&job.path, error)),
        },
    )?;

    let mut stats = ScanStats::default();
    for (job, hashed) in jobs.iter().zip(hashes) {
        let content = &mut staged[job.item].content;
        if let Some((_, bytes)) = hashed {
            stats.bytes_hashed += bytes;
        }
        match (content, job.entry) {
            (Content::File { hash }, _) => *hash = hashed.map(|(hash, _)| hash),
            (Content::Directory { hashes, .. }, Some(entry)) => {
                hashes[entry] = hashed.map(|(hash, _)| hash)
            }
            _ => {}
        }
    }

    let mut items = Vec::with_capacity(staged.len());
    for staged in staged {
        let hash = match staged.content {
            Content::Reused(hash) => {
                stats.reused += 1;
                hash
            }
            Content::File { hash: None } => continue,
            Content::File { hash: Some(hash) } => {
                stats.hashed += 1;
                hash.to_hex().to_string()
            }
            Content::Directory { tree, hashes } => {
                stats.hashed += 1;
                directory_digest(&tree, &hashes).to_hex().to_string()
            }
        };
        items.push(Item {
            path: staged.path,
            rel: staged.rel,
            kind: source.items,
            fingerprint: staged.fingerprint,
            hash,
            seen_ms: None,
        });
    }
    items.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    stats.items = items.len();
    tracing::debug!(
        source = %source.name,
        items = stats.items,
        hashed = stats.hashed,
        reused = stats.reused,
        bytes_hashed = stats.bytes_hashed,
        "scanned source"
    );
    Ok((items, stats))
}

fn check_root(source: &SourceDef, root: &Path) -> Result<(), ScanError> {
    match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ScanError::RootNotDirectory {
            source_name: source.name.clone(),
            path: root.to_path_buf(),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(ScanError::MissingRoot {
            source_name: source.name.clone(),
            path: root.to_path_buf(),
        }),
        Err(error) => Err(ScanError::Walk {
            source_name: source.name.clone(),
            path: root.to_path_buf(),
            error,
        }),
    }
}

/// A candidate fingerprinted, with its recorded hash or what is needed to hash it.
struct Staged {
    path: PathBuf,
    rel: String,
    fingerprint: Fingerprint,
    content: Content,
}

enum Content {
    /// The fingerprint matched the recorded one: this is the recorded hash.
    Reused(String),
    /// To hash; `None` until hashed, or if the file vanished first.
    File { hash: Option<blake3::Hash> },
    /// To hash: the listing the fingerprint was computed from, and its files' hashes by index.
    Directory {
        tree: Tree,
        hashes: Vec<Option<blake3::Hash>>,
    },
}

/// One file to hash: a file item, or the `entry`-th entry of a directory item's tree.
struct Job {
    item: usize,
    entry: Option<usize>,
    path: PathBuf,
    size: u64,
}

/// Fingerprints a candidate and decides whether its recorded hash holds. `None`: it vanished.
fn stage(
    candidate: &Candidate,
    kind: ItemKind,
    known: &(dyn Fn(&Path) -> Option<(Fingerprint, String)> + Sync),
    taken_at: i128,
) -> Result<Option<(Fingerprint, Content)>, ScanError> {
    let path = &candidate.path;
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(ScanError::read(path, error)),
    };
    let (fingerprint, tree) = match kind {
        ItemKind::Files => (Fingerprint::of_file(&meta, taken_at), None),
        ItemKind::Directories => {
            let tree = Tree::list(path)?;
            (
                Fingerprint::of_directory(&meta, &tree, taken_at),
                Some(tree),
            )
        }
    };
    let recorded = if fingerprint.racy {
        None
    } else {
        known(path).filter(|(recorded, _)| *recorded == fingerprint)
    };
    let content = match (recorded, tree) {
        (Some((_, hash)), _) => Content::Reused(hash),
        (None, None) => Content::File { hash: None },
        (None, Some(tree)) => {
            let hashes = vec![None; tree.entries.len()];
            Content::Directory { tree, hashes }
        }
    };
    Ok(Some((fingerprint, content)))
}

#[cfg(test)]
mod tests;
