//! `engine plan`: a dry run. Scans the sources and says, per task, whether it is cached or would
//! run, and why. A task downstream of one that would run can only be decided once that one has
//! run, so it is reported as waiting on its upstream.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::run::{force_of, parse_params};
use super::target::{load_target, PipelineArgs, StateArgs};
use super::Outcome;
use crate::plan::decide::{decide, Outcome as Decision};
use crate::plan::{base_dir, inputs_of, plan, Produced};
use crate::store::{ProductRecord, Reason};

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

#[derive(Debug, Serialize)]
struct PlannedLine {
    step: String,
    group: Option<String>,
    /// `cached`, `run`, or `after-upstream` (decided once upstream tasks have run).
    decision: &'static str,
    reason: Option<Reason>,
    key: Option<String>,
}

/// What the dry run knows of a task: its products when cached.
struct Known {
    task: u64,
    out_dir: PathBuf,
    products: Vec<ProductRecord>,
}

pub fn run(args: &PlanArgs) -> Result<Outcome> {
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
    let mut known: Vec<Option<Known>> = Vec::with_capacity(planned.tasks.len());
    let mut lines = Vec::new();
    for task in &planned.tasks {
        let step = &target.pipeline.steps[task.step];
        let upstream_known = task.upstream.iter().all(|&u| known[u].is_some());
        if !upstream_known {
            known.push(None);
            lines.push(PlannedLine {
                step: step.name.clone(),
                group: task.group.clone(),
                decision: "after-upstream",
                reason: Some(Reason::UpstreamChanged),
                key: None,
            });
            continue;
        }
        let inputs = inputs_of(task, |u| {
            let k = known[u].as_ref().expect("upstream known");
            Produced {
                task: k.task,
                step: &target.pipeline.steps[planned.tasks[u].step].name,
                group: planned.tasks[u].group.as_deref(),
                out_dir: &k.out_dir,
                products: &k.products,
            }
        });
        let decided = decide(
            &store,
            &target.pipeline.name,
            step,
            task.group.as_deref(),
            &params,
            &inputs,
            force.applies_to(&step.name),
            false,
        )?;
        match decided.outcome {
            Decision::Cached {
                task: cached,
                products,
            } => {
                lines.push(PlannedLine {
                    step: step.name.clone(),
                    group: task.group.clone(),
                    decision: "cached",
                    reason: Some(Reason::Cached { task: cached.id }),
                    key: Some(decided.key),
                });
                known.push(Some(Known {
                    task: cached.id,
                    out_dir: cached.out_dir,
                    products,
                }));
            }
            Decision::Run(reason) => {
                lines.push(PlannedLine {
                    step: step.name.clone(),
                    group: task.group.clone(),
                    decision: "run",
                    reason: Some(reason),
                    key: Some(decided.key),
                });
                known.push(None);
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(Outcome::Success);
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
    Ok(Outcome::Success)
}
