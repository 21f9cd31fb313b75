//! Runs: creating one for a pipeline (refusing to overlap a live run of the same pipeline),
//! planning it, and handing it to the scheduler. Crash recovery of runs whose engine died is in
//! [`recovery`].

pub mod again;
mod attempts;
mod capacity;
pub mod claims;
mod journal;
pub mod launch;
mod paths;
pub mod pause;
pub mod progress;
pub mod publish;
mod ready;
pub mod recovery;
pub mod render;
pub mod scheduler;
mod slots;
pub mod unrecorded;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dsl::model::{ParamValue, Pipeline};
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::exec;
use crate::lifecycle::{self, Event, IllegalTransition};
use crate::plan::{self, PlanError};
use crate::store::{now_ms, RunRecord, Store, StoreError};
use progress::Progress;
use scheduler::Scheduler;

pub use crate::plan::Force;

pub struct RunOptions {
    pub jobs: usize,
    pub force: Force,
    pub state_dir: PathBuf,
    /// Products go to `OUT/PIPELINE/STEP/GROUP`.
    pub out_root: PathBuf,
    /// Between SIGTERM and SIGKILL when a task is cancelled or times out.
    pub kill_grace: Duration,
    /// When set, only the tasks it accepts (by step and group) run, with what they need.
    pub only: Option<TaskFilter>,
    /// How SLURM steps are submitted and watched.
    pub slurm: crate::exec::slurm::SlurmSettings,
    /// How whoever started the run stops it.
    pub stop: Stop,
    /// Set when runs of this process may overlap with others of the same pipeline: they take
    /// turns at each output directory. Without it a live run of the pipeline refuses the next.
    pub claims: Option<Arc<claims::Claims>>,
    /// Set for the runs the daemon's triggers fire: a task that failed after its retries is not
    /// run again with the same key (inputs, command, params) until someone retries it.
    pub hold_failed: bool,
}

/// How a run is stopped from outside (a `cancel_requested` in the store is the other way).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Start no new task and let the running ones finish; the run then ends `cancelled`.
    /// The daemon drains its runs when it shuts down.
    pub drain: CancellationToken,
    /// Kill the running tasks and end the run `cancelled`: SIGINT or SIGTERM to `engine run`,
    /// or the end of the daemon's grace period.
    pub cancel: CancellationToken,
    /// While paused, no new task starts; running ones go on. The daemon shares one among its runs.
    pub pause: pause::Pause,
}

/// Selects tasks by step name and group key.
pub type TaskFilter = Box<dyn Fn(&str, Option<&str>) -> bool + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Lifecycle(#[from] IllegalTransition),
    #[error("the engine panicked (a bug: please report it): {0}")]
    Panicked(String),
    #[error("pipeline `{pipeline}` is already being run by run {run} (engine pid {pid}); wait for it, or cancel it with `engine cancel {run}`")]
    AlreadyRunning {
        pipeline: String,
        run: u64,
        pid: u32,
    },
}

/// What to run: a pipeline's file, its params, and what fired it.
pub struct RunRequest {
    /// The `.pipe` file the pipeline comes from (its directory is where commands run).
    pub file: PathBuf,
    pub params: BTreeMap<String, ParamValue>,
    /// `manual`, `resume of N`, ...
    pub trigger: String,
    /// The run this one resumes, reruns or retries.
    pub parent: Option<u64>,
}

/// Creates, plans and executes a run of `pipeline`.
pub async fn run_pipeline(
    store: Arc<Store>,
    pipeline: &Pipeline,
    request: RunRequest,
    options: &RunOptions,
    progress: &mut Progress,
) -> Result<RunRecord, RunError> {
    let run = create_run(&store, pipeline, request, options)?;
    execute_run(store, pipeline, run, options, progress).await
}

/// Creates a run of `pipeline` (status `queued`), after settling its runs whose engine died.
/// Refuses while a live run of the same pipeline exists, unless that run is one of this
/// process's and the two share [`RunOptions::claims`].
pub fn create_run(
    store: &Store,
    pipeline: &Pipeline,
    request: RunRequest,
    options: &RunOptions,
) -> Result<RunRecord, RunError> {
    let RunRequest {
        file,
        params,
        trigger,
        parent,
    } = request;
    recovery::recover(store, options, recovery::Scope::Pipeline(&pipeline.name))?;
    let may_overlap = options.claims.is_some();
    claim_run(store, pipeline, &file, params, trigger, parent, may_overlap)
}

