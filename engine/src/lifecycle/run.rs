//! The run lifecycle. A run is created `queued`; its engine, recovery and `engine cancel` move
//! it on only through this table.

use super::{transitions, EventKind, IllegalTransition, RunStatus, Transition};

/// The status every run is created with.
pub const INITIAL: RunStatus = RunStatus::Queued;

/// Every legal transition of a run, `from --(event)--> to`.
#[rustfmt::skip]
pub const TABLE: &[Transition<RunStatus>] = transitions!(RunStatus {
    Queued      --(RunPlanned)-->         Queued,
    Queued      --(RunStarted)-->         Running,
    // It could not be planned (a source unreadable, a param wrong).
    Queued      --(RunFailed)-->          Failed,
    Queued      --(RunCancelRequested)--> Queued,
    Running     --(RunCancelRequested)--> Running,
    Running     --(RunStopping)-->        Running,
    Running     --(RunStopped)-->         Running,
    Running     --(RunSucceeded)-->       Succeeded,
    Running     --(RunFailed)-->          Failed,
    Running     --(RunCancelled)-->       Cancelled,
    // Recovery found its engine gone.
    Queued      --(RunInterrupted)-->     Interrupted,
    Running     --(RunInterrupted)-->     Interrupted,
    // `engine cancel` of a run whose engine is gone: recovered, then cancelled.
    Interrupted --(RunCancelled)-->       Cancelled,
});

/// The status a run in `from` takes on `event`.
pub fn apply(id: u64, from: RunStatus, event: EventKind) -> Result<RunStatus, IllegalTransition> {
    super::next(TABLE, from, event).ok_or(IllegalTransition {
        entity: "run",
        id,
        from: from.as_str(),
        event,
    })
}
