//! What the engine and its supervisor say to each other, one JSON object a line over a Unix
//! socket, and the line the supervisor appends to a run's ended log when a command ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// From the engine to the supervisor.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Start an attempt's command; answered by [`Reply::Started`] or [`Reply::Refused`].
    Start(Start),
    /// Let a held command run.
    Release { id: u64 },
    /// Send `signal` to the command's process group, if its leader has not been reaped.
    Signal { id: u64, signal: i32 },
}

/// An attempt to start.
#[derive(Debug, Serialize, Deserialize)]
pub struct Start {
    /// The engine's name for the attempt in this conversation.
    pub id: u64,
    pub program: Program,
    /// Added to (and overriding) the supervisor's environment, which is the engine's.
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
    /// Log files, created by the engine; the supervisor appends to them.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Whether the program is a shell script that waits at the gate (a line on its stdin)
    /// until [`Request::Release`]. A command not held has an empty stdin.
    pub held: bool,
    /// The attempt's tag (`TASK-N`) and the run's ended log, where the supervisor records how
    /// the command ended before it tells the engine, unless it never passed the gate.
    pub tag: String,
    pub ended_log: PathBuf,
}

/// How to run a command.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    /// Executed directly (it needs no shell: see [`crate::exec::direct`]). If it cannot be
    /// executed (not found, not executable, not a binary), `/bin/sh -c TEXT` runs instead, so
    /// the log says why in the shell's words and the status is the shell's (127, 126).
    Direct { argv: Vec<String>, text: String },
    /// `/bin/sh -c SCRIPT`.
    Shell { script: String },
    /// `/bin/sh FILE`, for a script longer than one argument may be.
    ShellFile { path: PathBuf },
}

/// From the supervisor to the engine.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The command's process exists: it leads a process group of its own.
    Started { id: u64, pid: u32 },
    /// The command could not be started.
    Refused { id: u64, error: String },
    /// The command's process ended and was reaped, and its group and the attempt's processes
    /// that escaped it were killed.
    Ended { id: u64, ended: Ended },
}

/// How a command ended and what it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub status: Status,
    pub user_cpu_us: u64,
    pub sys_cpu_us: u64,
    pub max_rss_bytes: u64,
    /// Whether processes of the group, or of the attempt that escaped it, outlived SIGKILL for a
    /// couple of seconds.
    pub leftovers: bool,
}

/// A process's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    /// Its status could not be collected (something else reaped it): a bug.
    Unknown,
}

/// One line of a run's ended log: `{"attempt":"7-1","exit":0}` or
/// `{"attempt":"7-1","signal":9}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedLine {
    pub attempt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// The exit status of each attempt in the ended log `path`, by tag; an attempt killed by a
/// signal has none. A line cut short by a crash is skipped.
pub fn exit_statuses(path: &Path) -> HashMap<String, Option<i32>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<EndedLine>(line).ok())
        .map(|line| (line.attempt, line.exit))
        .collect()
}
