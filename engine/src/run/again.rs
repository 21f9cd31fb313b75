//! Runs made from an earlier run, with its pipeline file and params: `resume` (what failed, was
//! cancelled or never started; the rest is cached), `rerun` (ignoring the cache for every step, or
//! from one step on) and `retry` (only the failed tasks, and what they block). The CLI and the
//! daemon's API both derive them here.

use std::collections::BTreeSet;

use dsl::model::Pipeline;

use super::{Force, TaskFilter};
use crate::store::{RunRecord, Store, StoreError, TaskStatus};

/// Which kind of run to make from an earlier one.
#[derive(Debug, Clone)]
pub enum Again {
    Resume,
    /// From this step on, or every step.
    Rerun(Option<String>),
    /// Only the failed tasks of this step, or of every step.
    Retry(Option<String>),
}

/// How the new run differs from a plain run of the pipeline.
pub struct Derived {
    pub force: Force,
    pub only: Option<TaskFilter>,
    /// `resume of N`, `rerun of N`, `retry of N`.
    pub trigger: String,
}

/// The new run's settings; `None` for a retry with nothing failed.
pub fn derive(
    store: &Store,
    parent: &RunRecord,
    pipeline: &Pipeline,
    again: &Again,
) -> Result<Option<Derived>, StoreError> {
    Ok(Some(match again {
        Again::Resume => Derived {
            force: Force::None,
            only: None,
            trigger: format!("resume of {}", parent.id),
        },
        Again::Rerun(from) => Derived {
            force: from
                .as_deref()
                .map_or(Force::All, |s| Force::from_step(pipeline, s)),
            only: None,
            trigger: format!("rerun of {}", parent.id),
        },
        Again::Retry(step) => {
            let failed = failed_tasks(store, parent, step.as_deref())?;
            if failed.is_empty() {
                return Ok(None);
            }
            let only: TaskFilter = Box::new(move |step: &str, group: Option<&str>| {
                failed.contains(&(step.to_string(), group.map(str::to_string)))
            });
            Derived {
                force: Force::None,
                only: Some(only),
                trigger: format!("retry of {}", parent.id),
            }
        }
    }))
}

/// The (step, group) of every failed task of `run` (of `step` only, if given), and of every task
/// they blocked.
fn failed_tasks(
    store: &Store,
    run: &RunRecord,
    step: Option<&str>,
) -> Result<BTreeSet<(String, Option<String>)>, StoreError> {
    let tasks = store.tasks_of(run.id)?;
    let failed: Vec<_> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Failed && step.is_none_or(|s| s == t.step))
        .collect();
    let failed_ids: BTreeSet<u64> = failed.iter().map(|t| t.id).collect();
    let mut out: BTreeSet<(String, Option<String>)> = failed
        .iter()
        .map(|t| (t.step.clone(), t.group.clone()))
        .collect();
    for task in &tasks {
        if task.status == TaskStatus::Blocked
            && task.blocked_by.is_some_and(|b| failed_ids.contains(&b))
        {
            out.insert((task.step.clone(), task.group.clone()));
        }
    }
    Ok(out)
}
