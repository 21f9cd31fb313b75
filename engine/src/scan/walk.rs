//! Finding a source's candidate items: compiling its globs and excludes, and walking its root no
//! deeper than the globs can reach.

use std::path::{Path, PathBuf};

use dsl::model::source::{ItemKind, SourceDef};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use super::error::ScanError;
use super::tree::{skippable, STATE_DIR};

/// A source's globs and excludes, compiled, matched against paths relative to the root.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    globs: GlobSet,
    excludes: GlobSet,
    /// How many directory levels below the root a match can be, when every glob bounds it.
    max_depth: Option<usize>,
}

impl Matcher {
    /// `*`, `?` and classes never match `/` (`literal_separator`), `**` crosses directories.
    pub(crate) fn new(source: &SourceDef) -> Result<Matcher, ScanError> {
        let compile = |patterns: &[String]| {
            let mut set = GlobSetBuilder::new();
            for pattern in patterns {
                let glob = GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|error| ScanError::BadGlob {
                        source_name: source.name.clone(),
                        pattern: pattern.clone(),
                        error,
                    })?;
                set.add(glob);
            }
            set.build().map_err(|error| ScanError::BadGlob {
                source_name: source.name.clone(),
                pattern: patterns.join(", "),
                error,
            })
        };
        let max_depth = source
            .globs
            .iter()
            .map(|glob| glob_depth(glob))
            .try_fold(0, |deepest, depth| depth.map(|d| deepest.max(d)));
        Ok(Matcher {
            globs: compile(&source.globs)?,
            excludes: compile(&source.excludes)?,
            max_depth,
        })
    }

    /// Whether a path relative to the root is one of the source's items: a glob matches it and
    /// no exclude does.
    pub(crate) fn matches(&self, rel: &str) -> bool {
        self.globs.is_match(rel) && !self.excludes.is_match(rel)
    }
}

/// The most path components a glob can match, or `None` when unbounded (it has `**`). Each `/`
/// adds one; so does each class, which with globset can match a `/` (`[!a]`). Alternatives are
/// counted together, which can only overestimate.
fn glob_depth(glob: &str) -> Option<usize> {
    if glob.contains("**") {
        return None;
    }
    Some(1 + glob.matches('/').count() + glob.matches('[').count())
}

/// A matched entry, before it is fingerprinted.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub path: PathBuf,
    pub rel: String,
}

/// Walks `root` (symlinks followed, `.engine` skipped) and returns the entries of the
/// source's item kind that the matcher accepts: regular files, or directories, in which case a
/// matched directory is not entered.
pub(crate) fn walk(
    source: &SourceDef,
    root: &Path,
    matcher: &Matcher,
) -> Result<Vec<Candidate>, ScanError> {
    // Unsorted: the caller sorts the items by `rel`, and which directories are items does not
    // depend on the order (sorting in walkdir cost 5% of a 100,000-file scan).
    let mut walker = WalkDir::new(root).follow_links(true).min_depth(1);
    if let Some(depth) = matcher.max_depth {
        walker = walker.max_depth(depth);
    }
    let mut entries = walker
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || entry.file_name() != STATE_DIR);
    let mut candidates = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => match skippable(error) {
                Ok(()) => continue,
                Err((path, error)) => {
                    return Err(ScanError::Walk {
                        source_name: source.name.clone(),
                        path: path.unwrap_or_else(|| root.to_path_buf()),
                        error,
                    })
                }
            },
        };
        let file_type = entry.file_type();
        let wanted = match source.items {
            ItemKind::Files => file_type.is_file(),
            ItemKind::Directories => file_type.is_dir(),
        };
        if !wanted {
            continue;
        }
        if entry.path().to_str().is_none() {
            // The store keeps paths as text; such a name could not be recorded.
            tracing::warn!(
                source = %source.name,
                "skipping {}: its name is not valid UTF-8",
                escaped(entry.path())
            );
            continue;
        }
        let rel = relative(entry.path(), root);
        if !matcher.matches(&rel) {
            continue;
        }
        if source.items == ItemKind::Directories {
            entries.skip_current_dir();
        }
        candidates.push(Candidate {
            path: entry.into_path(),
            rel,
        });
    }
    Ok(candidates)
}

/// `path` with every byte that is not printable ASCII written as `\xNN`.
fn escaped(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    bytes
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}

/// `path` relative to `root`, `/`-separated (lossy for names that are not UTF-8).
fn relative(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    match rel.to_str() {
        Some(rel) => rel.to_string(),
        None => rel.to_string_lossy().into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(globs: &[&str], excludes: &[&str]) -> SourceDef {
        SourceDef {
            name: "s".to_string(),
            root: ".".to_string(),
            globs: globs.iter().map(|g| g.to_string()).collect(),
            excludes: excludes.iter().map(|g| g.to_string()).collect(),
            items: ItemKind::Files,
            grouping: None,
        }
    }

    #[test]
    fn star_stays_within_a_directory_and_double_star_crosses() {
        let m = Matcher::new(&source(&["*/*.fastq"], &[])).unwrap();
        assert!(m.matches("B7/S1.fastq"));
        assert!(!m.matches("S1.fastq"));
        assert!(!m.matches("B7/x/S1.fastq"));
        let m = Matcher::new(&source(&["**/*.fastq"], &[])).unwrap();
        assert!(m.matches("S1.fastq"));
        assert!(m.matches("a/b/c/S1.fastq"));
        let m = Matcher::new(&source(&["*.{fastq,fq}"], &["tmp_*"])).unwrap();
        assert!(m.matches("S1.fq"));
        assert!(!m.matches("tmp_S1.fq"));
    }

    #[test]
    fn depth_is_bounded_unless_a_glob_has_double_star() {
        assert_eq!(glob_depth("*.txt"), Some(1));
        assert_eq!(glob_depth("*/*.txt"), Some(2));
        assert_eq!(glob_depth("{a/b,c}/*.txt"), Some(3));
        assert_eq!(glob_depth("a[!x]b/*"), Some(3));
        assert_eq!(glob_depth("**/*.txt"), None);
        let m = Matcher::new(&source(&["*.txt", "*/*/*.txt"], &[])).unwrap();
        assert_eq!(m.max_depth, Some(3));
        let m = Matcher::new(&source(&["*.txt", "**/x"], &[])).unwrap();
        assert_eq!(m.max_depth, None);
    }

    #[test]
    fn a_class_can_match_a_separator_so_it_counts_toward_depth() {
        let m = Matcher::new(&source(&["a[!x]b"], &[])).unwrap();
        if m.matches("a/b") {
            assert!(m.max_depth >= Some(2));
        }
    }

    #[test]
    fn a_bad_glob_is_an_error() {
        let error = Matcher::new(&source(&["a[b"], &[])).unwrap_err();
        assert!(matches!(error, ScanError::BadGlob { .. }), "{error:?}");
        assert!(error.to_string().contains("`a[b` is not a valid glob"));
    }
}
