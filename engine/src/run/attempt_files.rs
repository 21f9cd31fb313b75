//! Where an attempt's files live, and its script.
//!
//! An attempt of a task in run R, step S and group G (`_all` for an aggregate) keeps, side by side
//! under `STATE/logs/R/S/`:
//!
//! - `G.N.out` and `G.N.err`: what the command wrote to stdout and stderr;
//! - `G.N.sh`: the script the executor runs;
//! - `G.N.status`: the command's exit status, written by the script when the command ends;
//! - `G.N.task.json`: the task as decided for the attempt, for recovery (see [`decided_file`]).
//!
//! and writes its outputs into `STATE/tmp/TASK-N/`, which is renamed into place on success. The
//! files are kept with the logs (`engine gc` drops them with the logs of superseded tasks): a file
//! system without a journal makes every file created after many deletions slower (ext4's inode
//! allocator skips recently deleted inodes one by one), so a run deletes nothing it need not.
//!
//! The script runs the command in a subshell, then writes the command's exit status to the status
//! file, so that an attempt that finishes while the engine is down is not run again.

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

/// The script of the attempt whose status file is `status_file`.
pub fn script_path(status_file: &Path) -> PathBuf {
    status_file.with_extension("sh")
}

/// The script that runs `command`. The command is `eval`ed from a quoted string in a
/// subshell: whatever it does (`exit`, a syntax error, `exec`) ends only the subshell. The
/// status is written directly, without a rename: recovery reads an empty or partial file, left by
/// a wrapper killed while writing it, as no status at all.
pub fn script(command: &str, status_file: &Path) -> String {
    format!(
        "(eval {})\nstatus=$?\nprintf '%s\\n' \"$status\" > {}\nexit \"$status\"\n",
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
