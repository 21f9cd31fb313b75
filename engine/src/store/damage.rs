//! Storage failures, told apart from the engine's own: every redb error that means the file is
//! not what redb wrote (a checksum, a broken tree, a record that does not decode, a panic inside
//! redb) becomes one [`StoreError::Damaged`] naming the file and what to do, and an I/O failure
//! one [`StoreError::Unusable`]. Panics are contained at the store's boundary: a panic raised in
//! redb's source, or in the standard library while a store call is under way, is the file's; any
//! other panic is a bug of the engine and goes on unwinding.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use super::{Result, StoreError};

thread_local! {
    /// How many store calls are under way on this thread (a call may make another).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    /// The storage panic the hook saw last on this thread, for [`contain`] to report.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs one store call, turning a storage panic into [`StoreError::Damaged`] (with no path yet:
/// the store adds it) and leaving every other panic alone.
pub(super) fn contain<T>(call: impl FnOnce() -> Result<T>) -> Result<T> {
    install_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(call));
    DEPTH.with(|d| d.set(d.get() - 1));
    match outcome {
        Ok(result) => result,
        Err(payload) => match CAUGHT.with(|c| c.borrow_mut().take()) {
            Some(detail) => Err(StoreError::Panicked(detail)),
            None => panic::resume_unwind(payload),
        },
    }
}

/// A panic hook that keeps storage panics quiet (they are reported as errors) and passes every
/// other panic to the hook it replaces. Installed once per process.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let inside = DEPTH.with(Cell::get) > 0;
            let location = info.location();
            let storage = inside && location.is_some_and(|l| is_storage_source(l.file()));
            if !storage {
                return previous(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            let at = location.map_or(String::new(), |l| {
                let file = l.file().rsplit_once("/src/").map_or(l.file(), |(_, f)| f);
                format!(" at {file}:{}", l.line())
            });
            CAUGHT.with(|c| *c.borrow_mut() = Some(format!("redb panicked: {message}{at}")));
        }));
    });
}

/// Whether a panic at `file` is redb's, or the standard library's on redb's behalf.
fn is_storage_source(file: &str) -> bool {
    file.contains("/redb-") || file.starts_with("/rustc/") || file.starts_with("library/")
}

/// What is wrong with the file, if `error` says it is damaged; `None` for any other error.
pub(super) fn damage_of(error: &StoreError) -> Option<String> {
    match error {
        StoreError::Storage(e) => storage_damage(e),
        StoreError::Table(redb::TableError::Storage(e)) => storage_damage(e),
        // The store made every table when it was created, with these types.
        StoreError::Table(e) => Some(e.to_string()),
        StoreError::Transaction(redb::TransactionError::Storage(e)) => storage_damage(e),
        StoreError::Commit(redb::CommitError::Storage(e)) => storage_damage(e),
        StoreError::Corrupt { table, source } => Some(format!(
            "a record in table `{table}` does not decode: {source}"
        )),
        StoreError::Panicked(detail) => Some(detail.clone()),
        StoreError::Missing(detail) => Some(detail.clone()),
        _ => None,
    }
}

/// The damage a storage error means; `None` for an I/O failure of the disk (reported as such).
pub(super) fn storage_damage(error: &redb::StorageError) -> Option<String> {
    match error {
        redb::StorageError::Io(io)
            if !matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            None
        }
        redb::StorageError::PreviousIo => None,
        other => Some(other.to_string()),
    }
}

/// The damage an open's error means; `None` when the file is fine but cannot be opened now.
pub(super) fn open_damage(error: &redb::DatabaseError) -> Option<String> {
    match error {
        redb::DatabaseError::Storage(e) => storage_damage(e),
        redb::DatabaseError::RepairAborted => Some("its newest commit does not verify".into()),
        redb::DatabaseError::UpgradeRequired(_) => Some(error.to_string()),
        _ => None,
    }
}
