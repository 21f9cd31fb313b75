//! `engine runs`: the history of runs, newest first.

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use strum::VariantNames;

use super::target::StateArgs;
use super::Exit;
use crate::run::progress::human_ms;
use crate::store::{now_ms, RunRecord, RunStatus};

/// List runs, newest first.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only runs of this pipeline.
    #[arg(long, short)]
    pipeline: Option<String>,
    /// Only runs with this status.
    #[arg(long, short, value_parser = status_parser())]
    status: Option<RunStatus>,
    /// At most this many runs.
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: usize,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    state: StateArgs,
}

/// The run statuses by their names, as the lifecycle spells them.
fn status_parser() -> impl TypedValueParser<Value = RunStatus> {
    PossibleValuesParser::new(RunStatus::VARIANTS).try_map(|name| name.parse::<RunStatus>())
}

pub fn run(args: &RunsArgs) -> Result<Exit> {
    let store = args.state.open_existing()?;
    let runs: Vec<RunRecord> = store
        .runs()?
        .into_iter()
        .filter(|r| args.pipeline.as_ref().is_none_or(|p| &r.pipeline == p))
        .filter(|r| args.status.is_none_or(|s| r.status == s))
        .take(args.limit)
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(Exit::Success);
    }
    println!(
        "{:>5}  {:<20} {:<12} {:<16} {:>9}",
        "RUN", "PIPELINE", "STATUS", "TRIGGER", "DURATION"
    );
    for run in &runs {
        let duration = run
            .finished_ms
            .unwrap_or_else(now_ms)
            .saturating_sub(run.created_ms);
        println!(
            "{:>5}  {:<20} {:<12} {:<16} {:>9}",
            run.id,
            run.pipeline,
            run.status.as_str(),
            run.trigger,
            human_ms(duration)
        );
    }
    Ok(Exit::Success)
}
