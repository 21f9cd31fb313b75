//! `GET /tasks/failed`: the tasks that failed across every pipeline and have not been run again
//! since, newest first, each with its run, its last attempt and the last lines of its logs.
//!
//! A failed task stays listed until a newer task of the same pipeline, step and group runs,
//! waits to run, succeeds or is cached (a retry or a later run took it over). Newer tasks that
//! were only cancelled or blocked do not count.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::logs::tail;
use super::request::QueryParams;
use super::response::{json, Response};
use super::runs::MAX_LIMIT;
use super::state::ApiState;
use crate::store::{AttemptRecord, RunRecord, RunStatus, Store, TaskRecord, TaskStatus};

pub const DEFAULT_LIMIT: usize = 50;
pub const DEFAULT_LINES: usize = 10;
pub const MAX_LINES: usize = 200;

#[derive(Debug, Serialize)]
struct FailedTask {
    pipeline: String,
    run_status: RunStatus,
    task: TaskRecord,
    /// The last attempt: its exit code, signal, how it ended, its error.
    attempt: Option<AttemptRecord>,
    stdout_tail: Vec<String>,
    stderr_tail: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Listing {
    tasks: Vec<FailedTask>,
    /// How many failed tasks match, on every page.
    total: usize,
    limit: usize,
}

pub async fn list(
    State(state): State<Arc<ApiState>>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let pipeline = query.get("pipeline").map(str::to_string);
    let limit = query.number("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "query parameter `limit`: {limit} is not between 1 and {MAX_LIMIT}"
        )));
    }
    let lines = query.number("lines")?.unwrap_or(DEFAULT_LINES);
    if lines > MAX_LINES {
        return Err(ApiError::BadRequest(format!(
            "query parameter `lines`: {lines} is more than {MAX_LINES}"
        )));
    }
    let listing = state
        .blocking(move |state| listing(&state.store, pipeline.as_deref(), limit, lines))
        .await?;
    Ok(json(StatusCode::OK, &listing))
}

fn listing(
    store: &Store,
    pipeline: Option<&str>,
    limit: usize,
    lines: usize,
) -> Result<Listing, ApiError> {
    let runs: HashMap<u64, RunRecord> = store.runs()?.into_iter().map(|r| (r.id, r)).collect();
    let tasks = store.tasks()?;
    let failed = unresolved(&runs, tasks, pipeline);
    let total = failed.len();
    let mut out = Vec::new();
    for task in failed.into_iter().take(limit) {
        let Some(run) = runs.get(&task.run) else {
            continue;
        };
        let attempt = store.attempts_of(task.id)?.pop();
        let (stdout_tail, stderr_tail) = match &attempt {
            Some(a) => (tail(&a.stdout, lines), tail(&a.stderr, lines)),
            None => (Vec::new(), Vec::new()),
        };
        out.push(FailedTask {
            pipeline: run.pipeline.clone(),
            run_status: run.status,
            task,
            attempt,
            stdout_tail,
            stderr_tail,
        });
    }
    Ok(Listing {
        tasks: out,
        total,
        limit,
    })
}

/// The failed tasks (of `pipeline`, if given) that no newer task of the same pipeline, step and
/// group has taken over, newest first. `tasks` are oldest first.
fn unresolved(
    runs: &HashMap<u64, RunRecord>,
    tasks: Vec<TaskRecord>,
    pipeline: Option<&str>,
) -> Vec<TaskRecord> {
    let mut seen: HashSet<(String, String, Option<String>)> = HashSet::new();
    let mut out = Vec::new();
    for task in tasks.into_iter().rev() {
        if matches!(task.status, TaskStatus::Cancelled | TaskStatus::Blocked) {
            continue;
        }
        let Some(run) = runs.get(&task.run) else {
            continue;
        };
        if pipeline.is_some_and(|p| p != run.pipeline) {
            continue;
        }
        let key = (run.pipeline.clone(), task.step.clone(), task.group.clone());
        if seen.insert(key) && task.status == TaskStatus::Failed {
            out.push(task);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn run(id: u64, pipeline: &str) -> RunRecord {
        RunRecord {
            id,
            pipeline: pipeline.into(),
            file: "/w/p.pipe".into(),
            trigger: "manual".into(),
            params: BTreeMap::new(),
            definition_hash: String::new(),
            status: RunStatus::Failed,
            created_ms: id,
            finished_ms: Some(id),
            owner_pid: None,
            cancel_requested: false,
            parent: None,
        }
    }

    fn task(id: u64, run: u64, step: &str, group: &str, status: TaskStatus) -> TaskRecord {
        TaskRecord {
            id,
            run,
            step: step.into(),
            group: Some(group.into()),
            key: String::new(),
            identity: String::new(),
            params: BTreeMap::new(),
            status,
            reason: None,
            inputs: vec![],
            out_dir: "/w/out".into(),
            products: vec![],
            attempts: 1,
            blocked_by: None,
            command: String::new(),
            finished_ms: None,
        }
    }

    #[test]
    fn a_failure_stays_until_a_newer_task_takes_it_over() {
        let runs: HashMap<u64, RunRecord> = [run(1, "a"), run(2, "a"), run(3, "b")]
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let tasks = vec![
            task(1, 1, "align", "s1", TaskStatus::Failed),
            task(2, 1, "align", "s2", TaskStatus::Failed),
            task(3, 1, "align", "s3", TaskStatus::Failed),
            task(4, 1, "call", "s1", TaskStatus::Blocked),
            // The retry: s1 succeeds, s2 fails again, s3 is cancelled before it runs.
            task(5, 2, "align", "s1", TaskStatus::Succeeded),
            task(6, 2, "align", "s2", TaskStatus::Failed),
            task(7, 2, "align", "s3", TaskStatus::Cancelled),
            task(8, 3, "align", "s1", TaskStatus::Failed),
        ];
        let ids = |found: Vec<TaskRecord>| found.iter().map(|t| t.id).collect::<Vec<_>>();
        assert_eq!(ids(unresolved(&runs, tasks.clone(), None)), [8, 6, 3]);
        assert_eq!(ids(unresolved(&runs, tasks.clone(), Some("a"))), [6, 3]);
        assert!(unresolved(&runs, tasks, Some("c")).is_empty());
    }
}
