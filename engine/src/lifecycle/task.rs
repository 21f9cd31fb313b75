//! The task lifecycle. A task is created `pending` when its run is planned; the scheduler and
//! recovery move it on only through this table.

use super::{transitions, EventKind, IllegalTransition, TaskStatus, Transition};

/// The status every task is created with.
pub const INITIAL: TaskStatus = TaskStatus::Pending;

/// Every legal transition of a task, `from --(event)--> to`.
#[rustfmt::skip]
pub const TABLE: &[Transition<TaskStatus>] = transitions!(TaskStatus {
    // Deciding: reuse a cached result, or start an attempt.
    Pending --(TaskCached)-->          Cached,
    Pending --(AttemptStarted)-->      Running,
    // The executor could not start it: retried after the backoff, or failed.
    Pending --(AttemptLaunchFailed)--> Pending,
    Pending --(TaskRetry)-->           Pending,
    Pending --(TaskFailed)-->          Failed,
    // An attempt ran.
    Running --(TaskSucceeded)-->       Succeeded,
    Running --(AttemptFinished)-->     Running,
    Running --(TaskRetry)-->           Pending,
    Running --(TaskFailed)-->          Failed,
    // Something it depends on failed; its run was cancelled.
    Pending --(TaskBlocked)-->         Blocked,
    // A trigger's run: the same task failed after its retries, and waits for a person.
    Pending --(TaskHeld)-->            Held,
    Pending --(TaskCancelled)-->       Cancelled,
    Running --(TaskCancelled)-->       Cancelled,
    // Recovery, after its engine died. An attempt may have started (even ended) before its
    // start was committed, so a pending task can be recovered or lost too.
    Running --(TaskRecovered)-->       Succeeded,
    Pending --(TaskRecovered)-->       Succeeded,
    Running --(AttemptLost)-->         Failed,
    Pending --(AttemptLost)-->         Failed,
    Pending --(TaskNotStarted)-->      NotStarted,
});

/// The status a task in `from` takes on `event`.
pub fn apply(id: u64, from: TaskStatus, event: EventKind) -> Result<TaskStatus, IllegalTransition> {
    super::next(TABLE, from, event).ok_or(IllegalTransition {
        entity: "task",
        id,
        from: from.as_str(),
        event,
    })
}
