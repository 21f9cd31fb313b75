//! Crash recovery. A run whose owning engine process is gone (killed, crashed, machine rebooted)
//! is reconciled before anything else touches the store's runs:
//!
//! 1. Orphans are adopted: a killed engine does not kill its tasks (they run in their own process
//!    groups), so recovery finds every live attempt of this state directory through the
//!    `ENGINE_STATE_DIR` variable in its environment (even one whose pid was never committed) and
//!    waits for it to end. Whatever it left in its process group is then killed.
//!    SLURM jobs are re-attached by the job id their attempt recorded, or, for a job submitted
//!    just before the engine died and never committed, by the comment that names the state
//!    directory and the attempt: recovery waits until every one of them has left the queue
//!    (or, for `cancel`, `scancel`s them first). None is submitted again.
//! 2. Every task of the run that was running is settled from the run's ended log, where the
//!    supervisor appends how each command ended (a SLURM job's batch script records it beside
//!    the attempt's files). The scheduler commits its transitions in batches, so a task may have
//!    started, or even ended, without the store knowing: the run's decided log (the task as
//!    decided for its attempt, written before the command was released) and the ended log say
//!    so, and it is settled the same way.
//!    - exit status 0: the outputs are published (or, if the rename into place already happened,
//!      collected where they are) and the task `task.recovered`; it never runs again;
//!    - anything else, or no end recorded (a line cut short counts as none): `attempt.lost`, the
//!      task fails, and `engine resume` runs it again.
//!
//!    A task with neither never ran its command (the executor holds a command at a gate until
//!    the engine releases it, and one whose engine died never passes it): `task.not_started`,
//!    and `engine resume` runs it.
//! 3. The run becomes `interrupted`. Every status change goes through the lifecycle tables.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exec::local::process_alive;
use crate::exec::slurm::{self, JobView};
use crate::lifecycle::Event;
use crate::store::{
    now_ms, AttemptEnd, AttemptRecord, RunRecord, SlurmJobRecord, Store, TaskRecord, TaskStatus,
};

use super::publish::{collect_published, publish};
use super::{RunError, RunOptions};
use crate::exec::files::{attempt_files, decided_log, decided_tasks, ended_log, recorded_end};
use crate::exec::supervisor::SUPERVISOR_FLAG;
use crate::exec::{AttemptTag, ATTEMPT_VAR, ENGINE_PID_VAR, STATE_DIR_VAR};

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

/// Whether a run owned by process `pid` has a live engine. A run of this very process is one
/// from before a restart that reused the pid (a daemon that is PID 1 in its container) unless
/// this process runs overlapping runs ([`RunOptions::claims`]): then it is one of them.
fn owner_is_live(pid: u32, options: &RunOptions) -> bool {
    if pid == std::process::id() {
        options.claims.is_some()
    } else {
        process_alive(pid)
    }
}

/// Like [`recover`], but kills the orphaned attempts instead of waiting for them (for `cancel`).
pub fn recover_with(
    store: &Store,
    options: &RunOptions,
    scope: Scope<'_>,
    kill: bool,
) -> Result<Vec<u64>, RunError> {
    let orphaned: Vec<RunRecord> = store
        .live_runs()?
        .into_iter()
        .filter(|run| match scope {
            Scope::Pipeline(name) => run.pipeline == name,
            Scope::Run(id) => run.id == id,
        })
        .filter(|run| !run.status.is_finished())
        .filter(|run| !run.owner_pid.is_some_and(|pid| owner_is_live(pid, options)))
        .collect();
    settle_runs(store, options, orphaned, kill, &Event::RunInterrupted)
}

/// Ends run `run` of this very process as failed (`why`), after its scheduler failed or
/// panicked: its attempts are killed, its tasks settled as recovery settles them.
pub fn end_failed(
    store: &Store,
    options: &RunOptions,
    run: u64,
    why: String,
) -> Result<(), RunError> {
    let run = store.run(run)?;
    let runs = if run.status.is_finished() {
        Vec::new()
    } else {
        vec![run]
    };
    settle_runs(store, options, runs, true, &Event::RunFailed { why }).map(drop)
}

