//! The scheduler's pending store writes. A run makes many transitions in quick succession (a
//! thousand cached tasks in a row, several attempts starting at once); committing each in its own
//! transaction would cost two `fdatasync`s apiece. The scheduler records them here instead and
//! commits them together, in the order recorded, once per turn of its loop: before it lets the
//! commands it started run (they wait at the executor's gate) and before it waits for anything.
//!
//! Some files must outlive the state they describe: a failed attempt's temporary directory, with
//! its status file saying 0 after a failed publish, would read as "published" to recovery if it
//! vanished before the failure was committed. Those are removed only after the commit.

use std::path::PathBuf;

use crate::store::{self, Store, Tx};

type Write = Box<dyn FnOnce(&mut Tx<'_>) -> store::Result<()> + Send>;

/// Store writes recorded but not yet committed.
#[derive(Default)]
pub struct Journal {
    pending: Vec<Write>,
    /// Files and directories to remove once the pending writes are committed.
    obsolete: Vec<PathBuf>,
}

impl Journal {
    /// Records a write, to be committed by the next [`commit`](Self::commit).
    pub fn record(
        &mut self,
        write: impl FnOnce(&mut Tx<'_>) -> store::Result<()> + Send + 'static,
    ) {
        self.pending.push(Box::new(write));
    }

    /// Removes `path` (a file or a directory tree) once the writes recorded so far are committed.
    pub fn remove_after_commit(&mut self, path: PathBuf) {
        self.obsolete.push(path);
    }

    /// Commits every recorded write in one transaction, in the order recorded, then removes what
    /// was waiting for it. Does nothing when nothing is pending. On an error nothing is committed
    /// or removed: the caller stops the run, and recovery settles it from what was committed
    /// before and the files left behind.
    pub fn commit(&mut self, store: &Store) -> store::Result<()> {
        let writes = std::mem::take(&mut self.pending);
        let obsolete = std::mem::take(&mut self.obsolete);
        if !writes.is_empty() {
            store.write(|tx| writes.into_iter().try_for_each(|write| write(tx)))?;
        }
        for path in obsolete {
            let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunRecord, RunStatus};

    fn run_named(pipeline: &str) -> RunRecord {
        RunRecord::queued(pipeline)
    }

    #[test]
    fn writes_are_committed_together_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let run = store.write(|tx| tx.create_run(run_named("p"))).unwrap();
        let mut journal = Journal::default();
        let mut first = run.clone();
        first.status = RunStatus::Running;
        let mut second = run.clone();
        second.status = RunStatus::Succeeded;
        journal.record(move |tx| tx.put_run(&first));
        journal.record(move |tx| tx.put_run(&second));
        assert_eq!(store.run(run.id).unwrap().status, run.status);
        journal.commit(&store).unwrap();
        assert_eq!(store.run(run.id).unwrap().status, RunStatus::Succeeded);
        // Nothing is left to commit.
        journal.commit(&store).unwrap();
    }

    #[test]
    fn a_failing_write_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let run = store.write(|tx| tx.create_run(run_named("p"))).unwrap();
        let mut journal = Journal::default();
        let mut changed = run.clone();
        changed.status = RunStatus::Running;
        journal.record(move |tx| tx.put_run(&changed));
        journal.record(|tx| tx.task(999_999).map(drop));
        let kept = dir.path().join("status");
        std::fs::write(&kept, "0").unwrap();
        journal.remove_after_commit(kept.clone());
        assert!(journal.commit(&store).is_err());
        assert_eq!(store.run(run.id).unwrap().status, run.status);
        assert!(kept.exists());
    }

    #[test]
    fn files_are_removed_only_after_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let file = dir.path().join("status");
        let tree = dir.path().join("tmp");
        std::fs::write(&file, "0").unwrap();
        std::fs::create_dir_all(tree.join("nested")).unwrap();
        let mut journal = Journal::default();
        journal.record(|tx| tx.create_run(run_named("p")).map(drop));
        journal.remove_after_commit(file.clone());
        journal.remove_after_commit(tree.clone());
        assert!(file.exists() && tree.exists());
        journal.commit(&store).unwrap();
        assert!(!file.exists() && !tree.exists());
        assert_eq!(store.runs().unwrap().len(), 1);
    }
}
