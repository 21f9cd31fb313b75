//! `engine resume`, `rerun` and `retry`: new runs made from an earlier one, with its pipeline file
//! and params. Completed tasks are found in the cache, so only what is missing runs.
//!
//! - `resume RUN`: what failed, was cancelled or never started (the rest is cached);
//! - `rerun RUN [--from STEP]`: everything, or STEP and what is downstream of it, ignoring the cache;
//! - `retry RUN [STEP]`: only the tasks that failed (of STEP), and what they block.

use anyhow::{bail, Context, Result};
use clap::Args;

use super::run::{execute, ExecArgs};
use super::target::{PipelineArgs, StateArgs, Target};
use super::Exit;
use crate::run::again::{derive, Derived};
use crate::run::{self, recovery, Force, RunOptions};
use crate::store::RunRecord;

#[derive(Debug, Clone, Copy)]
pub enum Again {
    Resume,
    Rerun,
    Retry,
}

/// Go on with a run: run what failed, was cancelled or never started; completed tasks are skipped.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run's number.
    run: u64,
    #[command(flatten)]
    exec: ExecArgs,
    #[command(flatten)]
    state: StateArgs,
}

/// Run a run again, ignoring the cache for every step, or for one step and what is downstream of it.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The run's number.
    run: u64,
    /// Rerun from this step: it and every step downstream of it ignore the cache.
    #[arg(long, value_name = "STEP")]
    from: Option<String>,
    #[command(flatten)]
    exec: ExecArgs,
    #[command(flatten)]
    state: StateArgs,
}

/// Retry the failed tasks of a run (of one step, if given), and the tasks they blocked.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The run's number.
    run: u64,
    /// Only the failed tasks of this step.
    step: Option<String>,
    #[command(flatten)]
    exec: ExecArgs,
    #[command(flatten)]
    state: StateArgs,
}

pub fn resume(args: &ResumeArgs) -> Result<Exit> {
    again(Again::Resume, args.run, None, &args.exec, &args.state)
}

pub fn rerun(args: &RerunArgs) -> Result<Exit> {
    again(
        Again::Rerun,
        args.run,
        args.from.clone(),
        &args.exec,
        &args.state,
    )
}

pub fn retry(args: &RetryArgs) -> Result<Exit> {
    again(
        Again::Retry,
        args.run,
        args.step.clone(),
        &args.exec,
        &args.state,
    )
}

fn again(
    kind: Again,
    run_id: u64,
    step: Option<String>,
    exec: &ExecArgs,
    state: &StateArgs,
) -> Result<Exit> {
    let store = state.open_existing()?;
    // Reconcile first, so a run whose engine died is seen as interrupted, not running.
    let options = RunOptions {
        jobs: 1,
        force: Force::None,
        state_dir: super::target::absolute(&state.dir()),
        out_root: std::path::PathBuf::new(),
        kill_grace: crate::exec::KILL_GRACE,
        only: None,
        stop: Default::default(),
        claims: None,
        hold_failed: false,
        slurm: exec.slurm(),
    };
    recovery::recover(&store, &options, recovery::Scope::Run(run_id))?;
    let parent = store.run(run_id)?;
    if !parent.status.is_finished() {
        bail!(
            "run {} is still {}; cancel it first, or wait",
            parent.id,
            parent.status.as_str()
        );
    }
    let target = target_of(&parent)?;
    if let Some(step) = &step {
        if target.pipeline.step(step).is_none() {
            bail!("no step `{step}` in pipeline `{}`", target.pipeline.name);
        }
    }
    let again = match kind {
        Again::Resume => run::again::Again::Resume,
        Again::Rerun => run::again::Again::Rerun(step.clone()),
        Again::Retry => run::again::Again::Retry(step.clone()),
    };
    let Some(Derived {
        force,
        only,
        trigger,
    }) = derive(&store, &parent, &target.pipeline, &again)?
    else {
        println!(
            "run {} has no failed tasks{}",
            parent.id,
            step.map(|s| format!(" in step `{s}`")).unwrap_or_default()
        );
        return Ok(Exit::Success);
    };
    execute(
        store,
        &target,
        parent.params.clone(),
        force,
        trigger,
        Some(parent.id),
        only,
        exec,
        state,
    )
}

/// The pipeline a run ran, loaded from its file as the file is now.
fn target_of(run: &RunRecord) -> Result<Target> {
    let args = PipelineArgs {
        target: run.file.to_string_lossy().into_owned(),
        pipeline: Some(run.pipeline.clone()),
    };
    super::target::load_target(&args)
        .with_context(|| format!("loading pipeline `{}` of run {}", run.pipeline, run.id))
}
