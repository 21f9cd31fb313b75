//! `engine run`: trigger a pipeline by hand, and the execution every run-making subcommand
//! (`resume`, `rerun`, `retry`) shares.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use dsl::model::param::{resolve_params, split_assignment};
use dsl::model::ParamValue;

use super::target::{absolute, load_target, PipelineArgs, StateArgs, Target};
use super::Exit;
use crate::exec::slurm::SlurmSettings;
use crate::run::progress::Progress;
use crate::run::unrecorded::{unrecorded, unrecorded_without_store};
use crate::run::{run_pipeline, Force, RunError, RunOptions, RunRequest, TaskFilter};
use crate::store::{RunStatus, Store, StoreError};

/// Run a pipeline now: scan its sources, reuse what is cached, run the rest.
///
/// Exits with 0 when every task succeeded or was cached, 1 when any failed (or the run was
/// cancelled), 2 for a bad file, pipeline or param.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    target: PipelineArgs,
    /// Set a param: `--param threads=8`. Repeatable; checked against the param's type and constraint.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    #[command(flatten)]
    exec: ExecArgs,
    /// Ignore the cache: run every task.
    #[arg(long, conflicts_with = "from")]
    force: bool,
    /// Ignore the cache for STEP and every step downstream of it.
    #[arg(long, value_name = "STEP")]
    from: Option<String>,
    /// Run even though the store has no run of this pipeline while its output directory holds
    /// products (a store lost or replaced on purpose): every task runs again.
    #[arg(long)]
    fresh_store: bool,
    #[command(flatten)]
    state: StateArgs,
}

/// How tasks execute; shared by every subcommand that runs tasks.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// How many tasks may run at once (default: the number of cores).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Where products go (default: `out` beside the state directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only the summary.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// How SLURM steps are submitted and watched; for `run`, `resume`, `rerun`, `retry` and `daemon`.
#[derive(Debug, Clone, Args)]
pub struct SlurmArgs {
    /// At most N jobs of SLURM steps in the queue (pending or running) at once, per run.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub slurm_queue_size: u64,
    /// At most N SLURM submissions per second (a fraction such as 0.5 is allowed).
    #[arg(long, value_name = "N", default_value_t = 10.0, value_parser = positive_rate)]
    pub slurm_submit_rate: f64,
    /// How often to ask SLURM about the jobs in the queue: one `squeue` for all of them.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = poll_interval)]
    pub slurm_poll: Duration,
}

impl ExecArgs {
    /// The SLURM settings these options give.
    pub fn slurm(&self) -> SlurmSettings {
        self.slurm.settings()
    }
}

impl SlurmArgs {
    pub fn settings(&self) -> SlurmSettings {
        SlurmSettings {
            queue_size: usize::try_from(self.slurm_queue_size).unwrap_or(usize::MAX),
            submit_rate: self.slurm_submit_rate,
            poll: self.slurm_poll,
        }
    }
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "expected a number of submissions per second above 0, got `{text}`"
        )),
    }
}

fn poll_interval(text: &str) -> Result<Duration, String> {
    let ms = dsl::model::quantity::parse_duration(text)?;
    if ms < 100 {
        return Err(format!("`{text}` is too short: poll at most every 100ms"));
    }
    Ok(Duration::from_millis(ms))
}

pub fn run(args: &RunArgs) -> Result<Exit> {
    let target = load_target(&args.target)?;
    let params = parse_params(&target, &args.params)?;
    let force = force_of(&target, args.force, args.from.as_deref())?;
    let out_root = out_root(&args.exec, &args.state);
    let store_path = absolute(&args.state.dir()).join("state.redb");
    if !args.fresh_store && !store_path.exists() {
        // Refused before the open, which would make an empty store.
        if let Some(found) = unrecorded_without_store(&store_path, &target.pipeline.name, &out_root)
        {
            bail!(found.to_string());
        }
    }
    let store = args.state.open()?;
    if !args.fresh_store {
        if let Some(found) = unrecorded(&store, &target.pipeline.name, &out_root)? {
            bail!(found.to_string());
        }
    }
    execute(
        store,
        &target,
        params,
        force,
        "manual".to_string(),
        None,
        None,
        &args.exec,
        &args.state,
    )
}

