//! The transition tables, row by row, through a real store: every legal transition is reached
//! from a new record and accepted; a sample of illegal ones is refused by the table and by the
//! store.

use std::collections::BTreeSet;

use strum::IntoEnumIterator;

use super::*;
use crate::store::{RunRecord, Store, StoreError, TaskRecord};

/// Every transition the engine makes, with who makes it. A row added to a table without a case
/// here fails [`every_transition_in_the_tables_has_a_case`].
#[rustfmt::skip]
const TASK_CASES: &[(TaskStatus, EventKind, TaskStatus, &str)] = {
    use EventKind::*;
    use TaskStatus::*;
    &[
        (Pending, TaskCached, Cached, "scheduler: a completed task has the key"),
        (Pending, AttemptStarted, Running, "scheduler: the executor started it"),
        (Pending, AttemptLaunchFailed, Pending, "scheduler: the executor could not start it"),
        (Pending, TaskRetry, Pending, "scheduler: retried after a launch failure"),
        (Pending, TaskFailed, Failed, "scheduler: a launch failure, no retry left"),
        (Running, TaskSucceeded, Succeeded, "scheduler: published"),
        (Running, AttemptFinished, Running, "scheduler: the attempt failed"),
        (Running, TaskRetry, Pending, "scheduler: retried after the backoff"),
        (Running, TaskFailed, Failed, "scheduler: no retry left"),
        (Pending, TaskBlocked, Blocked, "scheduler: an upstream task failed"),
        (Pending, TaskHeld, Held, "scheduler: a trigger's run, the same task failed before"),
        (Pending, TaskCancelled, Cancelled, "scheduler: the run stopped before it started"),
        (Running, TaskCancelled, Cancelled, "scheduler: its attempt was cancelled"),
        (Running, TaskRecovered, Succeeded, "recovery: it succeeded while the engine was down"),
        (Pending, TaskRecovered, Succeeded, "recovery: started uncommitted, then succeeded"),
        (Running, AttemptLost, Failed, "recovery: it failed or vanished"),
        (Pending, AttemptLost, Failed, "recovery: started uncommitted, then failed"),
        (Pending, TaskNotStarted, NotStarted, "recovery: it never ran its command"),
    ]
};

#[rustfmt::skip]
const RUN_CASES: &[(RunStatus, EventKind, RunStatus, &str)] = {
    use EventKind::*;
    use RunStatus::*;
    &[
        (Queued, RunPlanned, Queued, "scheduler: its tasks recorded"),
        (Queued, RunStarted, Running, "scheduler: execution begins"),
        (Queued, RunFailed, Failed, "run: planning failed"),
        (Queued, RunCancelRequested, Queued, "cancel before it started"),
        (Running, RunCancelRequested, Running, "engine cancel, the API"),
        (Running, RunStopping, Running, "the daemon drains"),
        (Running, RunStopped, Running, "a signal to the engine"),
        (Running, RunSucceeded, Succeeded, "scheduler: every task done"),
        (Running, RunFailed, Failed, "scheduler: a task not done"),
        (Running, RunCancelled, Cancelled, "scheduler: it was stopped"),
        (Queued, RunInterrupted, Interrupted, "recovery: its engine died before it started"),
        (Running, RunInterrupted, Interrupted, "recovery: its engine died"),
        (Interrupted, RunCancelled, Cancelled, "engine cancel of a run whose engine died"),
    ]
};

#[test]
fn every_transition_in_the_tables_has_a_case() {
    let task_table: BTreeSet<_> = task::TABLE
        .iter()
        .map(|r| (r.from, r.event, r.to))
        .collect();
    let task_cases: BTreeSet<_> = TASK_CASES.iter().map(|c| (c.0, c.1, c.2)).collect();
    assert_eq!(
        task_table, task_cases,
        "the task table and its cases differ"
    );
    assert_eq!(
        task::TABLE.len(),
        task_table.len(),
        "a task row is written twice"
    );
    let run_table: BTreeSet<_> = run::TABLE.iter().map(|r| (r.from, r.event, r.to)).collect();
    let run_cases: BTreeSet<_> = RUN_CASES.iter().map(|c| (c.0, c.1, c.2)).collect();
    assert_eq!(run_table, run_cases, "the run table and its cases differ");
    assert_eq!(
        run::TABLE.len(),
        run_table.len(),
        "a run row is written twice"
    );
}

