//! What the run-related subcommands share: where the store is (`--state`, `ENGINE_STATE`, or
//! `.engine` in the current directory), where products go, and finding a pipeline by file or name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use dsl::model::Pipeline;

use super::files::pipe_files;
use super::output::print_diagnostics;
use crate::store::Store;

/// Where the engine keeps its state.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// The state directory (the store, logs, temporary outputs). Defaults to $ENGINE_STATE, or
    /// `.engine` in the current directory.
    #[arg(long, value_name = "DIR", global = true)]
    pub state: Option<PathBuf>,
}

impl StateArgs {
    pub fn dir(&self) -> PathBuf {
        self.state
            .clone()
            .or_else(|| std::env::var_os("ENGINE_STATE").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".engine"))
    }

    /// Opens the store (creating it if needed).
    pub fn open(&self) -> Result<Arc<Store>> {
        let dir = absolute(&self.dir());
        Ok(Arc::new(Store::open(&dir)?))
    }

    /// Opens the store only if it exists: read-only commands don't create one.
    pub fn open_existing(&self) -> Result<Arc<Store>> {
        let dir = absolute(&self.dir());
        if !dir.join("state.redb").exists() {
            bail!("no engine state in `{}` (nothing has run here yet; use --state DIR to point elsewhere)", dir.display());
        }
        Ok(Arc::new(Store::open(&dir)?))
    }
}

pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Which pipeline to act on: a `.pipe` file (and `--pipeline` if it has several), or a pipeline
/// name looked up in the `.pipe` files under the current directory.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    /// A .pipe file, or the name of a pipeline in a .pipe file under the current directory.
    #[arg(value_name = "FILE|PIPELINE")]
    pub target: String,
    /// The pipeline to use when the file holds several.
    #[arg(long, short, value_name = "NAME")]
    pub pipeline: Option<String>,
}

/// A pipeline, checked, with the file it came from.
pub struct Target {
    pub file: PathBuf,
    pub pipeline: Pipeline,
}

/// Loads the pipeline `args` names. A file that does not check is reported (exit 2 via the error).
pub fn load_target(args: &PipelineArgs) -> Result<Target> {
    let path = Path::new(&args.target);
    let (file, name) = if path.extension().is_some_and(|e| e == "pipe") || path.is_file() {
        (path.to_path_buf(), args.pipeline.clone())
    } else {
        let name = args.target.clone();
        let files = pipe_files(&[PathBuf::from(".")])
            .context("looking for .pipe files in the current directory")?;
        let found = files.into_iter().find(|file| {
            dsl::load_file(file).is_ok_and(|loaded| loaded.pipelines.iter().any(|p| p.name == name))
        });
        match found {
            Some(file) => (file, Some(name)),
            None => bail!("no .pipe file under the current directory defines pipeline `{name}`"),
        }
    };
    let loaded =
        dsl::load_file(&file).with_context(|| format!("cannot read `{}`", file.display()))?;
    if !loaded.is_valid() {
        print_diagnostics(&loaded.diagnostics, &loaded.sources);
        bail!(
            "`{}` has errors; fix them first (see `engine check`)",
            file.display()
        );
    }
    let names: Vec<&str> = loaded.pipelines.iter().map(|p| p.name.as_str()).collect();
    let pipeline = match (&name, loaded.pipelines.as_slice()) {
        (Some(name), _) => loaded.pipeline(name).cloned().with_context(|| {
            format!(
                "no pipeline `{name}` in `{}` (it has: {})",
                file.display(),
                names.join(", ")
            )
        })?,
        (None, [only]) => only.clone(),
        (None, []) => bail!("`{}` has no pipeline", file.display()),
        (None, _) => bail!(
            "`{}` has {} pipelines ({}); choose one with --pipeline NAME",
            file.display(),
            names.len(),
            names.join(", ")
        ),
    };
    Ok(Target {
        file: absolute(&file),
        pipeline,
    })
}
