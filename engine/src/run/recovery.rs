//! Crash recovery. A run whose owning engine process is gone (killed, crashed, machine rebooted)
//! is reconciled before anything else touches the store's runs:
//!
//! 1. Orphans are adopted: a killed engine does not kill its tasks (they run in their own process
//!    groups), so recovery finds every live attempt of this state directory through the
//!    `ENGINE_STATE_DIR` variable in its environment (even one whose pid was never committed) and
//!    waits for it to end. Whatever it left in its process group is then killed.
//! 2. Every task of the run that was running is settled from its attempt's status file, which
//!    the attempt's script writes when the command ends:
//!    - exit status 0: the outputs are published (or, if the rename into place already happened,
//!      collected where they are) and the task completes; it never runs again;
//!    - anything else, no status file, or an empty or partial one (the wrapper was killed while
//!      writing it): the attempt is recorded as lost, and the task is left for `engine resume`
//!      to run again.
//!
//!    A task that was not yet running never ran its command (the executor holds a command at a
//!    gate until its attempt is committed), and is left for `engine resume` as well.
//! 3. The run becomes `interrupted`.

use std::path::Path;
use std::time::Duration;

use crate::exec::local::process_alive;
use crate::store::{now_ms, AttemptEnd, RunRecord, RunStatus, Store, TaskRecord, TaskStatus};

use super::publish::{collect_published, publish};
use super::scheduler::{ATTEMPT_VAR, STATE_DIR_VAR};
use super::{RunError, RunOptions};

/// Which interrupted runs to reconcile.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The runs of one pipeline: what a new run of it must settle first.
    Pipeline(&'a str),
    /// One run.
    Run(u64),
}

/// Reconciles the runs in `scope` whose owner is gone. Returns the ids of the runs it interrupted.
pub fn recover(
    store: &Store,
    options: &RunOptions,
    scope: Scope<'_>,
) -> Result<Vec<u64>, RunError> {
    recover_with(store, options, scope, false)
}

