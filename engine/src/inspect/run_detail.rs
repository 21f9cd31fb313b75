//! A run with its tasks and each task's attempts: the shape of `engine show RUN --json` and of
//! `GET /runs/{id}`.

use serde::Serialize;

use crate::store::{AttemptRecord, Result, RunRecord, Store, TaskRecord};

/// A run, its tasks in creation order, and their attempts.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    pub run: RunRecord,
    pub tasks: Vec<TaskDetail>,
}

/// A task record with its attempts beside it (`attempts` is already the task's count of them).
#[derive(Debug, Clone, Serialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: TaskRecord,
    pub attempts_detail: Vec<AttemptRecord>,
}

/// Reads run `id` with its tasks and attempts; [`crate::store::StoreError::NoRun`] if it does
/// not exist.
pub fn run_detail(store: &Store, id: u64) -> Result<RunDetail> {
    let run = store.run(id)?;
    let mut tasks = Vec::new();
    for task in store.tasks_of(run.id)? {
        let attempts_detail = store.attempts_of(task.id)?;
        tasks.push(TaskDetail {
            task,
            attempts_detail,
        });
    }
    Ok(RunDetail { run, tasks })
}