/// Settles `runs`, whose engine is gone (or whose scheduler failed): adopts or (with `kill`)
/// kills what they left running, settles their tasks, and ends each with `ending`. Returns
/// their ids.
fn settle_runs(
    store: &Store,
    options: &RunOptions,
    orphaned: Vec<RunRecord>,
    kill: bool,
    ending: &Event,
) -> Result<Vec<u64>, RunError> {
    if orphaned.is_empty() {
        return Ok(Vec::new());
    }
    let mut tasks = std::collections::HashSet::new();
    for run in &orphaned {
        tasks.extend(store.tasks_of(run.id)?.into_iter().map(|t| t.id));
    }
    // Only the attempts of these runs: `ENGINE_ATTEMPT` is `TASK-ATTEMPT`.
    let ours = |tag: &str| {
        tag.parse::<AttemptTag>()
            .is_ok_and(|tag| tasks.contains(&tag.task))
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
    // The supervisors of the engines that died record the ends of their commands, the last of
    // which may have ended just now: the ended logs are complete once they have exited. Those
    // of engines that live, or of other runs' dead engines, are none of this recovery's business.
    let owners: std::collections::HashSet<u32> =
        orphaned.iter().filter_map(|run| run.owner_pid).collect();
    for pid in foreign_supervisors(&options.state_dir, &owners) {
        adopt(pid, "");
    }
    let slurm_jobs = reattach_slurm(store, options, &orphaned, kill)?;
    let mut interrupted = Vec::new();
    for run in orphaned {
        let pipeline = pipeline_of(&run);
        let decided = decided_tasks(&options.state_dir, run.id);
        for task in store.tasks_of(run.id)? {
            settle(
                store,
                options,
                &run,
                pipeline.as_ref(),
                task,
                &slurm_jobs,
                &decided,
            )?;
        }
        store.write(|tx| {
            tx.run_event(run.id, ending, |run| {
                run.finished_ms = Some(now_ms());
                run.owner_pid = None;
            })
        })?;
        let _ = std::fs::remove_file(decided_log(&options.state_dir, run.id));
        let _ = std::fs::remove_file(ended_log(&options.state_dir, run.id));
        interrupted.push(run.id);
    }
    Ok(interrupted)
}

/// Settles one task of an interrupted run.
fn settle(
    store: &Store,
    options: &RunOptions,
    run: &RunRecord,
    pipeline: Option<&dsl::model::Pipeline>,
    mut task: TaskRecord,
    slurm_jobs: &SlurmJobs,
    decided: &HashMap<String, TaskRecord>,
) -> Result<(), RunError> {
    if task.status.is_final() {
        return Ok(());
    }
    let Some(mut attempt) = attempt_of(store, options, &mut task, slurm_jobs, decided)? else {
        return Ok(());
    };
    let tag = AttemptTag::new(task.id, attempt.number).to_string();
    // A SLURM job's batch script records its command's status for the engine; the
    // supervisor records a local command's in the run's ended log.
    let (slurm_view, exit_code) = match slurm_jobs.settle(&tag, &mut attempt) {
        Some((view, exit_code)) => (Some(view), exit_code),
        None => (None, recorded_end(&attempt.ended_log, &tag).flatten()),
    };
    attempt.finished_ms = Some(now_ms());
    attempt.exit_code = exit_code;
    task.attempts = task.attempts.max(attempt.number);
    if exit_code == Some(0)
        && !task.key.is_empty()
        && recovered(store, options, run, pipeline, &mut task, &mut attempt)?
    {
        return Ok(());
    }
    attempt.end = Some(AttemptEnd::Lost);
    attempt.error = Some(match (exit_code, slurm_view) {
        (Some(code), _) => format!("exited with status {code} while the engine was down"),
        (None, Some(view)) => {
            let job = attempt.slurm.as_ref().map_or("?", |j| j.job_id.as_str());
            let ending = slurm::recovered_outcome(&view, None).ending;
            format!("SLURM job {job} {ending} while the engine was down")
        }
        (None, None) => "the engine stopped while this attempt ran".to_string(),
    });
    let lost = Event::AttemptLost {
        number: attempt.number,
        error: attempt.error.clone().unwrap_or_default(),
    };
    task.apply(&lost)?;
    task.finished_ms = Some(now_ms());
    store.write(|tx| {
        tx.put_attempt(&attempt)?;
        tx.task_event(&task, &lost)
    })?;
    let _ = std::fs::remove_dir_all(&attempt.tmp_dir);
    Ok(())
}

/// The attempt of unfinished `task` to settle: its last recorded one while it runs, or one
/// whose start was not committed but that ran. An attempt may start before its start is
/// committed: a local command once the task decided for it is in the run's decided log (the
/// scheduler commits in its own time), a SLURM job once it is submitted. One that ran (it
/// wrote its status file; its orphan, if any, was waited for) or whose job was found by its
/// comment is settled from that decided task, which `task` takes. Without either, it never ran
/// its command: the task is recorded `not_started` (for `resume` to run) and `None` returned.
fn attempt_of(
    store: &Store,
    options: &RunOptions,
    task: &mut TaskRecord,
    slurm_jobs: &SlurmJobs,
    decided: &HashMap<String, TaskRecord>,
) -> Result<Option<AttemptRecord>, RunError> {
    let last = store.attempts_of(task.id)?.pop();
    if let (TaskStatus::Running, Some(last)) = (task.status, last) {
        return Ok(Some(last));
    }
    let attempt = unrecorded_attempt(&options.state_dir, task);
    let tag = AttemptTag::new(task.id, attempt.number).to_string();
    let decided = decided.get(&tag).filter(|d| d.id == task.id).cloned();
    let ran = slurm_jobs.knows(&tag) || recorded_end(&attempt.ended_log, &tag).is_some();
    match decided {
        Some(decided) if ran => {
            task.key = decided.key;
            task.identity = decided.identity;
            task.params = decided.params;
            task.inputs = decided.inputs;
            task.command = decided.command;
            task.reason = decided.reason;
            Ok(Some(attempt))
        }
        _ => {
            task.apply(&Event::TaskNotStarted)?;
            task.finished_ms = Some(now_ms());
            store.write(|tx| tx.task_event(task, &Event::TaskNotStarted))?;
            Ok(None)
        }
    }
}

/// Publishes what the succeeded `attempt` of `task` left (its temporary directory, or the
/// output directory when only the rename's commit was lost) and records the task recovered;
/// whether its outputs could be collected.
fn recovered(
    store: &Store,
    options: &RunOptions,
    run: &RunRecord,
    pipeline: Option<&dsl::model::Pipeline>,
    task: &mut TaskRecord,
    attempt: &mut AttemptRecord,
) -> Result<bool, RunError> {
    // Every file of the attempt is a product when the file or the step is gone.
    let outputs = pipeline
        .and_then(|p| p.step(&task.step))
        .map(|s| s.outputs.clone())
        .unwrap_or_default();
    let trash = options.state_dir.join("trash");
    let products = if attempt.tmp_dir.exists() {
        publish(&attempt.tmp_dir, &task.out_dir, &outputs, &trash, task.id)
    } else {
        collect_published(&task.out_dir, &outputs, task.id)
    };
    let Ok(products) = products else {
        return Ok(false);
    };
    attempt.end = Some(AttemptEnd::Succeeded);
    task.apply(&Event::TaskRecovered)?;
    task.products = products.iter().map(|p| p.path.clone()).collect();
    task.finished_ms = Some(now_ms());
    store.write(|tx| {
        tx.put_attempt(attempt)?;
        for product in &products {
            tx.put_product(product)?;
        }
        tx.task_event(task, &Event::TaskRecovered)?;
        tx.complete(&run.pipeline, task)
    })?;
    Ok(true)
}

/// The attempt a pending task would have had, had its start been committed.
fn unrecorded_attempt(state_dir: &Path, task: &TaskRecord) -> AttemptRecord {
    let number = task.attempts + 1;
    AttemptRecord::new(task.id, number, attempt_files(state_dir, task, number))
}

/// The live processes started by an engine for `state_dir` (only process-group leaders, that is
/// attempts' commands or the shells that run them, when `leaders` is set), with their attempt
/// tag (empty for a supervisor).
fn orphans(state_dir: &Path, leaders: bool) -> Vec<(u32, String)> {
    let slurm_job = format!("{}=slurm", slurm::EXECUTOR_VAR);
    let tag_prefix = format!("{ATTEMPT_VAR}=");
    let mut found = Vec::new();
    for (pid, vars) in with_state_dir(state_dir) {
        // A SLURM job's command running on this machine: SLURM's to stop, not ours.
        if vars.iter().any(|v| v == slurm_job.as_bytes()) {
            continue;
        }
        let leads_group = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32)))
            .is_ok_and(|g| g.as_raw() as u32 == pid);
        if (leads_group || !leaders) && process_alive(pid) {
            let tag = vars
                .iter()
                .find_map(|v| v.strip_prefix(tag_prefix.as_bytes()))
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default();
            found.push((pid, tag));
        }
    }
    found
}

