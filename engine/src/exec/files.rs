//! Where an attempt's files live, and how they are made.
//!
//! An attempt of a task in run R, step S and group G (`_all` for an aggregate) keeps, side by side
//! under `STATE/logs/R/S/`:
//!
//! - `G.N.out` and `G.N.err`: what the command wrote to stdout and stderr;
//! - `G.N.sh`: the script the executor runs, only when it is too long to be passed as an
//!   argument;
//!
//! and writes its outputs into `STATE/tmp/TASK-N/`, which is renamed into place on success. The
//! run keeps two logs for recovery, one JSON line per attempt, appended to and removed once the
//! run has ended or been recovered: `STATE/logs/R/decided.jsonl`, the task as decided for each
//! attempt (see [`decided_log`]), and `STATE/logs/R/ended.jsonl`, how each command ended,
//! written by the executor's supervisor (see [`ended_log`]). The other files are kept with the
//! logs (`engine gc` drops them with the logs of superseded tasks): a file system without a
//! journal makes every file created after many deletions slower (ext4's inode allocator skips
//! recently deleted inodes one by one), so a run deletes nothing it need not, and creates no
//! file per attempt that one per run can do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::fs::{self, File};
use std::io;

pub use super::segment::path_segment;
use super::ExecError;
use crate::store::{AttemptFiles, TaskRecord};

