//! Scanning sources: turning a source declaration into items, each known by the blake3 hash of its
//! content, and items into groups.
//!
//! Principle 2 of the design, "content, not clocks", lives here. An item changes when its content
//! changes; its stat [`Fingerprint`] only decides whether the content must be read again, the way
//! git's index does. The pieces:
//!
//! - [`scan_source`] walks a source's root, matches globs and excludes against each entry's path
//!   relative to the root, fingerprints every match, and hashes only the items whose fingerprint
//!   differs from the one recorded last time (in parallel);
//! - [`fingerprint()`], [`hash_file`] and [`hash_path`] are the building blocks, usable alone;
//! - [`group_items`] (or a [`Grouper`]) sorts a source's items into groups by a regex capture or a
//!   path segment.
//!
//! Decisions that hold across the module:
//!
//! - **Symlinks are followed**, everywhere: an item is what a command would read through its path.
//!   A symlink to a file is a file item (its path is the link's, its fingerprint and hash the
//!   target's); a symlink to a directory is walked into (walkdir detects loops; a loop is skipped
//!   with a warning). A broken symlink has no content and is not an item.
//! - **Only regular files and directories** are items or parts of one: fifos, sockets and devices
//!   are never opened.
//! - **The engine's state directory `.engine` is never entered**, at any depth, whatever the globs say.
//!   Hidden entries are otherwise ordinary: a glob decides.
//! - **An entry that vanishes during a scan** (deleted between listing and reading) is left out, as
//!   if the scan had started a moment later. Any other I/O error fails the scan with the path: an
//!   item silently missing would change every aggregate task's key.
//! - **Directory items** are hashed as a whole; see [`Fingerprint::tree`] and [`hash_path`].
//! - **A fingerprint taken just after a change is not trusted** ([`Fingerprint::racy`]): a file
//!   written again within the same timestamp tick could keep its fingerprint with new content, so
//!   such a file is hashed on this scan and on the next, and only then reused.

mod error;
mod fingerprint;
mod group;
mod hash;
mod parallel;
mod source;
mod tree;
mod walk;

use std::path::PathBuf;

use dsl::model::source::ItemKind;
use serde::{Deserialize, Serialize};

pub use error::ScanError;
pub use fingerprint::{fingerprint, Fingerprint, RACY_WINDOW, RACY_WINDOW_COARSE};
pub use group::{group_items, Group, Grouper};
pub use hash::{hash_file, hash_path};
pub use source::scan_source;

/// One input unit of a source: a file, or (for `items directories`) a directory taken as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Absolute path (the source root joined with [`Item::rel`]; symlinks are not resolved).
    pub path: PathBuf,
    /// Path relative to the source root, with `/` separators: what globs and grouping regexes see.
    /// A name that is not UTF-8 is converted lossily here; [`Item::path`] stays exact.
    pub rel: String,
    /// Whether this item is a file or a directory.
    pub kind: ItemKind,
    /// The stat fingerprint taken before the content was hashed (so a change during hashing shows
    /// up as a different fingerprint next time).
    pub fingerprint: Fingerprint,
    /// blake3 of the content, 64 lowercase hex digits: for a file its bytes, for a directory the
    /// digest described in [`hash_path`].
    pub hash: String,
    /// When the engine first saw this content at this path, in ms since the Unix epoch, if it
    /// appeared after the engine had looked at its source before: set by the planner from the
    /// store, `None` from the scan.
    pub seen_ms: Option<u64>,
}

/// What one [`scan_source`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStats {
    /// Items found.
    pub items: usize,
    /// Items whose content was read and hashed.
    pub hashed: usize,
    /// Items whose recorded hash was reused because their fingerprint was unchanged.
    pub reused: usize,
    /// Bytes read to hash (every file of a rehashed directory counts).
    pub bytes_hashed: u64,
}
