//! SLURM job states, as `squeue`, `scontrol` and `sacct` print them, and what each means for the
//! engine: still in the queue, or ended, and then how.

use std::fmt;

use crate::exec::{ClusterEnding, Ending};

/// A SLURM job state (`JOB_STATE_CODES` in squeue(1)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for resources, held, requeued, or being configured: not started yet.
    Pending,
    /// Running, or ending (completing, staging out, signalled), or suspended: started, not over.
    Running,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    OutOfMemory,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    /// A state this engine does not know; treated as still in the queue.
    Other(String),
}

impl JobState {
    /// Reads a state as SLURM prints it. `sacct` adds a qualifier (`CANCELLED by 0`) and
    /// `squeue` may abbreviate; both are understood.
    pub fn parse(text: &str) -> JobState {
        let word = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('+');
        match word.to_ascii_uppercase().as_str() {
            "PENDING" | "PD" | "CONFIGURING" | "CF" | "REQUEUED" | "RQ" | "REQUEUE_HOLD" | "RH"
            | "REQUEUE_FED" | "RF" | "RESV_DEL_HOLD" | "RD" => JobState::Pending,
            "RUNNING" | "R" | "COMPLETING" | "CG" | "STAGE_OUT" | "SO" | "SIGNALING" | "SI"
            | "SUSPENDED" | "S" | "STOPPED" | "ST" | "RESIZING" | "RS" | "SPECIAL_EXIT" | "SE" => {
                JobState::Running
            }
            "COMPLETED" | "CD" => JobState::Completed,
            "FAILED" | "F" => JobState::Failed,
            "CANCELLED" | "CA" => JobState::Cancelled,
            "TIMEOUT" | "TO" => JobState::Timeout,
            "OUT_OF_MEMORY" | "OOM" => JobState::OutOfMemory,
            "NODE_FAIL" | "NF" => JobState::NodeFail,
            "PREEMPTED" | "PR" => JobState::Preempted,
            "BOOT_FAIL" | "BF" => JobState::BootFail,
            "DEADLINE" | "DL" => JobState::Deadline,
            _ => JobState::Other(word.to_string()),
        }
    }

    /// Whether the job is over: it will not run (again) under this id.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            JobState::Pending | JobState::Running | JobState::Other(_)
        )
    }

    /// How a job that ended in this state ended, for the engine. `exit` is SLURM's exit code
    /// pair (`ExitCode=2:0` is status 2, `0:9` is signal 9); `None` when SLURM did not say.
    /// `None` for a state that is not final.
    pub fn ending(&self, exit: Option<(i32, i32)>) -> Option<Ending> {
        let by_exit = || match exit {
            Some((_, signal)) if signal != 0 => Ending::Signaled(signal),
            Some((code, _)) => Ending::Exited(code),
            None => Ending::Lost,
        };
        Some(match self {
            JobState::Pending | JobState::Running | JobState::Other(_) => return None,
            JobState::Completed => match exit {
                None => Ending::Exited(0),
                Some(_) => by_exit(),
            },
            // A batch script that exited non-zero, or was killed by a signal.
            JobState::Failed => match by_exit() {
                Ending::Exited(0) | Ending::Lost => Ending::Cluster(ClusterEnding::Failed),
                ending => ending,
            },
            JobState::Timeout => Ending::TimedOut,
            JobState::Cancelled => Ending::Cluster(ClusterEnding::CancelledOutside),
            JobState::OutOfMemory => Ending::Cluster(ClusterEnding::OutOfMemory),
            JobState::NodeFail => Ending::Cluster(ClusterEnding::NodeFailure),
            JobState::Preempted => Ending::Cluster(ClusterEnding::Preempted),
            JobState::BootFail => Ending::Cluster(ClusterEnding::BootFailure),
            JobState::Deadline => Ending::Cluster(ClusterEnding::Deadline),
        })
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobState::Pending => "PENDING",
            JobState::Running => "RUNNING",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
            JobState::Timeout => "TIMEOUT",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Preempted => "PREEMPTED",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::Other(state) => state,
        })
    }
}

