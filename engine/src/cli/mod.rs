//! The command line: argument parsing (clap), dispatch to one module per subcommand, and the
//! exit codes: 0 success, 1 a check (or later a run) failed, 2 usage or input error.

mod check;
mod files;
mod fmt;
mod graph;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes shared by every subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked, formatted or ran as asked.
    Success,
    /// A check failed (or a file needs formatting under `--check`).
    Failed,
    /// The command line or its input was wrong.
    UsageError,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        match outcome {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::UsageError => ExitCode::from(2),
        }
    }
}

/// A durable workflow engine for pipelines written in `.pipe` files.
///
/// Pipelines declare sources of input files, steps with shell commands, and how steps depend on
/// each other. `engine check` validates them, `engine fmt` lays them out canonically and
/// `engine graph` draws their DAG.
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
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Graph(args) => graph::run(&args),
    };
    match outcome {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            Outcome::UsageError.into()
        }
    }
}
