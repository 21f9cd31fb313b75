//! The scheduler: executes a planned run. Tasks become ready in DAG order once everything they
//! consume or come after is done; the highest priority ready task starts first, within `--jobs`
//! and each step's `concurrency`. A ready task is keyed from its actual inputs and reused from the
//! cache when a completed task with the same key still has its products. Failures are retried
//! with backoff; a task that fails for good blocks only what is downstream of it.
//!
//! Every transition is committed to the store before the scheduler acts on it: an attempt's pid
//! before waiting on it, a task's products before its downstream tasks are released.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dsl::model::command::Placeholder;
use dsl::model::{ParamValue, Pipeline};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::launch::Launcher;
use super::progress::Progress;
use super::publish::publish;
use super::{RunError, RunOptions};
use crate::exec::{AttemptOutcome, AttemptSpec, Ending};
use crate::plan::decide::{decide, Outcome};
use crate::plan::{inputs_of, Plan, PlannedTask, Produced};
use crate::store::{
    now_ms, AttemptEnd, AttemptFiles, AttemptRecord, ProductRecord, Reason, RunRecord, RunStatus,
    Store, TaskRecord, TaskStatus,
};

/// Set in every attempt's environment: the state directory of the engine that started it.
pub const STATE_DIR_VAR: &str = "ENGINE_STATE_DIR";
/// Set in every attempt's environment: `TASK-ATTEMPT`, naming its temporary files.
pub const ATTEMPT_VAR: &str = "ENGINE_ATTEMPT";

/// A task as the scheduler tracks it.
struct Slot {
    planned: PlannedTask,
    record: TaskRecord,
    /// Upstream and `after` tasks not yet done.
    waiting_on: usize,
    /// Tasks that consume this one or come after it.
    downstream: Vec<usize>,
    products: Vec<ProductRecord>,
}

enum Message {
    Finished {
        index: usize,
        attempt: Box<AttemptRecord>,
        outcome: AttemptOutcome,
    },
    RetryDue(usize),
}

/// Everything a run needs to know, shared by its parts.
pub struct Scheduler<'a> {
    pub store: Arc<Store>,
    pub pipeline: &'a Pipeline,
    pub params: &'a BTreeMap<String, ParamValue>,
    /// The working directory of every command: the `.pipe` file's directory.
    pub base: PathBuf,
    pub options: &'a RunOptions,
    pub progress: &'a mut Progress,
}

