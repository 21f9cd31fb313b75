//! Products the store knows nothing of: a store that is new (lost, truncated, moved) beside an
//! output directory that holds a pipeline's products. Running then would silently redo every
//! task, so a run refuses and says so, unless it is told the store is meant to be fresh.

use std::path::{Path, PathBuf};

use crate::store::{Result, Store};

/// A pipeline's products with no run of it in the store.
#[derive(Debug)]
pub struct Unrecorded {
    pub store: PathBuf,
    /// Whether the store has no run at all (or only runs of other pipelines).
    pub store_empty: bool,
    /// `OUT/PIPELINE`.
    pub dir: PathBuf,
    /// How many task directories (`STEP/GROUP`) there hold files.
    pub tasks: usize,
}

impl std::fmt::Display for Unrecorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = self.store.display();
        let what = if self.store_empty {
            format!("the store `{store}` is empty")
        } else {
            let pipeline = self.dir.file_name().unwrap_or_default().to_string_lossy();
            format!("the store `{store}` has no run of `{pipeline}`")
        };
        write!(
            f,
            "{what} but `{}` holds products of {} task{}: a lost or replaced store? Restore \
             it from a backup with `engine store restore FILE`, or run with --fresh-store to \
             run every task again",
            self.dir.display(),
            self.tasks,
            if self.tasks == 1 { "" } else { "s" }
        )
    }
}

/// The products of `pipeline` under `out_root` when the store has no run of it.
pub fn unrecorded(store: &Store, pipeline: &str, out_root: &Path) -> Result<Option<Unrecorded>> {
    if !store.runs_of(pipeline, None, 1)?.is_empty() {
        return Ok(None);
    }
    let store_empty = store.newest_runs(0, 1)?.0 == 0;
    Ok(found(store.path(), store_empty, pipeline, out_root))
}

/// The products of `pipeline` under `out_root` when there is no store file at `store` (checked
/// before an open would make one).
pub fn unrecorded_without_store(
    store: &Path,
    pipeline: &str,
    out_root: &Path,
) -> Option<Unrecorded> {
    found(store, true, pipeline, out_root)
}

fn found(store: &Path, store_empty: bool, pipeline: &str, out_root: &Path) -> Option<Unrecorded> {
    let dir = out_root.join(pipeline);
    let tasks = task_dirs(&dir);
    (tasks > 0).then(|| Unrecorded {
        store: store.to_path_buf(),
        store_empty,
        dir,
        tasks,
    })
}

/// The `STEP/GROUP` directories under `dir` that hold anything.
fn task_dirs(dir: &Path) -> usize {
    let entries = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    entries(dir)
        .iter()
        .filter(|step| step.is_dir())
        .flat_map(|step| entries(step))
        .filter(|group| group.is_dir() && !entries(group).is_empty())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_without_a_run_are_counted_by_task() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let out = dir.path().join("out");
        assert!(unrecorded(&store, "p", &out).unwrap().is_none());
        for (task, file) in [("s/a", "x"), ("s/b", "y"), ("t/_all", "z")] {
            std::fs::create_dir_all(out.join("p").join(task)).unwrap();
            std::fs::write(out.join("p").join(task).join(file), "").unwrap();
        }
        std::fs::create_dir_all(out.join("p/t/empty")).unwrap();
        let found = unrecorded(&store, "p", &out).unwrap().unwrap();
        assert_eq!(found.tasks, 3);
        assert!(found.store_empty);
        assert!(found.to_string().contains("holds products of 3 tasks"));
        assert!(unrecorded(&store, "q", &out).unwrap().is_none());
    }
}
