//! `engine plan`: a dry run. Scans the sources and says, per task, whether it is cached or would
//! run, and why. A task downstream of one that would run can only be decided once that one has
//! run, so it is reported as waiting on its upstream.

use anyhow::Result;
use clap::Args;

use super::run::{force_of, parse_params};
use super::target::{load_target, PipelineArgs, StateArgs};
use super::Exit;
use crate::plan::preview::preview;
use crate::plan::{base_dir, plan};

/// Show what a run would do, without running anything: per task, cached or run, and why.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    target: PipelineArgs,
    /// Set a param, as for `engine run`.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Plan as if `--force` were given.
    #[arg(long, conflicts_with = "from")]
    force: bool,
    /// Plan as if `--from STEP` were given.
    #[arg(long, value_name = "STEP")]
    from: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: &PlanArgs) -> Result<Exit> {
    let target = load_target(&args.target)?;
    let params = parse_params(&target, &args.params)?;
    let force = force_of(&target, args.force, args.from.as_deref())?;
    let store = args.state.open()?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let planned = plan(
        &target.pipeline,
        &params,
        &base_dir(&target.file),
        &store,
        threads,
    )?;
    let lines = preview(&target.pipeline, &params, &planned, &store, &force, false)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(Exit::Success);
    }
    let count = |d: &str| lines.iter().filter(|l| l.decision == d).count();
    println!(
        "pipeline `{}`: {} tasks: {} cached, {} to run, {} after their upstream",
        target.pipeline.name,
        lines.len(),
        count("cached"),
        count("run"),
        count("after-upstream")
    );
    println!(
        "sources: {} items, {} hashed, {} unchanged since last scan",
        planned.scan.items, planned.scan.hashed, planned.scan.reused
    );
    for waiting in &planned.waiting {
        println!("  {}", crate::run::waiting_line(waiting));
    }
    for (source, rel) in &planned.unmatched {
        println!("note: {rel} (source `{source}`) matches no group and is left out");
    }
    for line in &lines {
        let label = match &line.group {
            Some(group) => format!("{} [{group}]", line.step),
            None => line.step.clone(),
        };
        let why = match (&line.decision, &line.reason) {
            (&"after-upstream", _) => {
                "waits for its upstream; runs if their products change".to_string()
            }
            (_, Some(reason)) => reason.to_string(),
            _ => String::new(),
        };
        println!("  {:<15} {label:<32} {why}", line.decision);
    }
    Ok(Exit::Success)
}