/// Like [`recover`], but kills the orphaned attempts instead of waiting for them (for `cancel`).
pub fn recover_with(
    store: &Store,
    options: &RunOptions,
    scope: Scope<'_>,
    kill: bool,
) -> Result<Vec<u64>, RunError> {
    let orphaned: Vec<RunRecord> = store
        .runs()?
        .into_iter()
        .filter(|run| match scope {
            Scope::Pipeline(name) => run.pipeline == name,
            Scope::Run(id) => run.id == id,
        })
        .filter(|run| !run.status.is_finished())
        .filter(|run| {
            !run.owner_pid
                .is_some_and(|pid| pid != std::process::id() && process_alive(pid))
        })
        .collect();
    if orphaned.is_empty() {
        return Ok(Vec::new());
    }
    let mut tasks = std::collections::HashSet::new();
    for run in &orphaned {
        tasks.extend(store.tasks_of(run.id)?.into_iter().map(|t| t.id));
    }
    // Only the attempts of these runs: `ENGINE_ATTEMPT` is `TASK-ATTEMPT`.
    let ours = |tag: &str| {
        tag.split('-')
            .next()
            .and_then(|t| t.parse::<u64>().ok())
            .is_some_and(|t| tasks.contains(&t))
    };
    for (pid, tag) in orphans(&options.state_dir, true) {
        if !ours(&tag) {
            continue;
        }
        if kill {
            crate::exec::local::kill_group(pid, options.kill_grace);
        } else {
            adopt(pid, &tag);
        }
    }
    // What the attempts left behind (background children): only processes that carry this
    // state directory and one of these attempts in their environment, so a reused pid or pgid
    // is never signalled.
    for (pid, tag) in orphans(&options.state_dir, false) {
        if ours(&tag) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let mut interrupted = Vec::new();
    for mut run in orphaned {
        for task in store.tasks_of(run.id)? {
            settle(store, options, &run, task)?;
        }
        run.status = RunStatus::Interrupted;
        run.finished_ms = Some(now_ms());
        run.owner_pid = None;
        store.write(|tx| {
            tx.put_run(&run)?;
            tx.event(
                Some(run.id),
                None,
                "run.interrupted",
                "its engine process is gone",
            )
        })?;
        interrupted.push(run.id);
    }
    Ok(interrupted)
}

/// Settles one task of an interrupted run.
fn settle(
    store: &Store,
    options: &RunOptions,
    run: &RunRecord,
    mut task: TaskRecord,
) -> Result<(), RunError> {
    if task.status.is_final() {
        return Ok(());
    }
    // A command runs only once its attempt is committed with the task `running` (the executor
    // holds it at a gate until then, and an attempt whose engine died never passes it). So a task
    // that is not `running` never ran: it stays to be run by `resume`.
    let last = store.attempts_of(task.id)?.pop();
    let (TaskStatus::Running, Some(mut attempt)) = (task.status, last) else {
        task.status = TaskStatus::Cancelled;
        task.finished_ms = Some(now_ms());
        store.write(|tx| tx.put_task(&task))?;
        return Ok(());
    };
    let status = std::fs::read_to_string(&attempt.status_file).ok();
    let exit_code = status.as_deref().and_then(|s| s.trim().parse::<i32>().ok());
    attempt.finished_ms = Some(now_ms());
    attempt.exit_code = exit_code;
    task.attempts = task.attempts.max(attempt.number);
    if exit_code == Some(0) && !task.key.is_empty() {
        let outputs = outputs_of(&run.file, &run.pipeline, &task.step);
        let trash = options.state_dir.join("trash");
        let products = if attempt.tmp_dir.exists() {
            publish(&attempt.tmp_dir, &task.out_dir, &outputs, &trash, task.id)
        } else {
            // The rename into place happened; only its commit was lost.
            collect_published(&task.out_dir, &outputs, task.id)
        };
        if let Ok(products) = products {
            attempt.end = Some(AttemptEnd::Succeeded);
            task.status = TaskStatus::Succeeded;
            task.products = products.iter().map(|p| p.path.clone()).collect();
            task.finished_ms = Some(now_ms());
            store.write(|tx| {
                tx.put_attempt(&attempt)?;
                for product in &products {
                    tx.put_product(product)?;
                }
                tx.put_task(&task)?;
                tx.complete(&run.pipeline, &task)?;
                tx.event(
                    Some(run.id),
                    Some(task.id),
                    "task.recovered",
                    "finished while the engine was down",
                )
            })?;
            return Ok(());
        }
    }
    attempt.end = Some(AttemptEnd::Lost);
    attempt.error = Some(match exit_code {
        Some(code) => format!("exited with status {code} while the engine was down"),
        None => "the engine stopped while this attempt ran".to_string(),
    });
    task.status = TaskStatus::Failed;
    task.finished_ms = Some(now_ms());
    store.write(|tx| {
        tx.put_attempt(&attempt)?;
        tx.put_task(&task)?;
        tx.event(
            Some(run.id),
            Some(task.id),
            "attempt.lost",
            attempt.error.clone().unwrap_or_default(),
        )
    })?;
    let _ = std::fs::remove_dir_all(&attempt.tmp_dir);
    Ok(())
}

/// The live processes started by an engine for `state_dir` (only process-group leaders, that is
/// attempts' shells, when `leaders` is set), with their attempt tag.
fn orphans(state_dir: &Path, leaders: bool) -> Vec<(u32, String)> {
    let wanted = format!("{STATE_DIR_VAR}={}", state_dir.to_string_lossy());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        if !vars.contains(&wanted.as_bytes()) {
            continue;
        }
        let leads_group = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32)))
            .is_ok_and(|g| g.as_raw() as u32 == pid);
        if (leads_group || !leaders) && pid != std::process::id() && process_alive(pid) {
            let tag = vars
                .iter()
                .find_map(|v| v.strip_prefix(format!("{ATTEMPT_VAR}=").as_bytes()))
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default();
            found.push((pid, tag));
        }
    }
    found
}

/// Waits for a process left running by an engine that died.
fn adopt(pid: u32, tag: &str) {
    let mut announced = false;
    while process_alive(pid) {
        if !announced {
            let task = tag.split('-').next().unwrap_or("?");
            eprintln!(
                "waiting for task {task} (pid {pid}), still running from an engine that was stopped; \
                 `engine cancel` on its run stops it instead"
            );
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The output patterns of a step, read from the pipeline file as it is now (empty when the file
/// or step is gone: every file of the attempt is then a product).
fn outputs_of(file: &Path, pipeline: &str, step: &str) -> Vec<String> {
    dsl::load_file(file)
        .ok()
        .and_then(|loaded| {
            loaded
                .pipeline(pipeline)
                .and_then(|p| p.step(step))
                .map(|s| s.outputs.clone())
        })
        .unwrap_or_default()
}