/// Empties (removes and recreates) the output directory, unless it is an empty directory already;
/// returns its absolute path.
pub fn prepare_out_dir(path: &Path) -> Result<std::path::PathBuf, ExecError> {
    let error = |source| ExecError::OutDir {
        path: path.to_owned(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() && is_empty_dir(path) => {}
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).map_err(error)?,
        Ok(_) => fs::remove_file(path).map_err(error)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    fs::create_dir_all(path).map_err(error)?;
    std::path::absolute(path).map_err(error)
}

fn is_empty_dir(path: &Path) -> bool {
    fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// Creates (or truncates) a log file, and its directory if need be.
pub fn create_log(path: &Path) -> Result<File, ExecError> {
    let error = |source| ExecError::LogFile {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(error)?;
    }
    File::create(path).map_err(error)
}

/// The files of attempt `number` of `task`, under the state directory `state`.
pub fn attempt_files(state: &Path, task: &TaskRecord, number: u32) -> AttemptFiles {
    let group = task
        .group
        .as_deref()
        .map(path_segment)
        .unwrap_or_else(|| "_all".to_string());
    let logs = state
        .join("logs")
        .join(task.run.to_string())
        .join(&task.step);
    let named = |extension: &str| logs.join(format!("{group}.{number}.{extension}"));
    AttemptFiles {
        stdout: named("out"),
        stderr: named("err"),
        tmp_dir: state
            .join("tmp")
            .join(super::AttemptTag::new(task.id, number).to_string()),
        ended_log: ended_log(state, task.run),
    }
}

/// Creates, ahead of its start, what attempt `number` of `task` will need: its temporary output
/// directory, the directory of its logs and its empty log files, and the parent of its output
/// directory. The scheduler does it for a task whose last upstream task has just started, while
/// that task's command runs: on a chain of steps, each creation (costly on a file system that
/// has just deleted many files) is then off the path from one command to the next. Creates only
/// what is missing, so it never touches the files of an attempt that has started.
///
/// Returns whether it created the temporary directory and both log files itself, empty: the
/// executor then need not check or empty them again when the attempt starts.
pub fn prepare(state: &Path, task: &TaskRecord, number: u32) -> bool {
    let files = attempt_files(state, task, number);
    let mut created = files
        .tmp_dir
        .parent()
        .is_some_and(|tmp| std::fs::create_dir_all(tmp).is_ok())
        && std::fs::create_dir(&files.tmp_dir).is_ok();
    if let Some(dir) = files.stdout.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    for log in [&files.stdout, &files.stderr] {
        created &= std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(log)
            .is_ok();
    }
    if let Some(parent) = task.out_dir.parent() {
        created &= std::fs::create_dir_all(parent).is_ok();
    }
    created
}

/// Removes what [`prepare`] created for an attempt that did not start (the task was reused from
/// the cache, blocked, or cancelled): the temporary directory and the log files, if still empty.
pub fn unprepare(state: &Path, task: &TaskRecord, number: u32) {
    let files = attempt_files(state, task, number);
    let _ = std::fs::remove_dir(&files.tmp_dir);
    for log in [&files.stdout, &files.stderr] {
        if std::fs::metadata(log).is_ok_and(|meta| meta.len() == 0) {
            let _ = std::fs::remove_file(log);
        }
    }
}

/// Where the local executor's supervisor records how each command of run `run` ended, one JSON
/// line per attempt (`{"attempt": "TASK-N", "exit": 0}`), before it tells the engine: an
/// attempt whose command ended while the engine was down is settled from it. Attempts record
/// it as their status file.
pub fn ended_log(state: &Path, run: u64) -> PathBuf {
    state.join("logs").join(run.to_string()).join("ended.jsonl")
}

/// What `ended_log` records of how attempt `tag` ended: `None` if nothing (it never ran, or
/// is still running), else its exit status, `None` within when it has none (killed by a
/// signal, or a record cut short). The record is in the run's ended log, or, as engines before
/// the supervisor wrote it, in a file of the attempt's own holding only the status.
pub fn recorded_end(ended_log: &Path, tag: &str) -> Option<Option<i32>> {
    if let Some(own) = own_status_file(ended_log) {
        let text = std::fs::read_to_string(own).ok()?;
        return Some(text.trim().parse().ok());
    }
    crate::exec::supervisor::exit_statuses(ended_log).remove(tag)
}

/// An attempt's `ended_log` when it is in fact a status file of its own (`G.N.status`), which
/// engines before the supervisor wrote; `None` when it is its run's ended log.
pub fn own_status_file(ended_log: &Path) -> Option<&Path> {
    (ended_log.extension() == Some("status".as_ref())).then_some(ended_log)
}

/// Where the scheduler keeps the tasks it decided for the attempts of run `run`, one JSON line
/// per attempt (`{"attempt": "TASK-N", "task": {...}}`), each written before the attempt's
/// command may run: the scheduler commits an attempt's start in its own time (and a SLURM job is
/// submitted before its id is committed), so recovery may meet an attempt the store never heard
/// of, and completes it with this. One file per run, appended to, so that an attempt costs no
/// file of its own; removed once the run has ended and everything in it is committed.
pub fn decided_log(state: &Path, run: u64) -> PathBuf {
    state
        .join("logs")
        .join(run.to_string())
        .join("decided.jsonl")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Decided<T> {
    attempt: String,
    task: T,
}

/// A run's decided log, open for appending (opened at the first attempt).
#[derive(Debug)]
pub struct DecidedLog {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl DecidedLog {
    /// The decided log of run `run`, under the state directory `state`.
    pub fn new(state: &Path, run: u64) -> DecidedLog {
        DecidedLog {
            path: decided_log(state, run),
            file: None,
        }
    }

    /// Appends the task as decided for attempt `tag` (`TASK-N`), in one write. Returns whether
    /// it was written.
    pub fn keep(&mut self, tag: &str, task: &TaskRecord) -> bool {
        let Ok(mut line) = serde_json::to_vec(&Decided {
            attempt: tag.to_string(),
            task,
        }) else {
            return false;
        };
        line.push(b'\n');
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
        }
        let Some(file) = &mut self.file else {
            return false;
        };
        let written = std::io::Write::write_all(file, &line).is_ok();
        if !written {
            // Reopened for the next attempt: a line cut short is skipped when read back.
            self.file = None;
        }
        written
    }

    /// Closes and removes the log: once the run has ended and everything it could tell
    /// recovery is committed.
    pub fn remove(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The tasks decided for the attempts of run `run`, by attempt tag. A line that does not parse
/// (the last one, cut short by a crash) is skipped.
pub fn decided_tasks(state: &Path, run: u64) -> HashMap<String, TaskRecord> {
    let Ok(text) = std::fs::read_to_string(decided_log(state, run)) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<Decided<TaskRecord>>(line).ok())
        .map(|decided| (decided.attempt, decided.task))
        .collect()
}

/// Where the script of the attempt whose stdout goes to `stdout` is written, when it is too
/// long to be passed as an argument.
pub fn script_path(stdout: &Path) -> PathBuf {
    stdout.with_extension("sh")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskRecord {
        serde_json::from_value(serde_json::json!({
            "id": 7, "run": 1, "step": "count", "group": "line\none", "key": "k",
            "identity": "i", "params": {}, "status": "pending", "reason": null, "inputs": [],
            "out_dir": "/out", "products": [], "attempts": 1, "blocked_by": null,
            "command": "echo 'a\nb'", "finished_ms": null
        }))
        .unwrap()
    }

    #[test]
    fn decided_tasks_read_back_by_attempt_the_last_one_winning() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DecidedLog::new(dir.path(), 1);
        let mut first = task();
        assert!(log.keep("7-1", &first));
        first.key = "other".to_string();
        assert!(log.keep("7-1", &first));
        assert!(log.keep("7-2", &task()));
        // A line cut short by a crash.
        let log = decided_log(dir.path(), 1);
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("{\"attempt\": \"7-3\", \"ta");
        std::fs::write(&log, text).unwrap();
        let decided = decided_tasks(dir.path(), 1);
        assert_eq!(decided.len(), 2);
        assert_eq!(decided["7-1"].key, "other");
        assert_eq!(decided["7-2"].key, "k");
        assert!(decided_tasks(dir.path(), 2).is_empty());
    }

    #[test]
    fn preparing_says_whether_it_created_everything_new() {
        let dir = tempfile::tempdir().unwrap();
        let mut task = task();
        task.out_dir = dir.path().join("out/p/count/one");
        assert!(prepare(dir.path(), &task, 1));
        let files = attempt_files(dir.path(), &task, 1);
        assert!(files.tmp_dir.is_dir() && task.out_dir.parent().unwrap().is_dir());
        assert_eq!(std::fs::metadata(&files.stdout).unwrap().len(), 0);
        // Again: the files are there already, so they are not known to be empty.
        assert!(!prepare(dir.path(), &task, 1));
        unprepare(dir.path(), &task, 1);
        assert!(!files.tmp_dir.exists() && !files.stdout.exists() && !files.stderr.exists());
    }

    #[test]
    fn an_attempts_files_sit_together_and_its_outputs_apart() {
        let files = attempt_files(Path::new("/state"), &task(), 2);
        assert_eq!(
            files.stdout,
            Path::new("/state/logs/1/count/line%0Aone.2.out")
        );
        assert_eq!(
            files.stderr,
            Path::new("/state/logs/1/count/line%0Aone.2.err")
        );
        assert_eq!(files.ended_log, Path::new("/state/logs/1/ended.jsonl"));
        assert_eq!(
            script_path(&files.stdout),
            Path::new("/state/logs/1/count/line%0Aone.2.sh")
        );
        assert_eq!(files.tmp_dir, Path::new("/state/tmp/7-2"));
    }

    #[test]
    fn exit_statuses_come_from_the_ended_log_or_an_attempts_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = ended_log(dir.path(), 1);
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(
            &log,
            "{\"attempt\":\"7-1\",\"exit\":3}\n{\"attempt\":\"8-1\",\"signal\":9}\n{\"attempt\":\"7-2\",\"exit\":0}\n{\"attempt\":\"9-1\",\"ex",
        )
        .unwrap();
        assert_eq!(recorded_end(&log, "7-1"), Some(Some(3)));
        assert_eq!(recorded_end(&log, "7-2"), Some(Some(0)));
        assert_eq!(recorded_end(&log, "8-1"), Some(None));
        assert_eq!(recorded_end(&log, "9-1"), None);
        assert_eq!(recorded_end(&dir.path().join("none"), "7-1"), None);
        let own = dir.path().join("_all.1.status");
        std::fs::write(&own, "0\n").unwrap();
        assert_eq!(recorded_end(&own, "anything"), Some(Some(0)));
        std::fs::write(&own, "").unwrap();
        assert_eq!(recorded_end(&own, "anything"), Some(None));
        std::fs::remove_file(&own).unwrap();
        assert_eq!(recorded_end(&own, "anything"), None);
        assert_eq!(own_status_file(&log), None);
    }
}
