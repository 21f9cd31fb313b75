//! The processes of an attempt that left its process group (`setsid`, `setpgid`, a daemon's
//! fork-setsid-fork), which the group's last SIGKILL does not reach, and how the supervisor
//! tells whose they are.
//!
//! The supervisor process is the child subreaper of everything its commands start
//! (`PR_SET_CHILD_SUBREAPER`): a process whose parent dies is given to it, not to init. So once
//! a command has ended and its group is dead, each process of the attempt that escaped the group
//! is a child of the supervisor, or a descendant of one that escaped with it. Being given to
//! the supervisor loses the process's ancestry, so it is told by its environment instead: every
//! attempt's carries the state directory and the attempt's tag ([`Marker`]), as crash recovery
//! reads them too. A process that cleared its environment (`env -i`) or may not be read by the
//! supervisor (a set-user-ID program) is not recognised, nor are its descendants while it lives.
//!
//! The cleaner answer is a cgroup per attempt, which no process can leave; the engine does not
//! rely on one, since containers and CI machines seldom let it create cgroups.

use std::collections::HashSet;

use crate::exec::process;
use crate::exec::{ATTEMPT_VAR, STATE_DIR_VAR};

/// The two entries of an attempt's environment that name it: `ENGINE_STATE_DIR=DIR` and
/// `ENGINE_ATTEMPT=TASK-N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Marker {
    state_dir: Vec<u8>,
    attempt: Vec<u8>,
}

impl Marker {
    /// The marker in an attempt's environment (the entries the supervisor adds to its own);
    /// `None` if it has none, as the unit tests' commands have not.
    pub(super) fn of(env: &[(String, String)]) -> Option<Marker> {
        let entry = |name: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(n, value)| format!("{n}={value}").into_bytes())
        };
        Some(Marker {
            state_dir: entry(STATE_DIR_VAR)?,
            attempt: entry(ATTEMPT_VAR)?,
        })
    }

    /// Whether the process `pid` carries this marker in its environment (as it was when it
    /// executed its program); `None` when its environment is empty, which it is for a moment
    /// while it executes a new program (and for good after `env -i`).
    pub(super) fn carried_by(&self, pid: u32) -> Option<bool> {
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            return Some(false);
        };
        if environ.is_empty() {
            return None;
        }
        let (mut state_dir, mut attempt) = (false, false);
        for entry in environ.split(|b| *b == 0) {
            state_dir |= entry == self.state_dir.as_slice();
            attempt |= entry == self.attempt.as_slice();
        }
        Some(state_dir && attempt)
    }
}

/// The live children of this process that are not `commands`: the processes it adopted.
/// Call it under the locks that every reaping of a child of this process takes.
pub(super) fn adopted(commands: &HashSet<u32>) -> Vec<u32> {
    process::own_children()
        .into_iter()
        .filter(|pid| !commands.contains(pid) && process::process_alive(*pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_marker_is_the_last_state_dir_and_attempt_of_the_environment() {
        let marker = Marker::of(&env(&[
            (STATE_DIR_VAR, "/old"),
            ("OTHER", "x"),
            (STATE_DIR_VAR, "/state"),
            (ATTEMPT_VAR, "7-2"),
        ]))
        .unwrap();
        assert_eq!(marker.state_dir, b"ENGINE_STATE_DIR=/state");
        assert_eq!(marker.attempt, b"ENGINE_ATTEMPT=7-2");
        assert_eq!(Marker::of(&env(&[(ATTEMPT_VAR, "7-2")])), None);
        assert_eq!(Marker::of(&env(&[(STATE_DIR_VAR, "/state")])), None);
    }

    #[test]
    fn a_process_carries_the_marker_of_its_own_attempt_only() {
        if !std::path::Path::new("/proc/self/environ").exists() {
            return;
        }
        let dir = "/nonexistent/state";
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env(STATE_DIR_VAR, dir)
            .env(ATTEMPT_VAR, "7-2")
            .spawn()
            .unwrap();
        let marker = |attempt| Marker::of(&env(&[(STATE_DIR_VAR, dir), (ATTEMPT_VAR, attempt)]));
        let pid = child.id();
        // `spawn` returns once `execve` is past the point of no return, a moment before the new
        // program's environment is in place.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| e.is_empty())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let carried = marker("7-2").unwrap().carried_by(pid);
        let other = marker("7-20").unwrap().carried_by(pid);
        let elsewhere = Marker::of(&env(&[(STATE_DIR_VAR, "/other"), (ATTEMPT_VAR, "7-2")]))
            .unwrap()
            .carried_by(pid);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(carried, Some(true));
        assert_eq!(other, Some(false), "another attempt's tag");
        assert_eq!(elsewhere, Some(false), "another state directory");
    }
}
