//! `engine check`: parse, check and lower `.pipe` files, reporting every error and warning.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use dsl::Severity;

use super::files::pipe_files;
use super::output::{print_diagnostics, JsonDiagnostic};
use super::Exit;

/// Check .pipe files for errors and warnings.
///
/// Exits with 0 when every file is valid (warnings allowed unless --deny-warnings), 1 when any
/// has an error, 2 when a path cannot be read.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Files or directories (searched recursively for .pipe files).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print the diagnostics as a JSON array on stdout instead of rendering them.
    #[arg(long)]
    json: bool,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
}

pub fn run(args: &CheckArgs) -> Result<Exit> {
    let files = pipe_files(&args.paths)?;
    let mut errors = 0;
    let mut warnings = 0;
    let mut pipelines = 0;
    let mut json = Vec::new();
    for file in &files {
        let loaded =
            dsl::load_file(file).with_context(|| format!("cannot read `{}`", file.display()))?;
        for diagnostic in &loaded.diagnostics {
            match diagnostic.severity() {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
        }
        pipelines += loaded.pipelines.len();
        if args.json {
            json.extend(
                loaded
                    .diagnostics
                    .iter()
                    .map(|d| JsonDiagnostic::new(d, &loaded.sources)),
            );
        } else {
            print_diagnostics(&loaded.diagnostics, &loaded.sources);
        }
    }
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        let files_word = if files.len() == 1 { "file" } else { "files" };
        let summary = format!(
            "{} {files_word}, {pipelines} pipeline{}: {errors} error{}, {warnings} warning{}",
            files.len(),
            plural(pipelines),
            plural(errors),
            plural(warnings)
        );
        eprintln!("{} {summary}", if failed { "failed:" } else { "ok:" });
    }
    Ok(if failed { Exit::Failed } else { Exit::Success })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