#[test]
fn a_table_has_one_row_per_status_and_event() {
    let keys: BTreeSet<_> = task::TABLE.iter().map(|r| (r.from, r.event)).collect();
    assert_eq!(keys.len(), task::TABLE.len());
    let keys: BTreeSet<_> = run::TABLE.iter().map(|r| (r.from, r.event)).collect();
    assert_eq!(keys.len(), run::TABLE.len());
}

#[test]
fn every_event_of_a_row_is_about_that_table() {
    assert!(task::TABLE.iter().all(|r| r.event.entity() == Entity::Task));
    assert!(run::TABLE.iter().all(|r| r.event.entity() == Entity::Run));
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn new_run(store: &Store) -> RunRecord {
    store
        .write(|tx| tx.create_run(RunRecord::queued("p")))
        .unwrap()
}

fn new_task(store: &Store, run: u64) -> TaskRecord {
    store
        .write(|tx| tx.create_task(TaskRecord::pending(run, "s")))
        .unwrap()
}

/// Drives a new task to `status` through the store, by the table's shortest path.
fn task_in(store: &Store, status: TaskStatus) -> TaskRecord {
    let run = new_run(store);
    let mut task = new_task(store, run.id);
    let path = path(task::TABLE, task::INITIAL, status)
        .unwrap_or_else(|| panic!("{status:?} cannot be reached from {:?}", task::INITIAL));
    for kind in path {
        let event = Event::example(kind);
        task.apply(&event).unwrap();
        store.write(|tx| tx.task_event(&task, &event)).unwrap();
    }
    assert_eq!(store.task(task.id).unwrap().status, status);
    task
}

/// Drives a new run to `status` through the store, by the table's shortest path.
fn run_in(store: &Store, status: RunStatus) -> RunRecord {
    let run = new_run(store);
    let path = path(run::TABLE, run::INITIAL, status)
        .unwrap_or_else(|| panic!("{status:?} cannot be reached from {:?}", run::INITIAL));
    for kind in path {
        store
            .write(|tx| tx.run_event(run.id, &Event::example(kind), |_| {}))
            .unwrap();
    }
    store.run(run.id).unwrap()
}

#[test]
fn every_task_transition_is_reached_from_a_new_task_and_stored() {
    let (_dir, store) = store();
    for &(from, kind, to, who) in TASK_CASES {
        let mut task = task_in(&store, from);
        let event = Event::example(kind);
        task.apply(&event).unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(task.status, to, "{who}");
        store.write(|tx| tx.task_event(&task, &event)).unwrap();
        assert_eq!(store.task(task.id).unwrap().status, to, "{who}");
    }
}

#[test]
fn every_run_transition_is_reached_from_a_new_run_and_stored() {
    let (_dir, store) = store();
    for &(from, kind, to, who) in RUN_CASES {
        let run = run_in(&store, from);
        let event = Event::example(kind);
        let written = store
            .write(|tx| tx.run_event(run.id, &event, |_| {}))
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(written.status, to, "{who}");
        assert_eq!(store.run(run.id).unwrap().status, to, "{who}");
    }
}

#[test]
fn a_sample_of_illegal_task_transitions_is_refused_by_the_table_and_the_store() {
    use EventKind::*;
    use TaskStatus::*;
    let illegal = [
        (Pending, TaskSucceeded),
        (Pending, AttemptFinished),
        (Running, TaskCached),
        (Running, AttemptStarted),
        (Running, TaskBlocked),
        (Running, TaskNotStarted),
        (Running, TaskHeld),
        (Held, AttemptStarted),
        (Succeeded, TaskFailed),
        (Cached, AttemptStarted),
        (Failed, TaskRetry),
        (Cancelled, AttemptStarted),
        (Blocked, TaskCancelled),
        (NotStarted, TaskRecovered),
    ];
    let (_dir, store) = store();
    for (from, kind) in illegal {
        let error = task::apply(7, from, kind).unwrap_err();
        assert_eq!(
            (error.entity, error.from, error.event),
            ("task", from.as_str(), kind)
        );
        let mut task = task_in(&store, from);
        assert!(task.apply(&Event::example(kind)).is_err());
        // Written anyway, with a status of the writer's choosing: the store refuses it.
        for forged in TaskStatus::iter() {
            task.status = forged;
            let refused = store.write(|tx| tx.task_event(&task, &Event::example(kind)));
            assert!(
                matches!(refused, Err(StoreError::Illegal(_))),
                "{from:?} {kind:?}"
            );
        }
        assert_eq!(store.task(task.id).unwrap().status, from);
    }
}

#[test]
fn every_final_status_takes_no_event() {
    for status in TaskStatus::iter().filter(|s| s.is_final()) {
        for kind in EventKind::iter() {
            assert!(task::apply(1, status, kind).is_err(), "{status:?} {kind:?}");
        }
    }
    for status in RunStatus::iter().filter(|s| s.is_finished()) {
        for kind in EventKind::iter() {
            let allowed = (status, kind) == (RunStatus::Interrupted, EventKind::RunCancelled);
            assert_eq!(
                run::apply(1, status, kind).is_ok(),
                allowed,
                "{status:?} {kind:?}"
            );
        }
    }
}

#[test]
fn a_sample_of_illegal_run_transitions_is_refused_by_the_store() {
    use EventKind::*;
    use RunStatus::*;
    let illegal = [
        (Queued, RunSucceeded),
        (Running, RunStarted),
        (Running, RunPlanned),
        (Succeeded, RunCancelRequested),
        (Failed, RunStarted),
        (Cancelled, RunInterrupted),
        (Interrupted, RunStarted),
    ];
    let (_dir, store) = store();
    for (from, kind) in illegal {
        let run = run_in(&store, from);
        let refused = store.write(|tx| tx.run_event(run.id, &Event::example(kind), |_| {}));
        assert!(
            matches!(refused, Err(StoreError::Illegal(_))),
            "{from:?} {kind:?}"
        );
        assert_eq!(store.run(run.id).unwrap().status, from);
    }
}

#[test]
fn the_store_refuses_a_status_that_is_not_the_tables() {
    let (_dir, store) = store();
    // The event is legal from `pending`, but leads to `cached`, not `succeeded`.
    let mut task = task_in(&store, TaskStatus::Pending);
    task.status = TaskStatus::Succeeded;
    let refused = store.write(|tx| tx.task_event(&task, &Event::example(EventKind::TaskCached)));
    assert!(matches!(refused, Err(StoreError::StatusMismatch { .. })));
    // A run's update may set anything but its status.
    let run = new_run(&store);
    let refused = store.write(|tx| {
        tx.run_event(run.id, &Event::example(EventKind::RunStarted), |run| {
            run.status = RunStatus::Succeeded
        })
    });
    assert!(matches!(refused, Err(StoreError::StatusMismatch { .. })));
    assert_eq!(store.run(run.id).unwrap().status, RunStatus::Queued);
}

#[test]
fn records_are_created_in_the_first_status_only() {
    let (_dir, store) = store();
    let mut run = RunRecord::queued("p");
    run.status = RunStatus::Running;
    assert!(store.write(|tx| tx.create_run(run.clone())).is_err());
    let queued = new_run(&store);
    let mut task = TaskRecord::pending(queued.id, "s");
    task.status = TaskStatus::Succeeded;
    assert!(store.write(|tx| tx.create_task(task.clone())).is_err());
}

#[test]
fn a_note_cannot_change_a_status() {
    let (_dir, store) = store();
    let run = new_run(&store);
    for kind in EventKind::iter() {
        let noted = store.write(|tx| tx.note(Some(run.id), &Event::example(kind)));
        assert_eq!(noted.is_ok(), kind.entity() == Entity::Neither, "{kind:?}");
    }
}

#[test]
fn the_events_a_task_went_through_are_in_the_log_in_order() {
    use EventKind::*;
    let (_dir, store) = store();
    let run = new_run(&store);
    let mut task = new_task(&store, run.id);
    let went = [
        AttemptStarted,
        AttemptFinished,
        TaskRetry,
        AttemptStarted,
        TaskSucceeded,
    ];
    for kind in went {
        let event = Event::example(kind);
        task.apply(&event).unwrap();
        store.write(|tx| tx.task_event(&task, &event)).unwrap();
    }
    let logged: Vec<(String, Option<u64>)> = store
        .events()
        .unwrap()
        .into_iter()
        .filter(|e| e.run == Some(run.id))
        .map(|e| (e.kind, e.task))
        .collect();
    let mut expected = vec![("run.created".to_string(), None)];
    expected.extend(went.iter().map(|k| (k.as_str().to_string(), Some(task.id))));
    assert_eq!(logged, expected);
    assert_eq!(store.task(task.id).unwrap().status, TaskStatus::Succeeded);
}
