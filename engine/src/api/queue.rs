//! `GET /queue` (the tasks running and waiting in every live run, and whether new task starts
//! are paused) and `POST /queue/pause` / `POST /queue/resume` (the daemon-wide switch its
//! runs' schedulers honour: paused, no new task starts; running tasks go on).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::response::{json, Response};
use super::state::ApiState;
use crate::store::{Store, TaskStatus};

/// A task of a live run that runs or waits.
#[derive(Debug, Serialize)]
struct QueuedTask {
    pipeline: String,
    run: u64,
    task: u64,
    step: String,
    group: Option<String>,
    status: TaskStatus,
    attempts: u32,
    /// When its latest attempt started (running tasks).
    started_ms: Option<u64>,
    pid: Option<u32>,
    /// The SLURM job of its latest attempt, if it has one.
    slurm_job: Option<String>,
}

#[derive(Debug, Serialize)]
struct Queue {
    /// Whether new task starts are paused.
    paused: bool,
    running: Vec<QueuedTask>,
    /// Tasks that wait for their upstream tasks, a slot or a retry's backoff.
    waiting: Vec<QueuedTask>,
}

pub async fn get(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let queue = state
        .blocking(|state| {
            let (running, waiting) = live_tasks(&state.store)?;
            Ok(Queue {
                paused: state.control.paused(),
                running,
                waiting,
            })
        })
        .await?;
    Ok(json(StatusCode::OK, &queue))
}

pub async fn pause(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    set(&state, true).await
}

pub async fn resume(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    set(&state, false).await
}

/// 200 with `{"paused": P, "changed": C}`.
async fn set(state: &Arc<ApiState>, paused: bool) -> Result<Response, ApiError> {
    let changed = state
        .blocking(move |state| Ok(state.control.set_paused(paused)))
        .await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "paused": paused, "changed": changed }),
    ))
}

/// The running and the waiting tasks of the runs that have not finished, oldest run first.
fn live_tasks(store: &Store) -> Result<(Vec<QueuedTask>, Vec<QueuedTask>), ApiError> {
    let mut running = Vec::new();
    let mut waiting = Vec::new();
    // Oldest run first, as the live index keeps them.
    for run in store.live_runs()? {
        for task in store.tasks_of(run.id)? {
            if task.status.is_final() {
                continue;
            }
            let attempt = if task.status == TaskStatus::Running {
                store.attempts_of(task.id)?.pop()
            } else {
                None
            };
            let queued = QueuedTask {
                pipeline: run.pipeline.clone(),
                run: run.id,
                task: task.id,
                step: task.step,
                group: task.group,
                status: task.status,
                attempts: task.attempts,
                started_ms: attempt.as_ref().map(|a| a.started_ms),
                pid: attempt.as_ref().and_then(|a| a.pid),
                slurm_job: attempt.and_then(|a| a.slurm).map(|job| job.job_id),
            };
            match task.status {
                TaskStatus::Running => running.push(queued),
                _ => waiting.push(queued),
            }
        }
    }
    Ok((running, waiting))
}
