//! `engine fmt`: print, check or rewrite `.pipe` files in their canonical layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::files::pipe_files;
use super::output::print_diagnostics;
use super::Exit;

/// Format .pipe files in the canonical layout.
///
/// Prints the formatted text on stdout by default. Comments are kept; formatting never changes
/// what a pipeline means. A file with a syntax error is reported and left alone.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Files or directories (searched recursively for .pipe files).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Change nothing; exit with 1 if any file is not already formatted.
    #[arg(long, conflicts_with = "write")]
    check: bool,
    /// Rewrite the files that are not formatted, in place.
    #[arg(long)]
    write: bool,
}

pub fn run(args: &FmtArgs) -> Result<Exit> {
    let files = pipe_files(&args.paths)?;
    let mut outcome = Exit::Success;
    let mut stdout = std::io::stdout().lock();
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read `{}`", file.display()))?;
        let mut sources = dsl::SourceMap::new();
        let id = sources.add(file.clone(), text.clone());
        let module = match dsl::parser::parse(id, &text) {
            Ok(module) => module,
            Err(diagnostics) => {
                print_diagnostics(&diagnostics, &sources);
                outcome = Exit::Failed;
                continue;
            }
        };
        let formatted = dsl::format::format_module(&module);
        if args.check {
            if formatted != text {
                eprintln!("not formatted: {}", file.display());
                outcome = Exit::Failed;
            }
        } else if args.write {
            if formatted != text {
                write_atomically(file, &formatted)?;
                eprintln!("formatted: {}", file.display());
            }
        } else {
            if files.len() > 1 {
                writeln!(
                    stdout,
                    "{}==> {} <==",
                    if i > 0 { "\n" } else { "" },
                    file.display()
                )?;
            }
            stdout.write_all(formatted.as_bytes())?;
        }
    }
    Ok(outcome)
}

/// Replaces `path` with `text` by writing a sibling file and renaming it over the original, so
/// the file is never seen half written.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.fmt-{}", std::process::id()));
    std::fs::write(&temp, text).with_context(|| format!("cannot write `{}`", temp.display()))?;
    if let Ok(metadata) = std::fs::metadata(path) {
        std::fs::set_permissions(&temp, metadata.permissions()).ok();
    }
    std::fs::rename(&temp, path).with_context(|| format!("cannot replace `{}`", path.display()))?;
    Ok(())
}