impl Scheduler<'_> {
    /// Records the plan's tasks and executes them. Returns the run as it ended.
    pub async fn execute(&mut self, mut run: RunRecord, plan: Plan) -> Result<RunRecord, RunError> {
        let mut slots = self.record_tasks(&run, plan)?;
        self.progress.planned(slots.len());
        run.status = RunStatus::Running;
        run.owner_pid = Some(std::process::id());
        self.store.write(|tx| {
            tx.put_run(&run)?;
            tx.event(
                Some(run.id),
                None,
                "run.started",
                format!("{} tasks", slots.len()),
            )
        })?;

        let cancel = CancellationToken::new();
        let (sender, mut receiver) = mpsc::unbounded_channel::<Message>();
        let mut launcher = Launcher::new(self.options, self.store.clone());
        let mut ready: BinaryHeap<(i64, Reverse<usize>)> = BinaryHeap::new();
        for (index, slot) in slots.iter().enumerate() {
            if slot.waiting_on == 0 {
                ready.push((self.priority(slot), Reverse(index)));
            }
        }
        let mut running_per_step: BTreeMap<usize, u32> = BTreeMap::new();
        let mut running = 0usize;
        let mut retries_pending = 0usize;
        let mut cancelled = false;
        let mut poll = tokio::time::interval(Duration::from_millis(250));
        let mut interrupt =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;

        loop {
            // Start what can start.
            let mut held_back = Vec::new();
            while !cancelled && launcher.any_room() {
                let Some((priority, Reverse(index))) = ready.pop() else {
                    break;
                };
                let step = slots[index].planned.step;
                let limit = self.pipeline.steps[step].policy.concurrency;
                if limit
                    .is_some_and(|limit| running_per_step.get(&step).copied().unwrap_or(0) >= limit)
                {
                    held_back.push((priority, Reverse(index)));
                    continue;
                }
                if !launcher.has_room(self.pipeline.steps[step].executor.kind) {
                    held_back.push((priority, Reverse(index)));
                    continue;
                }
                match self.decide(&run, &mut slots, index)? {
                    Decision::Cached => {
                        self.release(&mut slots, index, &mut ready);
                    }
                    Decision::Run => {
                        if self.start(&run, &mut slots, index, &mut launcher, &cancel, &sender)? {
                            running += 1;
                            *running_per_step.entry(step).or_default() += 1;
                        } else {
                            self.fail_or_retry(
                                &run,
                                &mut slots,
                                index,
                                &sender,
                                &mut retries_pending,
                            )?;
                        }
                    }
                }
            }
            ready.extend(held_back);
            if running == 0 && retries_pending == 0 && (ready.is_empty() || cancelled) {
                break;
            }

            tokio::select! {
                Some(message) = receiver.recv() => match message {
                    Message::Finished { index, attempt, outcome } => {
                        running -= 1;
                        let step = slots[index].planned.step;
                        *running_per_step.entry(step).or_default() -= 1;
                        launcher.finished(self.pipeline.steps[step].executor.kind);
                        self.finish(&run, &mut slots, index, *attempt, outcome, &sender, &mut ready, &mut retries_pending)?;
                    }
                    Message::RetryDue(index) => {
                        retries_pending -= 1;
                        if !cancelled {
                            ready.push((self.priority(&slots[index]), Reverse(index)));
                        }
                    }
                },
                _ = poll.tick() => {
                    if !cancelled && self.store.run(run.id)?.cancel_requested {
                        cancelled = true;
                        cancel.cancel();
                        self.progress.note("cancel requested: stopping the run");
                    }
                }
                _ = interrupt.recv() => {
                    cancelled = true;
                    cancel.cancel();
                    self.progress.note("interrupted: cancelling the run");
                }
                _ = terminate.recv() => {
                    cancelled = true;
                    cancel.cancel();
                    self.progress.note("terminated: cancelling the run");
                }
            }
        }

        // Whatever has not finished was cancelled.
        let mut leftovers = Vec::new();
        for slot in slots.iter_mut() {
            if !slot.record.status.is_final() {
                slot.record.status = TaskStatus::Cancelled;
                slot.record.finished_ms = Some(now_ms());
                leftovers.push(slot.record.clone());
            }
        }
        let all_done = slots.iter().all(|s| s.record.status.is_done());
        run.status = if cancelled {
            RunStatus::Cancelled
        } else if all_done {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        run.finished_ms = Some(now_ms());
        run.owner_pid = None;
        self.store.write(|tx| {
            for task in &leftovers {
                tx.put_task(task)?;
            }
            // Keep what other processes wrote meanwhile (a cancel request).
            run.cancel_requested = tx.run(run.id)?.cancel_requested;
            tx.put_run(&run)?;
            tx.event(Some(run.id), None, "run.finished", run.status.as_str())
        })?;
        let records: Vec<TaskRecord> = slots.into_iter().map(|s| s.record).collect();
        self.progress.summary(&run, &records);
        Ok(run)
    }

    fn priority(&self, slot: &Slot) -> i64 {
        self.pipeline.steps[slot.planned.step].policy.priority
    }

    /// Creates the task records of the plan and links them.
    fn record_tasks(&self, run: &RunRecord, plan: Plan) -> Result<Vec<Slot>, RunError> {
        let mut slots: Vec<Slot> = Vec::with_capacity(plan.tasks.len());
        let records = self.store.write(|tx| {
            let mut records = Vec::with_capacity(plan.tasks.len());
            for planned in &plan.tasks {
                let step = &self.pipeline.steps[planned.step];
                let record = tx.create_task(TaskRecord {
                    id: 0,
                    run: run.id,
                    step: step.name.clone(),
                    group: planned.group.clone(),
                    key: String::new(),
                    identity: String::new(),
                    params: BTreeMap::new(),
                    status: TaskStatus::Pending,
                    reason: None,
                    inputs: Vec::new(),
                    out_dir: self.out_dir(&step.name, planned.group.as_deref()),
                    products: Vec::new(),
                    attempts: 0,
                    blocked_by: None,
                    command: String::new(),
                    finished_ms: None,
                })?;
                records.push(record);
            }
            tx.event(
                Some(run.id),
                None,
                "run.planned",
                format!("{} tasks", records.len()),
            )?;
            Ok(records)
        })?;
        for (planned, record) in plan.tasks.into_iter().zip(records) {
            slots.push(Slot {
                waiting_on: planned.upstream.len() + planned.after.len(),
                planned,
                record,
                downstream: Vec::new(),
                products: Vec::new(),
            });
        }
        for index in 0..slots.len() {
            let sources: Vec<usize> = slots[index]
                .planned
                .upstream
                .iter()
                .chain(&slots[index].planned.after)
                .copied()
                .collect();
            for upstream in sources {
                slots[upstream].downstream.push(index);
            }
        }
        Ok(slots)
    }

    /// Where a task's products are published: `OUT/PIPELINE/STEP/GROUP`.
    fn out_dir(&self, step: &str, group: Option<&str>) -> PathBuf {
        let group = group
            .map(path_segment)
            .unwrap_or_else(|| "_all".to_string());
        self.options
            .out_root
            .join(&self.pipeline.name)
            .join(step)
            .join(group)
    }

    /// Keys a ready task from its inputs and decides: reuse a cached result, or run.
    fn decide(
        &mut self,
        run: &RunRecord,
        slots: &mut [Slot],
        index: usize,
    ) -> Result<Decision, RunError> {
        let step = &self.pipeline.steps[slots[index].planned.step];
        let inputs = inputs_of(&slots[index].planned, |up| {
            let slot = &slots[up];
            Produced {
                task: slot.record.id,
                step: &slot.record.step,
                group: slot.record.group.as_deref(),
                out_dir: &slot.record.out_dir,
                products: &slot.products,
            }
        });
        let forced = self.options.force.applies_to(&step.name);
        let retry = slots[index].record.attempts > 0;
        let decided = decide(
            &self.store,
            &self.pipeline.name,
            step,
            slots[index].planned.group.as_deref(),
            self.params,
            &inputs,
            forced,
            retry,
        )?;
        let record = &mut slots[index].record;
        record.key = decided.key;
        record.identity = decided.identity;
        record.params = decided.params;
        record.inputs = inputs;
        match decided.outcome {
            Outcome::Cached {
                task: cached,
                products,
            } => {
                record.status = TaskStatus::Cached;
                record.reason = Some(Reason::Cached { task: cached.id });
                record.products = cached.products.clone();
                record.out_dir = cached.out_dir.clone();
                record.command = cached.command.clone();
                record.finished_ms = Some(now_ms());
                let record = record.clone();
                self.store.write(|tx| {
                    tx.put_task(&record)?;
                    tx.event(
                        Some(run.id),
                        Some(record.id),
                        "task.cached",
                        format!("same as task {}", cached.id),
                    )
                })?;
                slots[index].products = products;
                self.progress.cached(&slots[index].record);
                Ok(Decision::Cached)
            }
            Outcome::Run(reason) => {
                record.reason = Some(reason);
                Ok(Decision::Run)
            }
        }
    }

    /// Starts an attempt. Returns false if it could not start (recorded as a failed attempt).
    fn start(
        &mut self,
        run: &RunRecord,
        slots: &mut [Slot],
        index: usize,
        launcher: &mut Launcher,
        cancel: &CancellationToken,
        sender: &mpsc::UnboundedSender<Message>,
    ) -> Result<bool, RunError> {
        let step = &self.pipeline.steps[slots[index].planned.step];
        let state = &self.options.state_dir;
        let record = &mut slots[index].record;
        record.attempts += 1;
        let number = record.attempts;
        let tag = format!("{}-{number}", record.id);
        let tmp_dir = state.join("tmp").join(&tag);
        let status_file = state.join("tmp").join(format!("{tag}.status"));
        let log_dir = state
            .join("logs")
            .join(run.id.to_string())
            .join(&record.step);
        let log_name = record
            .group
            .as_deref()
            .map(path_segment)
            .unwrap_or_else(|| "_all".to_string());
        let stdout = log_dir.join(format!("{log_name}.{number}.out"));
        let stderr = log_dir.join(format!("{log_name}.{number}.err"));

        let command = render_command(
            step,
            record,
            &slots[index].planned,
            &tmp_dir,
            &self.pipeline.name,
            self.params,
        );
        record.command = command.clone();
        let mut env = render_env(
            step,
            record,
            &slots[index].planned,
            &tmp_dir,
            &self.pipeline.name,
            self.params,
        );
        // How recovery recognises this attempt's processes, even before their pid is committed.
        env.push((
            STATE_DIR_VAR.to_string(),
            state.to_string_lossy().into_owned(),
        ));
        env.push((ATTEMPT_VAR.to_string(), tag.clone()));
        let spec = AttemptSpec {
            command: wrap_with_status(&command, &status_file),
            env,
            workdir: self.base.clone(),
            out_dir: tmp_dir.clone(),
            stdout_path: stdout.clone(),
            stderr_path: stderr.clone(),
            timeout: step.policy.timeout_ms.map(Duration::from_millis),
            kill_grace: self.options.kill_grace,
        };
        let mut attempt = AttemptRecord::new(
            record.id,
            number,
            AttemptFiles {
                stdout,
                stderr,
                tmp_dir,
                status_file,
            },
        );
        let _ = std::fs::remove_file(&attempt.status_file);
        // The decided task (its key and inputs) beside the status file, written before the
        // process exists: if the engine dies before committing this attempt, recovery still
        // knows what the process computed.
        let _ = std::fs::create_dir_all(state.join("tmp"));
        let _ = std::fs::write(
            decided_file(&attempt.status_file),
            serde_json::to_vec(&*record).unwrap_or_default(),
        );
        match launcher.start(step, &self.pipeline.name, &tag, &spec, &mut attempt) {
            Ok(handle) => {
                record.status = TaskStatus::Running;
                let record = record.clone();
                // Durable before we wait: after a crash, recovery finds this process.
                self.store.write(|tx| {
                    tx.put_task(&record)?;
                    tx.put_attempt(&attempt)?;
                    tx.event(
                        Some(run.id),
                        Some(record.id),
                        "attempt.started",
                        format!("attempt {number}, {}", handle.describe()),
                    )
                })?;
                self.progress.started(&record);
                let sender = sender.clone();
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    let mut attempt = attempt;
                    let outcome = handle.wait(cancel, &mut attempt).await;
                    let _ = sender.send(Message::Finished {
                        index,
                        attempt: Box::new(attempt),
                        outcome,
                    });
                });
                Ok(true)
            }
            Err(error) => {
                attempt.end = Some(AttemptEnd::LaunchFailed);
                attempt.finished_ms = Some(now_ms());
                attempt.error = Some(error.to_string());
                let record = record.clone();
                self.store.write(|tx| {
                    tx.put_attempt(&attempt)?;
                    tx.event(
                        Some(run.id),
                        Some(record.id),
                        "attempt.launch_failed",
                        error.to_string(),
                    )
                })?;
                self.progress
                    .note(&format!("cannot start {}: {error}", label(&record)));
                Ok(false)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        run: &RunRecord,
        slots: &mut [Slot],
        index: usize,
        mut attempt: AttemptRecord,
        outcome: AttemptOutcome,
        sender: &mpsc::UnboundedSender<Message>,
        ready: &mut BinaryHeap<(i64, Reverse<usize>)>,
        retries_pending: &mut usize,
    ) -> Result<(), RunError> {
        attempt.finished_ms = Some(now_ms());
        attempt.wall_ms = Some(outcome.wall.as_millis() as u64);
        attempt.user_cpu_ms = Some(outcome.user_cpu.as_millis() as u64);
        attempt.sys_cpu_ms = Some(outcome.sys_cpu.as_millis() as u64);
        // Zero when the executor could not measure it (a SLURM job too short for `sstat`).
        attempt.max_rss_bytes = Some(outcome.max_rss_bytes).filter(|bytes| *bytes > 0);
        match outcome.ending {
            Ending::Exited(code) => attempt.exit_code = Some(code),
            Ending::Signaled(signal) => attempt.signal = Some(signal),
            Ending::TimedOut | Ending::Cancelled | Ending::Lost | Ending::Cluster(_) => {}
        }
        let step = &self.pipeline.steps[slots[index].planned.step];
        if outcome.succeeded() {
            let trash = self.options.state_dir.join("trash");
            match publish(
                &attempt.tmp_dir,
                &slots[index].record.out_dir,
                &step.outputs,
                &trash,
                slots[index].record.id,
            ) {
                Ok(products) => {
                    attempt.end = Some(AttemptEnd::Succeeded);
                    let record = &mut slots[index].record;
                    record.status = TaskStatus::Succeeded;
                    record.products = products.iter().map(|p| p.path.clone()).collect();
                    record.finished_ms = Some(now_ms());
                    let record = record.clone();
                    let pipeline = self.pipeline.name.clone();
                    self.store.write(|tx| {
                        tx.put_attempt(&attempt)?;
                        for product in &products {
                            tx.put_product(product)?;
                        }
                        tx.put_task(&record)?;
                        tx.complete(&pipeline, &record)?;
                        tx.event(
                            Some(run.id),
                            Some(record.id),
                            "task.succeeded",
                            format!("{} products", products.len()),
                        )
                    })?;
                    let _ = std::fs::remove_file(&attempt.status_file);
                    let _ = std::fs::remove_file(decided_file(&attempt.status_file));
                    slots[index].products = products;
                    self.progress.succeeded(&slots[index].record, &attempt);
                    self.release(slots, index, ready);
                    return Ok(());
                }
                Err(error) => {
                    attempt.end = Some(AttemptEnd::Failed);
                    attempt.error = Some(error.to_string());
                    append_to_log(&attempt.stderr, &format!("engine: {error}\n"));
                }
            }
        } else {
            attempt.end = Some(match outcome.ending {
                Ending::TimedOut => AttemptEnd::TimedOut,
                Ending::Cancelled => AttemptEnd::Cancelled,
                _ => AttemptEnd::Failed,
            });
        }
        let record = slots[index].record.clone();
        self.store.write(|tx| {
            tx.put_attempt(&attempt)?;
            tx.event(
                Some(run.id),
                Some(record.id),
                "attempt.finished",
                format!(
                    "{:?} exit {:?} signal {:?}",
                    attempt.end, attempt.exit_code, attempt.signal
                ),
            )
        })?;
        // Only once the failure is committed: recovery reads "status 0 and no temporary
        // directory" as "published".
        let _ = std::fs::remove_dir_all(&attempt.tmp_dir);
        let _ = std::fs::remove_file(&attempt.status_file);
        let _ = std::fs::remove_file(decided_file(&attempt.status_file));
        if attempt.end == Some(AttemptEnd::Cancelled) {
            let record = &mut slots[index].record;
            record.status = TaskStatus::Cancelled;
            record.finished_ms = Some(now_ms());
            let record = record.clone();
            self.store.write(|tx| tx.put_task(&record))?;
            self.progress.cancelled(&record);
            return Ok(());
        }
        self.progress.attempt_failed(&slots[index].record, &attempt);
        self.fail_or_retry(run, slots, index, sender, retries_pending)
    }

    /// After a failed attempt: schedule a retry after the backoff, or fail the task and block
    /// everything downstream of it.
    fn fail_or_retry(
        &mut self,
        run: &RunRecord,
        slots: &mut [Slot],
        index: usize,
        sender: &mpsc::UnboundedSender<Message>,
        retries_pending: &mut usize,
    ) -> Result<(), RunError> {
        let policy = &self.pipeline.steps[slots[index].planned.step].policy;
        let record = &mut slots[index].record;
        if record.attempts <= policy.retries {
            let delay = Duration::from_millis(policy.backoff.delay_before(record.attempts + 1));
            record.status = TaskStatus::Pending;
            let record = record.clone();
            self.store.write(|tx| {
                tx.put_task(&record)?;
                tx.event(
                    Some(run.id),
                    Some(record.id),
                    "task.retry",
                    format!("in {} ms", delay.as_millis()),
                )
            })?;
            self.progress.retrying(&record, delay);
            *retries_pending += 1;
            let sender = sender.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = sender.send(Message::RetryDue(index));
            });
            return Ok(());
        }
        record.status = TaskStatus::Failed;
        record.finished_ms = Some(now_ms());
        let failed = record.clone();
        let blocked = block_downstream(slots, index);
        self.store.write(|tx| {
            tx.put_task(&failed)?;
            tx.event(
                Some(run.id),
                Some(failed.id),
                "task.failed",
                format!("after {} attempts", failed.attempts),
            )?;
            for task in &blocked {
                tx.put_task(task)?;
                tx.event(
                    Some(run.id),
                    Some(task.id),
                    "task.blocked",
                    format!("by task {}", failed.id),
                )?;
            }
            Ok(())
        })?;
        self.progress.failed(&failed, blocked.len());
        Ok(())
    }

    /// Marks `index` done for its downstream tasks; those with nothing left to wait for are ready.
    fn release(
        &self,
        slots: &mut [Slot],
        index: usize,
        ready: &mut BinaryHeap<(i64, Reverse<usize>)>,
    ) {
        let downstream = slots[index].downstream.clone();
        for next in downstream {
            slots[next].waiting_on -= 1;
            if slots[next].waiting_on == 0 && slots[next].record.status == TaskStatus::Pending {
                ready.push((self.priority(&slots[next]), Reverse(next)));
            }
        }
    }
}

