//! Backups and restores of the store. A backup is the file's bytes copied while this process
//! holds redb's writer lock (an open write transaction that writes nothing), so no engine can
//! commit during the copy, while readers go on; the copy keeps redb's page checksums, and it is
//! verified ([`check::verify`]) before it is renamed into place, so a backup that exists is
//! whole and a store damaged in place is found when it is backed up. A restore verifies the
//! backup, refuses while any engine has the store open, and keeps the file it replaces aside.

use std::path::{Path, PathBuf};

use super::check::{self, Summary};
use super::{damage, stamp, Result, Store, StoreError};

impl Store {
    /// Writes a verified copy of the store to `to` (atomically: a temporary file beside it,
    /// renamed), and says what it holds.
    pub fn backup(&self, to: &Path) -> Result<Summary> {
        let temp = temp_beside(to);
        let written = self.snapshot(&temp).and_then(|()| check::verify(&temp));
        let summary = match written {
            Ok(summary) => summary,
            Err(error) => {
                let _ = std::fs::remove_file(&temp);
                // The copy is the store's bytes: damage in it is the store's.
                return Err(match error {
                    StoreError::Damaged { detail, .. } => StoreError::Damaged {
                        path: self.path.clone(),
                        detail,
                    },
                    other => other,
                });
            }
        };
        sync(&temp)
            .and_then(|()| std::fs::rename(&temp, to))
            .map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                io_error(to, e)
            })?;
        if let Some(dir) = to.parent() {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(summary)
    }

    /// Copies the file's bytes to `to` with no commit of any engine under way or begun.
    fn snapshot(&self, to: &Path) -> Result<()> {
        self.guard(|| {
            let lock = self.db().begin_write()?;
            let copied = std::fs::copy(&self.path, to);
            lock.abort()?;
            copied.map(|_| ()).map_err(|e| io_error(to, e))
        })
    }
}

/// Checks the store in `state_dir` without changing it: a copy of it (taken as a backup is) is
/// verified. A store that cannot even be opened is copied as it is: no engine writes it.
pub fn check_dir(state_dir: &Path) -> Result<Summary> {
    let path = state_dir.join("state.redb");
    if !path.exists() {
        return Err(StoreError::Unusable {
            path,
            detail: "there is no store file".to_string(),
        });
    }
    let temp = temp_beside(&path);
    let result = match Store::open(state_dir) {
        Ok(store) => store.snapshot(&temp),
        Err(StoreError::Damaged { .. }) => std::fs::copy(&path, &temp)
            .map(|_| ())
            .map_err(|e| io_error(&path, e)),
        Err(other) => Err(other),
    }
    .and_then(|()| check::verify(&temp));
    let _ = std::fs::remove_file(&temp);
    result.map_err(|error| match error {
        StoreError::Damaged { detail, .. } => StoreError::Damaged { path, detail },
        other => other,
    })
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub summary: Summary,
    /// Where the file that was replaced went, if there was one.
    pub kept: Option<PathBuf>,
}

/// Puts the backup `from` in place of the store in `state_dir`: verified first, refused while
/// any engine has the store open; the file replaced is kept as `state.redb.damaged-TIME`.
pub fn restore(state_dir: &Path, from: &Path) -> Result<Restored> {
    std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let path = state_dir.join("state.redb");
    let temp = temp_beside(&path);
    std::fs::copy(from, &temp).map_err(|e| io_error(from, e))?;
    let summary = check::verify(&temp).map_err(|error| {
        let _ = std::fs::remove_file(&temp);
        match error {
            StoreError::Damaged { detail, .. } => StoreError::Damaged {
                path: from.to_path_buf(),
                detail,
            },
            other => other,
        }
    })?;
    let kept = if path.exists() {
        if let Err(error) = refuse_if_open(&path) {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
        let kept = state_dir.join(format!("state.redb.damaged-{}", utc_stamp(super::now_ms())));
        std::fs::rename(&path, &kept).map_err(|e| io_error(&path, e))?;
        Some(kept)
    } else {
        None
    };
    sync(&temp)
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|e| io_error(&path, e))?;
    stamp::record(&path);
    Ok(Restored { summary, kept })
}

/// Refuses when any process has the store open: only then can redb lock the whole file.
fn refuse_if_open(path: &Path) -> Result<()> {
    let probe = damage::contain(|| {
        Ok(redb::Database::builder()
            .set_repair_callback(|session| session.abort())
            .open(path)
            .map(drop))
    })
    .unwrap_or(Ok(()));
    match probe {
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::InUse {
            path: path.to_path_buf(),
        }),
        // Opened and closed, or not openable at all (damaged): nobody uses it.
        _ => Ok(()),
    }
}

fn temp_beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".partial-{}", std::process::id()));
    PathBuf::from(name)
}

fn sync(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .sync_all()
}

fn io_error(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Unusable {
        path: path.to_path_buf(),
        detail: error.to_string(),
    }
}

/// `20250131T235959Z` for a time in Unix milliseconds: names that sort as they were made.
pub fn utc_stamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_times_that_sort() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400_000), "20000229T000000Z");
        assert_eq!(utc_stamp(1_738_367_999_000), "20250131T235959Z");
    }

    #[test]
    fn a_backup_is_verified_and_restores_in_place_of_a_damaged_store() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let store = Store::open(&state).unwrap();
        store
            .write(|tx| tx.create_run(super::super::RunRecord::queued("p")))
            .unwrap();
        let backup = dir.path().join("b.redb");
        let summary = store.backup(&backup).unwrap();
        assert_eq!(summary.count("runs"), 1);
        assert!(matches!(
            restore(&state, &backup),
            Err(StoreError::InUse { .. })
        ));
        drop(store);
        std::fs::write(state.join("state.redb"), b"garbage").unwrap();
        assert!(matches!(check_dir(&state), Err(StoreError::Damaged { .. })));
        let restored = restore(&state, &backup).unwrap();
        assert!(restored.kept.is_some_and(|k| k.exists()));
        assert_eq!(check_dir(&state).unwrap().count("runs"), 1);
        assert_eq!(Store::open(&state).unwrap().runs().unwrap().len(), 1);
    }
}
