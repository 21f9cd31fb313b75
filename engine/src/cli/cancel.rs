//! `engine cancel`: stop a run from another terminal. The request is written to the store; the
//! engine running it notices within a fraction of a second and stops its tasks.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;

use super::target::StateArgs;
use super::Exit;
use crate::lifecycle::Event;
use crate::store::RunStatus;

/// Cancel a running run: its running tasks are stopped (SIGTERM, then SIGKILL) and nothing new starts.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The run's number.
    run: u64,
    /// Return at once instead of waiting for the run to stop.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: &CancelArgs) -> Result<Exit> {
    let store = args.state.open_existing()?;
    let mut run = store.run(args.run)?;
    if run.status.is_finished() {
        bail!(
            "run {} is not running (it is {})",
            run.id,
            run.status.as_str()
        );
    }
    let owner_alive = run.owner_pid.is_some_and(crate::exec::local::process_alive);
    if !owner_alive {
        // The engine running it is gone: stop what it left running, settle the tasks, and end
        // the run as cancelled.
        let options = crate::run::RunOptions {
            jobs: 1,
            force: crate::run::Force::None,
            state_dir: super::target::absolute(&args.state.dir()),
            out_root: std::path::PathBuf::new(),
            kill_grace: crate::exec::KILL_GRACE,
            only: None,
            stop: Default::default(),
            claims: None,
            hold_failed: false,
            slurm: Default::default(),
        };
        crate::run::recovery::recover_with(
            &store,
            &options,
            crate::run::recovery::Scope::Run(run.id),
            true,
        )?;
        let cancelled = Event::RunCancelled {
            why: "its engine was gone; its tasks were stopped".to_string(),
        };
        store.write(|tx| tx.run_event(args.run, &cancelled, |run| run.cancel_requested = true))?;
        println!(
            "run {} cancelled (its engine process was gone; its tasks were stopped)",
            run.id
        );
        return Ok(Exit::Success);
    }
    let requested = Event::RunCancelRequested {
        by: format!("by pid {}", std::process::id()),
    };
    // Unless it ended meanwhile: that is reported below.
    let requested = store.write(|tx| {
        if tx.run(args.run)?.status.is_finished() {
            return Ok(false);
        }
        tx.run_event(args.run, &requested, |run| run.cancel_requested = true)?;
        Ok(true)
    })?;
    if args.no_wait && requested {
        println!("cancel of run {} requested", run.id);
        return Ok(Exit::Success);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        run = store.run(args.run)?;
        if run.status.is_finished() {
            break;
        }
        let owner_alive = run.owner_pid.is_some_and(crate::exec::local::process_alive);
        if !owner_alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    match run.status {
        RunStatus::Cancelled => {
            println!("run {} cancelled", run.id);
            Ok(Exit::Success)
        }
        status if status.is_finished() => {
            println!("run {} ended before the cancel took effect: {}", run.id, status.as_str());
            Ok(Exit::Success)
        }
        _ => bail!("run {} has not stopped yet (its engine process may be gone: `engine resume {}` reconciles it)", run.id, run.id),
    }
}