enum Decision {
    Cached,
    Run,
}

/// Blocks every task downstream of `failed` (transitively); returns their updated records.
fn block_downstream(slots: &mut [Slot], failed: usize) -> Vec<TaskRecord> {
    let failed_id = slots[failed].record.id;
    let mut stack = slots[failed].downstream.clone();
    let mut blocked = Vec::new();
    while let Some(index) = stack.pop() {
        if slots[index].record.status != TaskStatus::Pending {
            continue;
        }
        slots[index].record.status = TaskStatus::Blocked;
        slots[index].record.blocked_by = Some(failed_id);
        slots[index].record.finished_ms = Some(now_ms());
        blocked.push(slots[index].record.clone());
        stack.extend(slots[index].downstream.iter().copied());
    }
    blocked
}

/// A group key as one safe path segment.
pub fn path_segment(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if c.is_ascii_alphanumeric() || "._-".contains(c) {
            out.push(c);
        } else {
            out.push_str(&format!("%{:02X}", c as u32));
        }
    }
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// The text of one placeholder of a task.
fn placeholder_values(
    p: &Placeholder,
    task: &TaskRecord,
    planned: &PlannedTask,
    out: &Path,
    pipeline: &str,
    params: &BTreeMap<String, ParamValue>,
) -> Vec<String> {
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    match p {
        Placeholder::Inputs => task.inputs.iter().map(|i| path(&i.path)).collect(),
        Placeholder::InputsOf(name) => task
            .inputs
            .iter()
            .filter(|i| &i.from == name)
            .map(|i| path(&i.path))
            .collect(),
        Placeholder::Out => vec![path(&out.to_path_buf())],
        Placeholder::Group => task.group.iter().cloned().collect(),
        Placeholder::GroupField(field) => planned.fields.get(field).cloned().into_iter().collect(),
        Placeholder::Param(name) => params.get(name).map(|v| v.render()).into_iter().collect(),
        Placeholder::Arg(_) => Vec::new(),
        Placeholder::Pipeline => vec![pipeline.to_string()],
        Placeholder::Step => vec![task.step.clone()],
    }
}

