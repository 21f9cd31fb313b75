//! The scheduler's pending store writes. A run makes many transitions in quick succession (a
//! thousand cached tasks in a row, attempts starting and ending every few milliseconds);
//! committing each in its own transaction would cost a durable commit apiece (two `fdatasync`s
//! in redb's multi-writer mode). The scheduler records them here instead and commits them
//! together, in the order recorded: at the latest [`COMMIT_EVERY`] after the first of them was
//! recorded, and at once where something outside the engine relies on them (a retried attempt
//! released, a SLURM job waited on, the run's end). What happens between two commits is not lost
//! in a crash: recovery settles it from the files the run leaves (its decided log, the ended log
//! the supervisor writes, a SLURM job's usage file, the outputs) and from what SLURM says of its
//! jobs, see `recovery.rs`.
//!
//! Some files must outlive the state they describe: the temporary directory of an attempt whose
//! command exited 0 but whose publish failed would, once gone, read as "published" to recovery
//! (exit status 0 and no temporary directory) if the failure was not yet committed. Those are
//! removed only after the commit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::store::{self, Store, Tx};

/// How long a recorded write may wait for its commit.
pub const COMMIT_EVERY: Duration = Duration::from_millis(100);

type Write = Box<dyn FnOnce(&mut Tx<'_>) -> store::Result<()> + Send>;

/// Store writes recorded but not yet committed.
#[derive(Default)]
pub struct Journal {
    pending: Vec<Write>,
    /// Files and directories to remove once the pending writes are committed.
    obsolete: Vec<PathBuf>,
    /// When the oldest pending write was recorded.
    since: Option<Instant>,
}

impl Journal {
    /// Records a write, to be committed by the next [`commit`](Self::commit).
    pub fn record(
        &mut self,
        write: impl FnOnce(&mut Tx<'_>) -> store::Result<()> + Send + 'static,
    ) {
        self.pending.push(Box::new(write));
        self.since.get_or_insert_with(Instant::now);
    }

    /// When the pending writes are due to be committed; `None` when nothing is pending.
    pub fn due_at(&self) -> Option<Instant> {
        self.since.map(|since| since + COMMIT_EVERY)
    }

    /// Whether pending writes have waited [`COMMIT_EVERY`] or longer.
    pub fn is_due(&self) -> bool {
        self.due_at().is_some_and(|due| due <= Instant::now())
    }

    /// Removes `path` (a file or a directory tree) once the writes recorded so far are committed.
    pub fn remove_after_commit(&mut self, path: PathBuf) {
        self.obsolete.push(path);
        self.since.get_or_insert_with(Instant::now);
    }

    /// Commits every recorded write in one transaction, in the order recorded, then removes what
    /// was waiting for it. Does nothing when nothing is pending. On an error nothing is committed
    /// or removed: the caller stops the run, and recovery settles it from what was committed
    /// before and the files left behind.
    pub fn commit(&mut self, store: &Store) -> store::Result<()> {
        let writes = std::mem::take(&mut self.pending);
        let obsolete = std::mem::take(&mut self.obsolete);
        self.since = None;
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
    use crate::lifecycle::Event;
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
        let id = run.id;
        let started = Event::RunStarted { tasks: 0 };
        journal.record(move |tx| tx.run_event(id, &started, |_| {}).map(drop));
        journal.record(move |tx| tx.run_event(id, &Event::RunSucceeded, |_| {}).map(drop));
        assert_eq!(store.run(run.id).unwrap().status, run.status);
        journal.commit(&store).unwrap();
        assert_eq!(store.run(run.id).unwrap().status, RunStatus::Succeeded);
        // Nothing is left to commit.
        assert_eq!(journal.due_at(), None);
        journal.commit(&store).unwrap();
    }

    #[test]
    fn writes_fall_due_a_while_after_the_first_one() {
        let mut journal = Journal::default();
        assert!(!journal.is_due());
        let before = Instant::now();
        journal.record(|tx| tx.create_run(run_named("p")).map(drop));
        let due = journal.due_at().unwrap();
        assert!(due >= before + COMMIT_EVERY && due <= Instant::now() + COMMIT_EVERY);
        // A later write does not move it.
        journal.record(|tx| tx.create_run(run_named("q")).map(drop));
        assert_eq!(journal.due_at(), Some(due));
        assert!(!journal.is_due());
        std::thread::sleep(COMMIT_EVERY);
        assert!(journal.is_due());
    }

    #[test]
    fn a_failing_write_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let run = store.write(|tx| tx.create_run(run_named("p"))).unwrap();
        let mut journal = Journal::default();
        let id = run.id;
        let started = Event::RunStarted { tasks: 0 };
        journal.record(move |tx| tx.run_event(id, &started, |_| {}).map(drop));
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
