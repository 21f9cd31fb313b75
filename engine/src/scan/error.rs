//! `ScanError`: what can go wrong while listing, fingerprinting and hashing a source's items, or
//! compiling its grouping.

use std::io;
use std::path::PathBuf;

/// Every error names the source or the path it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The source's root does not exist.
    #[error("source `{source_name}`: root directory {} does not exist", path.display())]
    MissingRoot { source_name: String, path: PathBuf },
    /// The source's root exists but is not a directory.
    #[error("source `{source_name}`: root {} is not a directory", path.display())]
    RootNotDirectory { source_name: String, path: PathBuf },
    /// A directory under the root (or the root itself) could not be listed.
    #[error("source `{source_name}`: cannot list {}", path.display())]
    Walk {
        source_name: String,
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    /// A file or directory could not be read to fingerprint or hash it.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    /// A glob or exclude pattern does not compile (the language's checks reject these first).
    #[error("source `{source_name}`: `{pattern}` is not a valid glob")]
    BadGlob {
        source_name: String,
        pattern: String,
        #[source]
        error: globset::Error,
    },
    /// A grouping regex does not compile (the language's checks reject these first).
    #[error("group `{group}`: `{pattern}` is not a valid regex")]
    BadRegex {
        group: String,
        pattern: String,
        #[source]
        error: regex::Error,
    },
}

impl ScanError {
    pub(crate) fn read(path: impl Into<PathBuf>, error: io::Error) -> Self {
        ScanError::Read {
            path: path.into(),
            error,
        }
    }
}