fn render_command(
    step: &dsl::model::StepDef,
    task: &TaskRecord,
    planned: &PlannedTask,
    out: &Path,
    pipeline: &str,
    params: &BTreeMap<String, ParamValue>,
) -> String {
    step.run
        .render_shell(|p| placeholder_values(p, task, planned, out, pipeline, params))
}

fn render_env(
    step: &dsl::model::StepDef,
    task: &TaskRecord,
    planned: &PlannedTask,
    out: &Path,
    pipeline: &str,
    params: &BTreeMap<String, ParamValue>,
) -> Vec<(String, String)> {
    step.env
        .iter()
        .map(|(name, template)| {
            let value = template
                .render(|p| placeholder_values(p, task, planned, out, pipeline, params).join(" "));
            (name.clone(), value)
        })
        .collect()
}

/// Where the decided task record of an attempt is kept until the attempt is committed.
pub fn decided_file(status_file: &Path) -> PathBuf {
    status_file.with_extension("task.json")
}

/// Runs the command in its own shell and records its exit status in `status_file` (written
/// atomically), so that an attempt that finishes while the engine is down is not run again.
fn wrap_with_status(command: &str, status_file: &Path) -> String {
    let status = dsl::model::command::shell_quote(&status_file.to_string_lossy());
    let partial =
        dsl::model::command::shell_quote(&format!("{}.partial", status_file.to_string_lossy()));
    format!(
        "sh -c {}; status=$?; printf '%s\\n' \"$status\" > {partial} && mv {partial} {status}; exit \"$status\"",
        dsl::model::command::shell_quote(command)
    )
}

fn append_to_log(path: &Path, text: &str) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}

/// `step [group]`, for messages.
pub fn label(task: &TaskRecord) -> String {
    match &task.group {
        Some(group) => format!("{} [{group}]", task.step),
        None => task.step.clone(),
    }
}