/// The processes, other than this one, whose environment names `state_dir` as
/// `ENGINE_STATE_DIR`, with their environment's variables.
fn with_state_dir(state_dir: &Path) -> Vec<(u32, Vec<Vec<u8>>)> {
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
        let vars: Vec<Vec<u8>> = environ.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
        if pid != std::process::id() && vars.iter().any(|v| v == wanted.as_bytes()) {
            found.push((pid, vars));
        }
    }
    found
}

/// The live supervisors for `state_dir`, other than this engine's, of the engines in `owners`
/// (or of an engine that did not say which it served, as older ones did not).
fn foreign_supervisors(state_dir: &Path, owners: &std::collections::HashSet<u32>) -> Vec<u32> {
    let own = crate::exec::supervisor::own_pids();
    let owner_prefix = format!("{ENGINE_PID_VAR}=");
    with_state_dir(state_dir)
        .into_iter()
        .filter(|(pid, vars)| {
            let served = vars
                .iter()
                .find_map(|v| v.strip_prefix(owner_prefix.as_bytes()))
                .and_then(|pid| std::str::from_utf8(pid).ok()?.parse::<u32>().ok());
            !own.contains(pid)
                && served.is_none_or(|engine| owners.contains(&engine))
                && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                    cmdline.split(|b| *b == 0).nth(1) == Some(SUPERVISOR_FLAG.as_bytes())
                })
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// Waits for a process left running by an engine that died (`tag` empty: its supervisor).
fn adopt(pid: u32, tag: &str) {
    let mut announced = false;
    while process_alive(pid) {
        if !announced && !tag.is_empty() {
            let task = tag
                .parse::<AttemptTag>()
                .map_or("?".to_string(), |t| t.task.to_string());
            tracing::warn!(
                "waiting for task {task} (pid {pid}), still running from an engine that was stopped; \
                 `engine cancel` on its run stops it instead"
            );
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The run's pipeline as its file is now (loaded once per run, for the steps' output patterns);
/// `None` when the file is gone or the pipeline no longer in it.
fn pipeline_of(run: &RunRecord) -> Option<dsl::model::Pipeline> {
    dsl::load_file(&run.file)
        .ok()?
        .pipeline(&run.pipeline)
        .cloned()
}

/// The SLURM jobs of the interrupted runs, once they have all left the queue.
#[derive(Default)]
struct SlurmJobs {
    /// By attempt tag (`TASK-ATTEMPT`): the job id and how the job ended.
    ended: BTreeMap<String, (String, JobView)>,
}

impl SlurmJobs {
    /// Whether a job of attempt `tag` was in the queue.
    fn knows(&self, tag: &str) -> bool {
        self.ended.contains_key(tag)
    }

    /// Records in `attempt` the SLURM job of attempt `tag` (a job found by its comment was
    /// never committed), with its end and its usage; returns how it ended, and its command's
    /// exit status.
    fn settle(&self, tag: &str, attempt: &mut AttemptRecord) -> Option<(JobView, Option<i32>)> {
        let (id, view) = self.ended.get(tag)?;
        let record = attempt.slurm.get_or_insert_with(|| SlurmJobRecord {
            job_id: id.clone(),
            // Not committed: the script is beside logs recovery does not know.
            script: PathBuf::new(),
            state: None,
            reason: None,
            nodes: None,
        });
        let end = view.end.clone().unwrap_or_default();
        record.state = end.state.or(view.state.clone()).map(|s| s.to_string());
        record.reason = end.reason.or(view.reason.clone());
        record.nodes = end.nodes.or(view.nodes.clone());
        let usage_file = attempt.tmp_dir.with_extension("usage");
        let usage = std::fs::read_to_string(&usage_file).ok();
        let _ = std::fs::remove_file(&usage_file);
        let outcome = slurm::recovered_outcome(view, usage.as_deref());
        attempt.wall_ms = Some(outcome.wall.as_millis() as u64);
        attempt.user_cpu_ms = Some(outcome.user_cpu.as_millis() as u64);
        attempt.sys_cpu_ms = Some(outcome.sys_cpu.as_millis() as u64);
        attempt.max_rss_bytes = Some(outcome.max_rss_bytes);
        let exit_code = match outcome.ending {
            crate::exec::Ending::Exited(code) => Some(code),
            _ => None,
        };
        Some((view.clone(), exit_code))
    }
}

/// Re-attaches to the SLURM jobs of the interrupted runs: the ones their attempts recorded,
/// and any job whose comment names this state directory and a task of these runs (submitted,
/// but not committed, before the engine died). With `kill`, cancels them. Then waits until
/// every one has left the queue.
fn reattach_slurm(
    store: &Store,
    options: &RunOptions,
    runs: &[RunRecord],
    kill: bool,
) -> Result<SlurmJobs, RunError> {
    let mut jobs = SlurmJobs::default();
    // tag -> job id
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut tasks = std::collections::BTreeSet::new();
    let mut any_slurm_step = false;
    for run in runs {
        any_slurm_step |= uses_slurm(&run.file, &run.pipeline);
        for task in store.tasks_of(run.id)? {
            if task.status.is_final() {
                continue;
            }
            tasks.insert(task.id);
            if task.status == TaskStatus::Running {
                if let Some(attempt) = store.attempts_of(task.id)?.last() {
                    if let Some(job) = &attempt.slurm {
                        let tag = AttemptTag::new(task.id, attempt.number).to_string();
                        ids.insert(tag, job.job_id.clone());
                    }
                }
            }
        }
    }
    if ids.is_empty() && !any_slurm_step {
        return Ok(jobs);
    }
    // Jobs whose id was never committed: found by their comment.
    let prefix = slurm::slurm_comment(&slurm::state_id(&options.state_dir), "");
    match slurm::query::squeue_comments() {
        Ok(queued) => {
            for (id, _, comment) in queued {
                let Some(tag) = comment.strip_prefix(&prefix) else {
                    continue;
                };
                let task = tag.parse::<AttemptTag>().ok().map(|t| t.task);
                if task.is_some_and(|t| tasks.contains(&t)) && !ids.contains_key(tag) {
                    ids.insert(tag.to_string(), id);
                }
            }
        }
        Err(error) => {
            if !ids.is_empty() {
                tracing::warn!("cannot list this user's SLURM jobs: {error}");
            }
        }
    }
    if ids.is_empty() {
        return Ok(jobs);
    }
    let job_ids: Vec<String> = ids.values().cloned().collect();
    if kill {
        if let Err(error) = slurm::query::scancel(&job_ids) {
            tracing::warn!("cannot cancel SLURM jobs {}: {error}", job_ids.join(", "));
        }
    }
    let mut announced = false;
    let views = slurm::wait_blocking(&job_ids, options.slurm.poll, |still| {
        if !announced {
            tracing::warn!(
                "waiting for {still} SLURM job(s) still in the queue from an engine that was stopped; \
                 `engine cancel` on its run stops them instead"
            );
            announced = true;
        }
    });
    for (tag, id) in ids {
        let view = views.get(&id).cloned().unwrap_or_default();
        jobs.ended.insert(tag, (id, view));
    }
    Ok(jobs)
}

/// Whether the pipeline, as its file reads now, has a step on SLURM.
fn uses_slurm(file: &Path, pipeline: &str) -> bool {
    dsl::load_file(file).ok().is_some_and(|loaded| {
        loaded.pipeline(pipeline).is_some_and(|p| {
            p.steps
                .iter()
                .any(|s| s.executor.kind == dsl::model::step::ExecutorKind::Slurm)
        })
    })
}

#[cfg(test)]
mod tests;
