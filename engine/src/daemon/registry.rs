//! The daemon's pipelines: every `.pipe` file under its directory, loaded and checked. A file that
//! changes is loaded again; if it no longer checks, its last good version stays in force and the
//! error is kept to be logged and shown over the API. The daemon never stops for a bad file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use dsl::model::Pipeline;

/// One `.pipe` file as last seen.
#[derive(Debug, Default)]
struct FileState {
    /// Size and modification time when last loaded: a change to either reloads the file.
    stamp: Option<(u64, SystemTime)>,
    /// Its pipelines as of its last version that checked.
    good: Vec<Arc<Pipeline>>,
    /// Why its current version does not load, if it does not.
    error: Option<String>,
}

/// What a refresh changed.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Pipelines (re)loaded from a good version of their file.
    pub loaded: Vec<String>,
    /// Pipelines gone with their file, or dropped from it.
    pub removed: Vec<String>,
    /// Files whose new version does not load: (file, error).
    pub failed: Vec<(PathBuf, String)>,
}

#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
}

impl Registry {
    pub fn new(dir: PathBuf) -> Registry {
        Registry {
            dir,
            files: BTreeMap::new(),
        }
    }

    /// Finds new, changed and removed files under the directory and loads what changed.
    pub fn refresh(&mut self) -> Changes {
        let mut changes = Changes::default();
        let found = match dsl::load::pipe_files_under(&self.dir) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot read the pipeline directory");
                return changes;
            }
        };
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|path| !found.contains(path))
            .cloned()
            .collect();
        for path in gone {
            if let Some(state) = self.files.remove(&path) {
                changes
                    .removed
                    .extend(state.good.iter().map(|p| p.name.clone()));
            }
        }
        for path in found {
            let stamp = stamp_of(&path);
            let state = self.files.entry(path.clone()).or_default();
            if state.stamp.is_some() && state.stamp == stamp {
                continue;
            }
            state.stamp = stamp;
            match load(&path) {
                Ok(pipelines) => {
                    let names: Vec<String> = pipelines.iter().map(|p| p.name.clone()).collect();
                    changes.removed.extend(
                        state
                            .good
                            .iter()
                            .filter(|old| !names.contains(&old.name))
                            .map(|old| old.name.clone()),
                    );
                    changes.loaded.extend(names);
                    state.good = pipelines;
                    state.error = None;
                }
                Err(error) => {
                    changes.failed.push((path.clone(), error.clone()));
                    state.error = Some(error);
                }
            }
        }
        changes
    }

    /// The pipeline named `name` in force, with its file. When two files define the same name,
    /// the first file (in path order) wins.
    pub fn get(&self, name: &str) -> Option<(PathBuf, Arc<Pipeline>)> {
        self.pipelines().find(|(_, p)| p.name == name)
    }

    /// Every pipeline in force, with its file, in path order.
    pub fn pipelines(&self) -> impl Iterator<Item = (PathBuf, Arc<Pipeline>)> + '_ {
        self.files.iter().flat_map(|(path, state)| {
            state
                .good
                .iter()
                .map(move |pipeline| (path.clone(), pipeline.clone()))
        })
    }

    /// The error of the file a pipeline comes from, if its current version does not load.
    pub fn error_of(&self, file: &Path) -> Option<String> {
        self.files.get(file).and_then(|state| state.error.clone())
    }

    /// Files whose current version does not load, with the error: (file, error, has a good
    /// version in force).
    pub fn errors(&self) -> Vec<(PathBuf, String, bool)> {
        self.files
            .iter()
            .filter_map(|(path, state)| {
                let error = state.error.clone()?;
                Some((path.clone(), error, !state.good.is_empty()))
            })
            .collect()
    }
}

fn stamp_of(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Loads a file: its pipelines when it checks, else the rendered errors.
fn load(path: &Path) -> Result<Vec<Arc<Pipeline>>, String> {
    let loaded = dsl::load_file(path).map_err(|error| format!("{}: {error}", path.display()))?;
    if !loaded.is_valid() {
        let errors: Vec<_> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity() == dsl::Severity::Error)
            .cloned()
            .collect();
        return Err(dsl::render::render_all(&errors, &loaded.sources, false)
            .trim_end()
            .to_string());
    }
    Ok(loaded.pipelines.into_iter().map(Arc::new).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "pipeline p {\n  step s {\n    run \"true\"\n  }\n}\n";

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        // A new mtime even within the file system's timestamp granularity.
        let later = SystemTime::now() + std::time::Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(later)
            .unwrap();
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.pipe");
        write(&file, GOOD);
        let mut registry = Registry::new(dir.path().to_path_buf());
        assert_eq!(registry.refresh().loaded, vec!["p".to_string()]);
        assert_eq!(registry.refresh(), Changes::default(), "nothing changed");

        write(&file, "pipeline p {\n  step s {\n    run \"true\"\n");
        let changes = registry.refresh();
        assert_eq!(changes.failed.len(), 1);
        assert!(changes.failed[0].1.contains("p.pipe:"), "{changes:?}");
        assert!(registry.get("p").is_some(), "the last good version stays");
        assert!(registry.error_of(&file).is_some());

        write(&file, &GOOD.replace("true", "false"));
        assert_eq!(registry.refresh().loaded, vec!["p".to_string()]);
        assert!(registry.error_of(&file).is_none());
        let (_, pipeline) = registry.get("p").unwrap();
        assert!(format!("{:?}", pipeline.steps[0].run).contains("false"));
    }

    #[test]
    fn a_removed_file_removes_its_pipelines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.pipe");
        write(&file, GOOD);
        let mut registry = Registry::new(dir.path().to_path_buf());
        registry.refresh();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(registry.refresh().removed, vec!["p".to_string()]);
        assert!(registry.get("p").is_none());
    }
}