/// What `--force` and `--from STEP` ask for; an unknown step is an error naming the steps.
pub fn force_of(target: &Target, force: bool, from: Option<&str>) -> Result<Force> {
    match (from, force) {
        (Some(step), _) => {
            if target.pipeline.step(step).is_none() {
                let names: Vec<&str> = target
                    .pipeline
                    .steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                bail!(
                    "no step `{step}` in pipeline `{}` (steps: {})",
                    target.pipeline.name,
                    names.join(", ")
                );
            }
            Ok(Force::from_step(&target.pipeline, step))
        }
        (None, true) => Ok(Force::All),
        (None, false) => Ok(Force::None),
    }
}

/// Resolves `--param` assignments against the pipeline's params; every bad one is reported.
pub fn parse_params(
    target: &Target,
    assignments: &[String],
) -> Result<BTreeMap<String, ParamValue>> {
    let mut pairs = Vec::new();
    let mut errors = Vec::new();
    for assignment in assignments {
        match split_assignment(assignment) {
            Ok(pair) => pairs.push(pair),
            Err(error) => errors.push(error),
        }
    }
    match resolve_params(&target.pipeline.params, &pairs) {
        Ok(values) if errors.is_empty() => Ok(values),
        Ok(_) => bail!(join_errors(&errors)),
        Err(more) => {
            errors.extend(more);
            bail!(join_errors(&errors))
        }
    }
}

fn join_errors(errors: &[dsl::model::param::ParamError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\nerror: ")
}

/// Where products go: `--out`, or `out` beside the state directory.
pub fn out_root(exec: &ExecArgs, state: &StateArgs) -> PathBuf {
    exec.out.as_deref().map(absolute).unwrap_or_else(|| {
        absolute(&state.dir())
            .parent()
            .map(|p| p.join("out"))
            .unwrap_or_else(|| PathBuf::from("out"))
    })
}

/// Runs `target` to the end and maps the result to an exit code.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    store: Arc<Store>,
    target: &Target,
    params: BTreeMap<String, ParamValue>,
    force: Force,
    trigger: String,
    parent: Option<u64>,
    only: Option<TaskFilter>,
    exec: &ExecArgs,
    state: &StateArgs,
) -> Result<Exit> {
    let state_dir = absolute(&state.dir());
    let out_root = out_root(exec, state);
    let jobs = exec
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1);
    let options = RunOptions {
        jobs,
        force,
        state_dir,
        out_root,
        kill_grace: crate::exec::KILL_GRACE,
        only,
        stop: Default::default(),
        claims: None,
        hold_failed: false,
        slurm: exec.slurm(),
    };
    let mut progress = Progress::new(exec.quiet);
    // One thread: the scheduler is one loop, and its blocking work (publishing, hashing a product)
    // is short. A task's end then wakes the thread that acts on it, not a worker that wakes it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // SIGINT (Ctrl-C) and SIGTERM cancel the run: its tasks are stopped, it ends `cancelled`.
    let (mut interrupt, mut terminate) = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    let stop = options.stop.cancel.clone();
    runtime.spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        stop.cancel();
    });
    let result = runtime.block_on(run_pipeline(
        store,
        &target.pipeline,
        RunRequest {
            file: target.file.clone(),
            params,
            trigger,
            parent,
        },
        &options,
        &mut progress,
    ));
    match result {
        Ok(run) if run.status == RunStatus::Succeeded => Ok(Exit::Success),
        Ok(_) => Ok(Exit::Failed),
        // Nothing ran: the pipeline is already running, or its input cannot be read (a missing
        // source root). Both are input errors.
        Err(error @ (RunError::AlreadyRunning { .. } | RunError::Plan(_))) => Err(error.into()),
        // A store that cannot be used is the input's fault too, whatever ran before it was found.
        Err(RunError::Store(
            error @ (StoreError::Damaged { .. } | StoreError::Unusable { .. }),
        )) => Err(error.into()),
        Err(error) => {
            eprintln!("error: {error}");
            Ok(Exit::Failed)
        }
    }
}
