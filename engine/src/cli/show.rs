//! `engine show RUN`: a run's tasks, with attempts, durations, memory, exit codes and why each
//! ran or was cached.

use anyhow::Result;
use clap::Args;

use super::target::StateArgs;
use super::Exit;
use crate::inspect::run_detail;
use crate::run::progress::human_ms;
use crate::run::render::printable;

/// Show a run: its tasks and their attempts.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's number (see `engine runs`).
    run: u64,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: &ShowArgs) -> Result<Exit> {
    let store = args.state.open_existing()?;
    let detail = run_detail(&store, args.run)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&detail)?);
        return Ok(Exit::Success);
    }
    let (run, tasks) = (detail.run, detail.tasks);
    println!(
        "run {} of `{}`: {} ({})",
        run.id,
        run.pipeline,
        run.status.as_str(),
        run.trigger
    );
    println!("file: {}", run.file.display());
    if !run.params.is_empty() {
        let params: Vec<String> = run
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_param_text()))
            .collect();
        println!("params: {}", params.join(" "));
    }
    println!();
    println!(
        "{:<20} {:<16} {:<10} {:>3} {:>9} {:>9} {:>5}  WHY",
        "STEP", "GROUP", "STATUS", "TRY", "TIME", "PEAK MEM", "EXIT"
    );
    for shown in &tasks {
        let task = &shown.task;
        let last = shown.attempts_detail.last();
        let time = last
            .and_then(|a| a.wall_ms)
            .map(human_ms)
            .unwrap_or_default();
        let memory = last
            .and_then(|a| a.max_rss_bytes)
            .map(human_bytes)
            .unwrap_or_default();
        let exit = last
            .and_then(|a| {
                a.exit_code
                    .map(|c| c.to_string())
                    .or(a.signal.map(|s| format!("sig{s}")))
            })
            .unwrap_or_default();
        let why = match (&task.reason, task.blocked_by) {
            (_, Some(by)) => format!("blocked by task {by}"),
            (Some(reason), None) => reason.to_string(),
            (None, None) => String::new(),
        };
        println!(
            "{:<20} {:<16} {:<10} {:>3} {:>9} {:>9} {:>5}  {why}",
            task.step,
            printable(task.group.as_deref().unwrap_or("-")),
            task.status.as_str(),
            task.attempts,
            time,
            memory,
            exit
        );
    }
    print_slurm_jobs(&tasks);
    Ok(Exit::Success)
}

/// One line per attempt that ran as a SLURM job: its id, SLURM's state and reason, its nodes.
fn print_slurm_jobs(tasks: &[crate::inspect::TaskDetail]) {
    let mut header = false;
    for shown in tasks {
        for attempt in &shown.attempts_detail {
            let Some(job) = &attempt.slurm else {
                continue;
            };
            if !header {
                println!();
                println!(
                    "{:<20} {:<16} {:>3} {:>10} {:<14} {:<16} NODES",
                    "STEP", "GROUP", "TRY", "SLURM JOB", "STATE", "REASON"
                );
                header = true;
            }
            println!(
                "{:<20} {:<16} {:>3} {:>10} {:<14} {:<16} {}",
                shown.task.step,
                printable(shown.task.group.as_deref().unwrap_or("-")),
                attempt.number,
                job.job_id,
                job.state.as_deref().unwrap_or("SUBMITTED"),
                job.reason.as_deref().unwrap_or("-"),
                job.nodes.as_deref().unwrap_or("-"),
            );
        }
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}
