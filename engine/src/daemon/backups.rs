//! The daemon's rolling backups of the store: every `--backup-every`, a verified copy in
//! `STATE/backups/state-TIME.redb` (written to a temporary file, renamed), the newest
//! `--backups` of them kept. A damaged store loses at most what was committed since the last
//! backup. The first backup is made at start when the newest one is older than the interval, so
//! a daemon restarted often still makes them. A backup that finds the store damaged is logged
//! as an error and removes no older backup.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::store::{backups_of, now_ms, utc_stamp, Store};

/// How the daemon backs up its store.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub every: Duration,
    /// How many to keep; 0 makes none.
    pub keep: usize,
}

/// Makes backups until `stop` is cancelled.
pub async fn keep_backing_up(store: Arc<Store>, settings: BackupSettings, stop: CancellationToken) {
    if settings.keep == 0 {
        return;
    }
    let dir = backups_of(store.path());
    let newest_age = newest(&dir)
        .and_then(|(_, made)| made.elapsed().ok())
        .unwrap_or(Duration::MAX);
    let mut wait = settings.every.saturating_sub(newest_age);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let (store, dir, keep) = (store.clone(), dir.clone(), settings.keep);
        let _ = tokio::task::spawn_blocking(move || back_up(&store, &dir, keep)).await;
        wait = settings.every;
    }
}

/// One backup, then the oldest beyond `keep` removed.
pub fn back_up(store: &Store, dir: &Path, keep: usize) {
    if let Err(error) = std::fs::create_dir_all(dir) {
        tracing::error!(
            "cannot make the backup directory `{}`: {error}",
            dir.display()
        );
        return;
    }
    let file = dir.join(format!("state-{}.redb", utc_stamp(now_ms())));
    match store.backup(&file) {
        Ok(summary) => {
            tracing::info!(backup = %file.display(), "store backed up: {summary}");
            let mut all = backups(dir);
            all.sort();
            let excess = all.len().saturating_sub(keep);
            for old in &all[..excess] {
                let _ = std::fs::remove_file(old);
            }
        }
        Err(error) => tracing::error!("store backup failed: {error}"),
    }
}

/// The backups in `dir`, by name (which sorts by time).
fn backups(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("state-") && n.ends_with(".redb"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn newest(dir: &Path) -> Option<(PathBuf, SystemTime)> {
    let newest = backups(dir).into_iter().max()?;
    let made = std::fs::metadata(&newest).ok()?.modified().ok()?;
    Some((newest, made))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_backups_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let backups_dir = backups_of(store.path());
        std::fs::create_dir_all(&backups_dir).unwrap();
        for old in ["state-20000101T000000Z.redb", "state-20010101T000000Z.redb"] {
            std::fs::write(backups_dir.join(old), "").unwrap();
        }
        std::fs::write(backups_dir.join("notes.txt"), "").unwrap();
        back_up(&store, &backups_dir, 2);
        let mut names: Vec<String> = std::fs::read_dir(&backups_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[0], "notes.txt");
        assert_eq!(names[1], "state-20010101T000000Z.redb");
        assert!(crate::store::verify(&backups_dir.join(&names[2])).is_ok());
    }
}
