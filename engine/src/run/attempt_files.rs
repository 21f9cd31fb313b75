//! Where an attempt's files live, and its script.
//!
//! An attempt of a task in run R, step S and group G (`_all` for an aggregate) keeps, side by side
//! under `STATE/logs/R/S/`:
//!
//! - `G.N.out` and `G.N.err`: what the command wrote to stdout and stderr;
//! - `G.N.status`: the command's exit status, written by the script when the command ends;
//! - `G.N.sh`: the script the executor runs, only when it is too long to be passed as an
//!   argument;
//!
//! and writes its outputs into `STATE/tmp/TASK-N/`, which is renamed into place on success. The
//! run keeps `STATE/logs/R/decided.jsonl`: the task as decided for each attempt, for recovery
//! (see [`decided_log`]). The files are kept with the logs (`engine gc` drops them with the logs
//! of superseded tasks): a file system without a journal makes every file created after many
//! deletions slower (ext4's inode allocator skips recently deleted inodes one by one), so a run
//! deletes nothing it need not, and creates no file per attempt that one per run can do.
//!
//! The script runs the command in a subshell, then writes the command's exit status to the status
//! file, so that an attempt that finishes while the engine is down is not run again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dsl::model::command::shell_quote;

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

/// Appends the task as decided for attempt `tag` (`TASK-N`) to the run's decided log, in one
/// write. Returns whether it was written.
pub fn keep_decided(state: &Path, tag: &str, task: &TaskRecord) -> bool {
    let path = decided_log(state, task.run);
    let Ok(mut line) = serde_json::to_vec(&Decided {
        attempt: tag.to_string(),
        task,
    }) else {
        return false;
    };
    line.push(b'\n');
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, &line))
        .is_ok()
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

/// The script of the attempt whose status file is `status_file`.
pub fn script_path(status_file: &Path) -> PathBuf {
    status_file.with_extension("sh")
}

/// The script that runs `command`. The command is `eval`ed from a quoted string in a
/// subshell: whatever it does (`exit`, a syntax error, `exec`) ends only the subshell. The
/// wrapper itself lives through SIGTERM (a trap that does nothing; the subshell starts with the
/// default again), so a command given SIGTERM on timeout or cancel has its grace to end, and its
/// status is still written. The status is written directly, without a rename: recovery reads an
/// empty or partial file, left by a wrapper killed while writing it, as no status at all.
pub fn script(command: &str, status_file: &Path) -> String {
    format!(
        "trap : TERM\n(eval {})\nstatus=$?\nprintf '%s\\n' \"$status\" > {}\nexit \"$status\"\n",
        shell_quote(command),
        shell_quote(&status_file.to_string_lossy()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn task() -> TaskRecord {
        serde_json::from_value(serde_json::json!({
            "id": 7, "run": 1, "step": "count", "group": "line\none", "key": "k",
            "identity": "i", "params": {}, "status": "pending", "reason": null, "inputs": [],
            "out_dir": "/out", "products": [], "attempts": 1, "blocked_by": null,
            "command": "echo 'a\nb'", "finished_ms": null
        }))
        .unwrap()
    }

    fn run_script(dir: &Path, command: &str) -> (i32, String) {
        let status = dir.join("7-1.status");
        let path = script_path(&status);
        std::fs::write(&path, script(command, &status)).unwrap();
        let ran = Command::new("/bin/sh").arg(&path).output().unwrap();
        let written = std::fs::read_to_string(&status).unwrap();
        (ran.status.code().unwrap(), written)
    }

    #[test]
    fn decided_tasks_read_back_by_attempt_the_last_one_winning() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = task();
        assert!(keep_decided(dir.path(), "7-1", &first));
        first.key = "other".to_string();
        assert!(keep_decided(dir.path(), "7-1", &first));
        assert!(keep_decided(dir.path(), "7-2", &task()));
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

    #[test]
    fn the_status_is_the_commands_even_when_it_exits_the_shell() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(run_script(dir.path(), "true").0, 0);
        let (code, written) = run_script(dir.path(), "echo x; exit 3; echo y");
        assert_eq!((code, written.as_str()), (3, "3\n"));
        // A syntax error fails the command, not the wrapper.
        let (code, written) = run_script(dir.path(), "if then fi (");
        assert_eq!(code, 2);
        assert_eq!(written, "2\n");
    }
}
