//! Turns the paths given on the command line into the `.pipe` files they name: files as given,
//! directories searched recursively (skipping hidden directories and `target`), in sorted order.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// Every `.pipe` file under `paths`. A path that does not exist, or a directory without any
/// `.pipe` file, is an error.
pub fn pipe_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        if metadata.is_dir() {
            let found = dsl::load::pipe_files_under(path)
                .with_context(|| format!("cannot read directory `{}`", path.display()))?;
            if found.is_empty() {
                bail!("no .pipe files in `{}`", path.display());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}
