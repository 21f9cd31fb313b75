//! Turns the paths given on the command line into the `.pipe` files they name: files as given,
//! directories searched recursively (skipping hidden directories and `target`), in sorted order.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Every `.pipe` file under `paths`. A path that does not exist, or a directory without any
/// `.pipe` file, is an error.
pub fn pipe_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        if metadata.is_dir() {
            let before = files.len();
            walk(path, &mut files)
                .with_context(|| format!("cannot read directory `{}`", path.display()))?;
            if files.len() == before {
                bail!("no .pipe files in `{}`", path.display());
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if !name.starts_with('.') && name != "target" {
                walk(&path, files)?;
            }
        } else if path.extension().is_some_and(|e| e == "pipe") {
            files.push(path);
        }
    }
    Ok(())
}
