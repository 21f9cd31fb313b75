//! Where an attempt's files live, and its script.
//!
//! An attempt of a task in run R, step S and group G (`_all` for an aggregate) keeps, side by side
//! under `STATE/logs/R/S/`:
//!
//! - `G.N.out` and `G.N.err`: what the command wrote to stdout and stderr;
//! - `G.N.sh`: the command, when it is too long to be passed as one argument;
//! - `G.N.status`: the command's exit status, written by the script when the command ends;
//! - `G.N.task.json`: the task as decided for the attempt, for recovery (see [`decided_file`]);
//! - `G.N.pid`: the pid of a local attempt's wrapper, for recovery (see [`pid_file`]).
//!
//! and writes its outputs into `STATE/tmp/TASK-N/`, which is renamed into place on success. The
//! files are kept with the logs (`engine gc` drops them with the logs of superseded tasks): a file
//! system without a journal makes every file created after many deletions slower (ext4's inode
//! allocator skips recently deleted inodes one by one), so a run deletes nothing it need not.
//!
//! The attempt's wrapper (the local executor's, or a SLURM job's batch script) writes the
//! command's exit status to the status file when it ends, so that an attempt that finishes while
//! the engine is down is not run again.

use std::path::{Path, PathBuf};

use super::scheduler::path_segment;
use crate::store::{AttemptFiles, TaskRecord};

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
        tmp_dir: state.join("tmp").join(format!("{}-{number}", task.id)),
        status_file: named("status"),
    }
}

/// Where the scheduler keeps the task it decided for an attempt, written before the command may
/// run: the scheduler commits an attempt's start in its own time (and a SLURM job is submitted
/// before its id is committed), so recovery may meet an attempt the store never heard of, and
/// completes it with this.
pub fn decided_file(status_file: &Path) -> PathBuf {
    status_file.with_extension("task.json")
}

/// The task decided for the attempt whose status file is `status_file`, if it was kept.
pub fn decided_task(status_file: &Path) -> Option<TaskRecord> {
    let bytes = std::fs::read(decided_file(status_file)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where the pid of the local attempt whose status file is `status_file` is kept, with its start
/// time: its wrapper (a fork of the engine) carries the engine's environment, not the attempt's,
/// so this is how recovery finds it.
pub fn pid_file(status_file: &Path) -> PathBuf {
    status_file.with_extension("pid")
}

/// Writes the pid file: `PID START_TIME` (`-` for an unknown start time).
pub fn write_pid_file(path: &Path, pid: u32, start_time: Option<u64>) -> std::io::Result<()> {
    let start = start_time.map_or_else(|| "-".to_string(), |t| t.to_string());
    std::fs::write(path, format!("{pid} {start}\n"))
}

/// The pid and start time a pid file holds.
pub fn read_pid_file(path: &Path) -> Option<(u32, Option<u64>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    Some((pid.parse().ok()?, start.parse().ok()))
}

/// Where the command of the attempt whose status file is `status_file` is written when it is
/// too long to be passed as one argument.
pub fn script_path(status_file: &Path) -> PathBuf {
    status_file.with_extension("sh")
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
    fn a_pid_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = pid_file(&dir.path().join("g.1.status"));
        assert_eq!(path, dir.path().join("g.1.pid"));
        write_pid_file(&path, 42, Some(7)).unwrap();
        assert_eq!(read_pid_file(&path), Some((42, Some(7))));
        write_pid_file(&path, 43, None).unwrap();
        assert_eq!(read_pid_file(&path), Some((43, None)));
        std::fs::write(&path, "4").unwrap();
        assert_eq!(read_pid_file(&path), None);
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
        assert_eq!(
            files.status_file,
            Path::new("/state/logs/1/count/line%0Aone.2.status")
        );
        assert_eq!(
            script_path(&files.status_file),
            Path::new("/state/logs/1/count/line%0Aone.2.sh")
        );
        assert_eq!(files.tmp_dir, Path::new("/state/tmp/7-2"));
    }
}
