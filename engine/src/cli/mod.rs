//! The command line: argument parsing (clap), the log subscriber, dispatch to one module per
//! subcommand, and the exit codes: 0 success, 1 a check (or a run) failed, 2 usage or input error.

mod again;
mod cancel;
mod check;
mod daemon;
mod files;
mod fmt;
mod gc;
mod graph;
mod lineage;
mod logging;
mod logs;
mod output;
mod plan;
mod run;
mod runs;
mod show;
mod store;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exec::supervisor;
use logging::Logging;

/// Exit codes shared by every subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything checked, formatted or ran as asked.
    Success,
    /// A check failed (or a file needs formatting under `--check`).
    Failed,
    /// The command line or its input was wrong.
    UsageError,
}

impl From<Exit> for ExitCode {
    fn from(outcome: Exit) -> ExitCode {
        match outcome {
            Exit::Success => ExitCode::SUCCESS,
            Exit::Failed => ExitCode::from(1),
            Exit::UsageError => ExitCode::from(2),
        }
    }
}

/// A durable workflow engine for pipelines written in `.pipe` files.
///
/// Pipelines declare sources of input files, steps with shell commands, and how steps depend on
/// each other. `engine run` runs one, reusing every task whose inputs, command and params are
/// unchanged; every state change is kept in `.engine/state.redb`, so a crash loses nothing.
#[derive(Debug, Parser)]
#[command(name = "engine", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::CheckArgs),
    Fmt(fmt::FmtArgs),
    Graph(graph::GraphArgs),
    Plan(plan::PlanArgs),
    Run(run::RunArgs),
    Runs(runs::RunsArgs),
    Show(show::ShowArgs),
    Logs(logs::LogsArgs),
    Cancel(cancel::CancelArgs),
    Resume(again::ResumeArgs),
    Rerun(again::RerunArgs),
    Retry(again::RetryArgs),
    Lineage(lineage::LineageArgs),
    Gc(gc::GcArgs),
    Store(store::StoreArgs),
    Daemon(daemon::DaemonArgs),
}

/// Parses the command line, installs the log subscriber and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(match &cli.command {
        Command::Daemon(args) => args.logging(),
        _ => Logging::Interactive,
    });
    let outcome = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Runs(args) => runs::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Logs(args) => logs::run(&args),
        Command::Cancel(args) => cancel::run(&args),
        Command::Resume(args) => again::resume(&args),
        Command::Rerun(args) => again::rerun(&args),
        Command::Retry(args) => again::retry(&args),
        Command::Lineage(args) => lineage::run(&args),
        Command::Gc(args) => gc::run(&args),
        Command::Store(args) => store::run(&args),
        Command::Daemon(args) => daemon::run(&args),
    };
    match outcome {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            Exit::UsageError.into()
        }
    }
}

/// The attempts' supervisor (the binary started as `engine --attempt-supervisor`): installs its
/// log subscriber, then serves its engine until it is done.
pub fn supervisor_main() -> ExitCode {
    logging::init(Logging::Supervisor);
    supervisor::serve_stdin()
}