/// Plans and executes a run made by [`create_run`].
pub async fn execute_run(
    store: Arc<Store>,
    pipeline: &Pipeline,
    run: RunRecord,
    options: &RunOptions,
    progress: &mut Progress,
) -> Result<RunRecord, RunError> {
    progress.run_started(&run);
    let params = run.params.clone();
    let base = plan::base_dir(&run.file);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let plan = match plan::plan(pipeline, &params, &base, &store, threads) {
        Ok(plan) => plan,
        Err(error) => {
            let event = Event::RunFailed {
                why: error.to_string(),
            };
            store.write(|tx| {
                tx.run_event(run.id, &event, |run| {
                    run.finished_ms = Some(now_ms());
                    run.owner_pid = None;
                })
            })?;
            return Err(error.into());
        }
    };
    let plan = match &options.only {
        Some(keep) => plan.restrict(pipeline, keep),
        None => plan,
    };
    for waiting in &plan.waiting {
        progress.note(&waiting_line(waiting));
    }
    for (source, rel) in &plan.unmatched {
        progress.note(&format!(
            "{rel} (source `{source}`) matches no group; it is left out"
        ));
    }
    let mut scheduler = Scheduler {
        store: store.clone(),
        pipeline,
        params: &params,
        base,
        options,
        progress,
        journal: Default::default(),
        local: None,
    };
    let id = run.id;
    let executed = AssertUnwindSafe(scheduler.execute(run, plan))
        .catch_unwind()
        .await;
    let error = match executed {
        Ok(Ok(run)) => return Ok(run),
        Ok(Err(error)) => error,
        Err(panic) => RunError::Panicked(panic_message(panic.as_ref())),
    };
    // The run must not stay `running` for ever: its attempts are stopped, its tasks settled,
    // and the outputs it claimed given up.
    tracing::error!(run = id, %error, "the run failed");
    if let Some(claims) = &options.claims {
        claims.release_run(id);
    }
    let why = format!("the engine failed: {error}");
    if let Err(settling) = recovery::end_failed(&store, options, id, why) {
        tracing::error!(run = id, error = %settling, "cannot settle the run after its failure");
    }
    Err(error)
}

/// What a panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => "a panic without a message".to_string(),
    }
}

/// `wait    STEP [GROUP]: ...`, for a task left out until its inputs settle.
pub fn waiting_line(waiting: &plan::Waiting) -> String {
    let label = match &waiting.group {
        Some(group) => format!("{} [{group}]", waiting.step),
        None => waiting.step.clone(),
    };
    match waiting.remaining_ms {
        Some(ms) => format!(
            "wait    {label}: inputs changed less than its cooldown ago ({} to go)",
            progress::human_ms(ms)
        ),
        None => format!("wait    {label}: an upstream task waits for its inputs to settle"),
    }
}

/// Creates the run, unless a live run of the same pipeline exists: checked and created in one
/// transaction, so two `engine run`s can never both proceed. With `may_overlap`, live runs of
/// this process do not count.
fn claim_run(
    store: &Store,
    pipeline: &Pipeline,
    file: &std::path::Path,
    params: BTreeMap<String, ParamValue>,
    trigger: String,
    parent: Option<u64>,
    may_overlap: bool,
) -> Result<RunRecord, RunError> {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut conflict = None;
    let run = store.write(|tx| {
        for other in tx.live_runs()? {
            if other.pipeline == pipeline.name {
                if let Some(pid) = other.owner_pid.filter(|pid| {
                    exec::local::process_alive(*pid) && !(may_overlap && *pid == std::process::id())
                }) {
                    conflict = Some((other.id, pid));
                    return Ok(None);
                }
            }
        }
        let run = tx.create_run(RunRecord {
            id: 0,
            pipeline: pipeline.name.clone(),
            file: file.clone(),
            trigger: trigger.clone(),
            params: params.clone(),
            definition_hash: pipeline.definition_hash(),
            status: lifecycle::run::INITIAL,
            created_ms: now_ms(),
            finished_ms: None,
            owner_pid: Some(std::process::id()),
            cancel_requested: false,
            parent,
        })?;
        Ok(Some(run))
    })?;
    match (run, conflict) {
        (Some(run), _) => Ok(run),
        (None, Some((run, pid))) => Err(RunError::AlreadyRunning {
            pipeline: pipeline.name.clone(),
            run,
            pid,
        }),
        (None, None) => unreachable!("no run is created only on a conflict"),
    }
}