/// Reads SLURM's `ExitCode` pair, `STATUS:SIGNAL`.
pub fn parse_exit_code(text: &str) -> Option<(i32, i32)> {
    let (code, signal) = text.trim().split_once(':')?;
    Some((code.parse().ok()?, signal.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_long_short_and_qualified() {
        assert_eq!(JobState::parse("PENDING"), JobState::Pending);
        assert_eq!(JobState::parse("PD"), JobState::Pending);
        assert_eq!(JobState::parse("COMPLETING"), JobState::Running);
        assert_eq!(JobState::parse("CANCELLED by 0"), JobState::Cancelled);
        assert_eq!(JobState::parse("OUT_OF_MEMORY"), JobState::OutOfMemory);
        assert_eq!(JobState::parse("completed"), JobState::Completed);
        assert_eq!(JobState::parse("NODE_FAIL"), JobState::NodeFail);
        assert_eq!(JobState::parse("TIMEOUT"), JobState::Timeout);
        assert_eq!(
            JobState::parse("WEIRD"),
            JobState::Other("WEIRD".to_string())
        );
        assert_eq!(JobState::parse(""), JobState::Other(String::new()));
    }

    #[test]
    fn queued_states_are_not_final() {
        for state in [
            "PENDING",
            "RUNNING",
            "COMPLETING",
            "SUSPENDED",
            "REQUEUED",
            "WEIRD",
        ] {
            let state = JobState::parse(state);
            assert!(!state.is_final(), "{state}");
            assert_eq!(state.ending(Some((0, 0))), None);
        }
    }

    #[test]
    fn final_states_map_to_endings() {
        let ending = |state: &str, exit| JobState::parse(state).ending(exit);
        assert_eq!(ending("COMPLETED", Some((0, 0))), Some(Ending::Exited(0)));
        assert_eq!(ending("COMPLETED", None), Some(Ending::Exited(0)));
        assert_eq!(ending("FAILED", Some((3, 0))), Some(Ending::Exited(3)));
        assert_eq!(ending("FAILED", Some((0, 9))), Some(Ending::Signaled(9)));
        assert_eq!(
            ending("FAILED", None),
            Some(Ending::Cluster(ClusterEnding::Failed))
        );
        assert_eq!(ending("TIMEOUT", Some((0, 15))), Some(Ending::TimedOut));
        assert_eq!(
            ending("CANCELLED", Some((0, 15))),
            Some(Ending::Cluster(ClusterEnding::CancelledOutside))
        );
        assert_eq!(
            ending("OUT_OF_MEMORY", Some((0, 125))),
            Some(Ending::Cluster(ClusterEnding::OutOfMemory))
        );
        assert_eq!(
            ending("NODE_FAIL", None),
            Some(Ending::Cluster(ClusterEnding::NodeFailure))
        );
        assert_eq!(
            ending("PREEMPTED", None),
            Some(Ending::Cluster(ClusterEnding::Preempted))
        );
        assert_eq!(
            ending("BOOT_FAIL", None),
            Some(Ending::Cluster(ClusterEnding::BootFailure))
        );
        assert_eq!(
            ending("DEADLINE", None),
            Some(Ending::Cluster(ClusterEnding::Deadline))
        );
    }

    #[test]
    fn exit_codes_parse() {
        assert_eq!(parse_exit_code("0:0"), Some((0, 0)));
        assert_eq!(parse_exit_code("2:0"), Some((2, 0)));
        assert_eq!(parse_exit_code("0:9"), Some((0, 9)));
        assert_eq!(parse_exit_code(" 1:15\n"), Some((1, 15)));
        assert_eq!(parse_exit_code("x:0"), None);
        assert_eq!(parse_exit_code("7"), None);
        assert_eq!(parse_exit_code(""), None);
    }
}
