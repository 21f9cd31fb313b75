//! Records written into the test store through its own write API.

use std::collections::BTreeMap;
use std::path::Path;

use crate::lifecycle::{self, Event};
use crate::store::{
    AttemptEnd, AttemptFiles, AttemptRecord, RunRecord, RunStatus, Store, TaskRecord, TaskStatus,
};

/// Creates a run of `pipeline` created at `created_ms`, then takes it to `status` through the
/// run lifecycle.
pub fn add_run(
    store: &Store,
    pipeline: &str,
    status: RunStatus,
    trigger: &str,
    created_ms: u64,
) -> RunRecord {
    let finished = status.is_finished().then_some(created_ms + 500);
    let run = store
        .write(|tx| {
            tx.create_run(RunRecord {
                id: 0,
                pipeline: pipeline.into(),
                file: format!("/w/{pipeline}.pipe").into(),
                trigger: trigger.into(),
                params: BTreeMap::new(),
                definition_hash: "d".into(),
                status: lifecycle::run::INITIAL,
                created_ms,
                finished_ms: finished,
                owner_pid: None,
                cancel_requested: false,
                parent: None,
            })
        })
        .unwrap();
    set_run_status(store, run.id, status);
    store.run(run.id).unwrap()
}

/// Creates a task of `run`, then takes it to `status` through the task lifecycle.
pub fn add_task(store: &Store, run: u64, step: &str, status: TaskStatus) -> TaskRecord {
    let task = store
        .write(|tx| {
            tx.create_task(TaskRecord {
                id: 0,
                run,
                step: step.into(),
                group: Some("a".into()),
                key: "k".into(),
                identity: "i".into(),
                params: BTreeMap::new(),
                status: lifecycle::task::INITIAL,
                reason: None,
                inputs: vec![],
                out_dir: "/w/out".into(),
                products: vec![],
                attempts: 0,
                blocked_by: None,
                command: "echo hi".into(),
                finished_ms: None,
            })
        })
        .unwrap();
    set_task_status(store, task.id, status);
    store.task(task.id).unwrap()
}

/// Adds attempt `number` of `task`, its logs `NUMBER.out` and `NUMBER.err` in `logs`.
pub fn add_attempt(
    store: &Store,
    task: u64,
    number: u32,
    logs: &Path,
    wall_ms: Option<u64>,
) -> AttemptRecord {
    let files = AttemptFiles {
        stdout: logs.join(format!("{number}.out")),
        stderr: logs.join(format!("{number}.err")),
        tmp_dir: logs.join("tmp"),
        ended_log: logs.join(format!("{number}.status")),
    };
    let mut attempt = AttemptRecord::new(task, number, files);
    if let Some(ms) = wall_ms {
        attempt.wall_ms = Some(ms);
        attempt.finished_ms = Some(attempt.started_ms + ms);
        attempt.end = Some(AttemptEnd::Succeeded);
    }
    store
        .write(|tx| {
            let mut record = tx.task(task)?;
            record.attempts = record.attempts.max(number);
            tx.put_task_same_status(&record)?;
            tx.put_attempt(&attempt)
        })
        .unwrap();
    attempt
}

/// Marks an attempt finished now.
pub fn finish_attempt(store: &Store, mut attempt: AttemptRecord) {
    attempt.finished_ms = Some(attempt.started_ms + 1);
    attempt.end = Some(AttemptEnd::Failed);
    store.write(|tx| tx.put_attempt(&attempt)).unwrap();
}

/// Takes a task to `status` by the shortest chain of events the task lifecycle allows.
pub fn set_task_status(store: &Store, task: u64, status: TaskStatus) {
    store
        .write(|tx| {
            let mut record = tx.task(task)?;
            let path = lifecycle::path(lifecycle::task::TABLE, record.status, status)
                .unwrap_or_else(|| panic!("no way from {:?} to {status:?}", record.status));
            for kind in path {
                let event = Event::example(kind);
                record.apply(&event)?;
                tx.task_event(&record, &event)?;
            }
            Ok(())
        })
        .unwrap();
}

/// Takes a run to `status` by the shortest chain of events the run lifecycle allows.
pub fn set_run_status(store: &Store, run: u64, status: RunStatus) {
    store
        .write(|tx| {
            let from = tx.run(run)?.status;
            let path = lifecycle::path(lifecycle::run::TABLE, from, status)
                .unwrap_or_else(|| panic!("no way from {from:?} to {status:?}"));
            for kind in path {
                tx.run_event(run, &Event::example(kind), |_| {})?;
            }
            Ok(())
        })
        .unwrap();
}

/// Appends `text` to the file at `path`, creating it.
pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}
