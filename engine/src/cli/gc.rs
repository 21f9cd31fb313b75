//! `engine gc`: reclaim space. Keeps the newest runs of every pipeline whole; in older runs,
//! drops the records and logs of tasks that are superseded (neither the latest result of their
//! step and group nor a cache entry). Forgets cache entries whose products are gone, and items
//! that no longer exist; removes leftover temporary outputs; compacts the store. Products that
//! are the latest of their step and group are never touched.

use std::collections::{BTreeMap, HashSet};

use anyhow::{bail, Result};
use clap::Args;

use super::target::{absolute, StateArgs};
use super::Exit;
use crate::exec::files as attempt_files;
use crate::exec::local::process_alive;
use crate::lifecycle::Event;
use crate::plan::decide::products_intact;
use crate::store::Store;

/// Reclaim space: drop superseded task records and logs, stale cache entries and temporary files;
/// compact the store. The latest products are never touched.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep this many of the newest runs of each pipeline untouched.
    #[arg(long, default_value_t = 10, value_name = "N")]
    keep_runs: usize,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: &GcArgs) -> Result<Exit> {
    let state_dir = absolute(&args.state.dir());
    let mut store = Store::open(&state_dir)?;
    let runs = store.runs()?;
    if let Some(live) = runs
        .iter()
        .find(|r| !r.status.is_finished() && r.owner_pid.is_some_and(process_alive))
    {
        bail!(
            "run {} of `{}` is running; run gc when no run is going",
            live.id,
            live.pipeline
        );
    }

    // Cache entries whose products are gone.
    let mut stale_keys = Vec::new();
    for (key, task_id) in store.cache_entries()? {
        let intact = store
            .task(task_id)
            .ok()
            .and_then(|task| store.products_of(&task).ok().flatten())
            .is_some_and(|products| products_intact(&products).is_ok());
        if !intact {
            stale_keys.push(key);
        }
    }
    let cached: HashSet<u64> = store
        .cache_entries()?
        .into_iter()
        .filter(|(k, _)| !stale_keys.contains(k))
        .map(|(_, t)| t)
        .collect();
    let latest = store.latest_tasks()?;

    // Superseded tasks of all but the newest runs of each pipeline.
    let mut per_pipeline: BTreeMap<&str, usize> = BTreeMap::new();
    let mut superseded = Vec::new();
    let mut log_bytes = 0u64;
    let mut log_files = Vec::new();
    for run in &runs {
        let seen = per_pipeline.entry(run.pipeline.as_str()).or_default();
        *seen += 1;
        if *seen <= args.keep_runs {
            continue;
        }
        for task in store.tasks_of(run.id)? {
            if latest.contains(&task.id) || cached.contains(&task.id) {
                continue;
            }
            for attempt in store.attempts_of(task.id)? {
                let script = attempt_files::script_path(&attempt.stdout);
                // The run's ended log is the run's, removed when it ends or is recovered.
                let status = attempt_files::own_status_file(&attempt.ended_log)
                    .map(std::path::Path::to_path_buf);
                let files = [attempt.stdout, attempt.stderr, script].into_iter();
                for path in files.chain(status) {
                    if let Ok(meta) = std::fs::metadata(&path) {
                        log_bytes += meta.len();
                        log_files.push(path);
                    }
                }
            }
            superseded.push(task);
        }
    }
    let gone_items: Vec<String> = store
        .item_paths()?
        .into_iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    let leftovers: Vec<std::path::PathBuf> = ["tmp", "trash"]
        .iter()
        .filter_map(|d| std::fs::read_dir(state_dir.join(d)).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .collect();

    println!(
        "{}{} superseded task records, {} attempt files ({:.1} MiB of logs, scripts and statuses), {} stale cache entries, {} vanished items, {} temporary leftovers",
        if args.dry_run { "would remove " } else { "removing " },
        superseded.len(),
        log_files.len(),
        log_bytes as f64 / (1024.0 * 1024.0),
        stale_keys.len(),
        gone_items.len(),
        leftovers.len()
    );
    if args.dry_run {
        return Ok(Exit::Success);
    }
    store.write(|tx| {
        for task in &superseded {
            tx.delete_task(task)?;
        }
        for key in &stale_keys {
            tx.uncache(key)?;
        }
        for path in &gone_items {
            tx.remove_item(path)?;
        }
        let collected = Event::Gc {
            tasks: superseded.len(),
            cache_entries: stale_keys.len(),
        };
        tx.note(None, &collected)
    })?;
    for path in log_files {
        let _ = std::fs::remove_file(path);
    }
    for path in leftovers {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    let before = std::fs::metadata(store.path())
        .map(|m| m.len())
        .unwrap_or(0);
    match store.compact() {
        Ok(_) => {
            let after = std::fs::metadata(store.path())
                .map(|m| m.len())
                .unwrap_or(0);
            println!(
                "store compacted: {:.1} MiB -> {:.1} MiB",
                before as f64 / 1048576.0,
                after as f64 / 1048576.0
            );
        }
        Err(error) => println!("store not compacted: {error}"),
    }
    Ok(Exit::Success)
}
