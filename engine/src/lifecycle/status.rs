//! The statuses a run and a task can have. Only the transition tables ([`super::run`],
//! [`super::task`]) say which follows which; nothing else assigns one.

use serde::{Deserialize, Serialize};

/// Where a run is in its lifecycle.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunStatus {
    /// Created and planned; not yet executing.
    Queued,
    Running,
    Succeeded,
    /// At least one task failed or was blocked by a failure, or the run could not be planned.
    Failed,
    Cancelled,
    /// The process that ran it died; `engine resume` goes on with it.
    Interrupted,
}

impl RunStatus {
    /// Every status, in the order a run may go through them.
    pub fn all() -> impl Iterator<Item = RunStatus> {
        <RunStatus as strum::IntoEnumIterator>::iter()
    }

    /// Whether the run is over: no engine works on it any more.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where a task is in its lifecycle.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for its upstream tasks, a slot, or the backoff before a retry.
    Pending,
    Running,
    Succeeded,
    /// Not run: a completed task with the same key and intact products exists.
    Cached,
    Failed,
    /// Stopped by a cancel, or left unstarted by a run that was cancelled.
    Cancelled,
    /// Not run because an upstream task failed.
    Blocked,
    /// Not run by a trigger's run: the same task (same key) failed after its retries in an
    /// earlier run, or an upstream task is held; waits for a retry by hand.
    Held,
    /// Never ran its command: its run's engine died before it started.
    NotStarted,
}

impl TaskStatus {
    /// Every status.
    pub fn all() -> impl Iterator<Item = TaskStatus> {
        <TaskStatus as strum::IntoEnumIterator>::iter()
    }

    /// Finished with its products available to downstream tasks.
    pub fn is_done(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Cached)
    }

    /// Whether nothing more happens to the task in its run.
    pub fn is_final(self) -> bool {
        !matches!(self, TaskStatus::Pending | TaskStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AttemptEnd {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    /// The engine died while the attempt ran and its outcome could not be recovered.
    Lost,
    /// The process could not even start.
    LaunchFailed,
}

impl AttemptEnd {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_same_for_serde_and_for_people() {
        for status in TaskStatus::all() {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), status);
        }
        for status in RunStatus::all() {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), status);
        }
        assert_eq!(TaskStatus::NotStarted.as_str(), "not_started");
    }
}
