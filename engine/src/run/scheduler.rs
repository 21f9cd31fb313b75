//! The scheduler: executes a planned run. Tasks become ready in DAG order once everything they
//! consume or come after is done; the highest priority ready task starts first, within `--jobs`
//! and each step's `concurrency`. A ready task is keyed from its actual inputs and reused from the
//! cache when a completed task with the same key still has its products. Failures are retried
//! with backoff; a task that fails for good blocks only what is downstream of it.
//!
//! Every transition is committed to the store before the scheduler acts on it: an attempt's pid
//! before waiting on it, a task's products before its downstream tasks are released.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dsl::model::command::Placeholder;
use dsl::model::step::ExecutorKind;
use dsl::model::{ParamValue, Pipeline};
use tokio::sync::mpsc;

use super::claims::Output;
use super::journal::Journal;
use super::launch::{self, Launcher};
use super::progress::Progress;
use super::publish::publish;
use super::ready::Ready;
use super::{RunError, RunOptions};
use crate::exec::files::{self as attempt_files, attempt_files};
use crate::exec::local::sleep_until;
use crate::exec::{AttemptOutcome, AttemptSpec, AttemptTag, Ending, ATTEMPT_VAR, STATE_DIR_VAR};
use crate::lifecycle::{self, Event, IllegalTransition};
use crate::plan::decide::{decide, Outcome};
use crate::plan::{inputs_of, Plan, PlannedTask, Produced};
use crate::store::{
    now_ms, AttemptEnd, AttemptRecord, ProductRecord, Reason, RunRecord, Store, TaskRecord,
    TaskStatus,
};

/// A task as the scheduler tracks it.
struct Slot {
    planned: PlannedTask,
    record: TaskRecord,
    /// Upstream and `after` tasks not yet done.
    waiting_on: usize,
    /// Tasks that consume this one or come after it.
    downstream: Vec<usize>,
    products: Vec<ProductRecord>,
    /// The files [`attempt_files::prepare`] created ahead of the task's next attempt, if any.
    ahead: Option<FilesAhead>,
}

/// Files created for an attempt before it started.
#[derive(Clone, Copy)]
struct FilesAhead {
    /// The attempt's number.
    number: u32,
    /// Whether every one of them was created new (and so is empty).
    fresh: bool,
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
    /// Transitions recorded but not yet committed; see [`Journal`] for when they are.
    pub journal: Journal,
}

impl Scheduler<'_> {
    /// Records the plan's tasks and executes them. Returns the run as it ended.
    pub async fn execute(&mut self, run: RunRecord, plan: Plan) -> Result<RunRecord, RunError> {
        let mut slots = self.record_tasks(&run, plan)?;
        self.progress.planned(slots.len());
        let started = Event::RunStarted { tasks: slots.len() };
        let run = self.store.write(|tx| {
            tx.run_event(run.id, &started, |run| {
                run.owner_pid = Some(std::process::id());
            })
        })?;

        // Cancelled by a `cancel_requested` in the store, or from outside with the run's stop.
        let cancel = self.options.stop.cancel.child_token();
        let (sender, mut receiver) = mpsc::unbounded_channel::<Message>();
        let mut launcher = Launcher::new(self.options, self.store.clone());
        let mut ready = Ready::default();
        for (index, slot) in slots.iter().enumerate() {
            if slot.waiting_on == 0 {
                self.enqueue(&mut ready, slots.as_slice(), index);
            }
        }
        let mut running_per_step: BTreeMap<usize, u32> = BTreeMap::new();
        // Started at the gate, released once their start is committed.
        let mut starting: Vec<Starting> = Vec::new();
        let mut running = 0usize;
        let mut retries_pending = 0usize;
        let mut cancelled = false;
        let mut draining = false;
        let mut poll = tokio::time::interval(Duration::from_millis(250));
        let mut pause = self.options.stop.pause.subscribe();
        // With overlapping runs: tasks whose output another run is producing, and the outputs
        // this run is done with, given up once that is committed.
        let claims = self.options.claims.clone();
        let mut claims_released = claims.as_ref().map(|claims| claims.subscribe());
        let mut deferred: Vec<(i64, Reverse<usize>)> = Vec::new();
        let mut done_with: Vec<Output> = Vec::new();
        let mut decided_log = attempt_files::DecidedLog::new(&self.options.state_dir, run.id);

        loop {
            // Start what can start, unless new starts are paused.
            let paused = *pause.borrow_and_update();
            if let Some(released) = &mut claims_released {
                released.borrow_and_update();
            }
            let may_start = !cancelled && !draining && !paused;
            while let Some((priority, index)) = may_start
                .then(|| {
                    let full = |step: usize| {
                        self.pipeline.steps[step]
                            .policy
                            .concurrency
                            .is_some_and(|limit| {
                                running_per_step.get(&step).copied().unwrap_or(0) >= limit
                            })
                    };
                    ready.pop(|kind| launcher.has_room(kind), full)
                })
                .flatten()
            {
                let step = slots[index].planned.step;
                // The output this task claims, when runs may overlap.
                let claimed = match &claims {
                    Some(claims) => {
                        let output = self.output(&slots[index]);
                        if !claims.try_claim(&output, run.id) {
                            deferred.push((priority, Reverse(index)));
                            continue;
                        }
                        Some(output)
                    }
                    None => None,
                };
                match self.decide(&mut slots, index)? {
                    Decision::Cached => {
                        done_with.extend(claimed);
                        // It took no room of its step's.
                        ready.unhold(step, 1);
                        self.release(&mut slots, index, &mut ready);
                    }
                    Decision::Run => {
                        if let Some(attempt) =
                            self.start(&mut slots, index, &mut launcher, &mut decided_log)?
                        {
                            starting.push(attempt);
                            running += 1;
                            *running_per_step.entry(step).or_default() += 1;
                        } else {
                            done_with.extend(claimed);
                            ready.unhold(step, 1);
                            self.fail_or_retry(&mut slots, index, &sender, &mut retries_pending)?;
                        }
                    }
                }
            }
            if self.journal.is_due() || starting.iter().any(|s| s.commit_first) {
                self.commit(&mut done_with, run.id)?;
            }
            for Starting {
                index,
                mut handle,
                mut attempt,
                commit_first: _,
            } in starting.drain(..)
            {
                handle.release();
                let sender = sender.clone();
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    let outcome = handle.wait(cancel, &mut attempt).await;
                    let _ = sender.send(Message::Finished {
                        index,
                        attempt,
                        outcome,
                    });
                });
            }
            let stopping = cancelled || draining;
            let nothing_ready = ready.is_empty() && deferred.is_empty();
            if running == 0 && retries_pending == 0 && (nothing_ready || stopping) {
                break;
            }

            tokio::select! {
                Some(message) = receiver.recv() => match message {
                    Message::Finished { index, attempt, outcome } => {
                        running -= 1;
                        let step = slots[index].planned.step;
                        *running_per_step.entry(step).or_default() -= 1;
                        ready.unhold(step, 1);
                        launcher.finished(self.pipeline.steps[step].executor.kind);
                        if claims.is_some() {
                            done_with.push(self.output(&slots[index]));
                        }
                        self.finish(&mut slots, index, *attempt, outcome, &sender, &mut ready, &mut retries_pending)?;
                    }
                    Message::RetryDue(index) => {
                        retries_pending -= 1;
                        if !cancelled && !draining {
                            self.enqueue(&mut ready, &slots, index);
                        }
                    }
                },
                () = sleep_until(self.journal.due_at()) => {
                    self.commit(&mut done_with, run.id)?;
                }
                _ = claim_released(&mut claims_released), if !deferred.is_empty() => {
                    for (_, Reverse(index)) in deferred.drain(..) {
                        self.enqueue(&mut ready, &slots, index);
                    }
                }
                _ = poll.tick() => {
                    if !cancelled && self.store.run(run.id)?.cancel_requested {
                        cancelled = true;
                        cancel.cancel();
                        self.progress.note("cancel requested: stopping the run");
                    }
                }
                _ = self.options.stop.cancel.cancelled(), if !cancelled => {
                    cancelled = true;
                    self.progress.note("stopped: cancelling the run");
                    let run = run.id;
                    self.journal.record(move |tx| {
                        tx.run_event(run, &Event::RunStopped, |_| {}).map(drop)
                    });
                }
                // Resumed (or paused): the loop starts what can start.
                Ok(()) = pause.changed() => {}
                _ = self.options.stop.drain.cancelled(), if !draining && !cancelled => {
                    draining = true;
                    self.progress.note("stopping: no new task starts; the running ones finish");
                    let run = run.id;
                    self.journal.record(move |tx| {
                        tx.run_event(run, &Event::RunStopping, |_| {}).map(drop)
                    });
                }
            }
        }

        // Whatever has not finished was cancelled.
        let mut leftovers = Vec::new();
        for slot in slots.iter_mut() {
            if !slot.record.status.is_final() {
                slot.record.apply(&Event::TaskCancelled)?;
                slot.record.finished_ms = Some(now_ms());
                leftovers.push(slot.record.clone());
            }
        }
        let ended = run_end(&slots, cancelled || draining);
        self.journal.commit(&self.store)?;
        if let Some(claims) = &claims {
            claims.release(slots.iter().map(|slot| self.output(slot)), run.id);
        }
        let run = self.store.write(|tx| {
            for task in &leftovers {
                tx.task_event(task, &Event::TaskCancelled)?;
            }
            tx.run_event(run.id, &ended, |run| {
                run.finished_ms = Some(now_ms());
                run.owner_pid = None;
            })
        })?;
        let state = &self.options.state_dir;
        for slot in &slots {
            if let Some(ahead) = slot
                .ahead
                .filter(|ahead| slot.record.attempts < ahead.number)
            {
                attempt_files::unprepare(state, &slot.record, ahead.number);
            }
        }
        // Everything they could tell recovery is committed now.
        decided_log.remove();
        let _ = std::fs::remove_file(attempt_files::ended_log(state, run.id));
        let records: Vec<TaskRecord> = slots.into_iter().map(|s| s.record).collect();
        self.progress.summary(&run, &records);
        Ok(run)
    }

    /// Commits the journal, then gives up the output claims of the tasks this run is done with.
    fn commit(&mut self, done_with: &mut Vec<Output>, run: u64) -> Result<(), RunError> {
        self.journal.commit(&self.store)?;
        if let Some(claims) = &self.options.claims {
            claims.release(done_with.drain(..), run);
        }
        Ok(())
    }

    /// The output directory a task produces, as runs that overlap claim it.
    fn output(&self, slot: &Slot) -> Output {
        (
            self.pipeline.name.clone(),
            slot.record.step.clone(),
            slot.record.group.clone(),
        )
    }

    /// The local tasks that wait only on task `index`, which is starting, and whose next
    /// attempt's files were not created yet: they can be while it starts and runs (see
    /// [`attempt_files::prepare`]).
    fn to_prepare(&self, slots: &[Slot], index: usize) -> Vec<(usize, TaskRecord)> {
        slots[index]
            .downstream
            .iter()
            .map(|&down| (down, &slots[down]))
            .filter(|(_, slot)| {
                slot.waiting_on == 1
                    && slot.record.status == TaskStatus::Pending
                    && slot.ahead.is_none()
                    && self.pipeline.steps[slot.planned.step].executor.kind == ExecutorKind::Local
            })
            .map(|(down, slot)| (down, slot.record.clone()))
            .collect()
    }

    /// Adds task `index` to the ready queue.
    fn enqueue(&self, ready: &mut Ready, slots: &[Slot], index: usize) {
        let step = slots[index].planned.step;
        let kind = self.pipeline.steps[step].executor.kind;
        ready.push(self.priority(&slots[index]), index, step, kind);
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
                    status: lifecycle::task::INITIAL,
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
            let planned = Event::RunPlanned {
                tasks: records.len(),
            };
            tx.run_event(run.id, &planned, |_| {})?;
            Ok(records)
        })?;
        for (planned, record) in plan.tasks.into_iter().zip(records) {
            slots.push(Slot {
                waiting_on: planned.upstream.len() + planned.after.len(),
                planned,
                record,
                downstream: Vec::new(),
                products: Vec::new(),
                ahead: None,
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
            .map(attempt_files::path_segment)
            .unwrap_or_else(|| "_all".to_string());
        self.options
            .out_root
            .join(&self.pipeline.name)
            .join(step)
            .join(group)
    }

    /// Keys a ready task from its inputs and decides: reuse a cached result, or run.
    fn decide(&mut self, slots: &mut [Slot], index: usize) -> Result<Decision, RunError> {
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
                let event = Event::TaskCached { same_as: cached.id };
                record.apply(&event)?;
                record.reason = Some(Reason::Cached { task: cached.id });
                record.products = cached.products.clone();
                record.out_dir = cached.out_dir.clone();
                record.command = cached.command.clone();
                record.finished_ms = Some(now_ms());
                let record = record.clone();
                self.journal
                    .record(move |tx| tx.task_event(&record, &event));
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

    /// Starts an attempt, held at the executor's gate until its start is committed. Returns
    /// `None` if it could not start (recorded as a failed attempt). While the executor starts
    /// it, creates the files of the tasks waiting only on it, noted in their slots, to be
    /// removed at the run's end if they never start.
    fn start(
        &mut self,
        slots: &mut [Slot],
        index: usize,
        launcher: &mut Launcher,
        decided_log: &mut attempt_files::DecidedLog,
    ) -> Result<Option<Starting>, RunError> {
        let options = self.options;
        let downstream = self.to_prepare(slots, index);
        let mut created = Vec::with_capacity(downstream.len());
        let prepare_ahead = || {
            for (down, task) in &downstream {
                let number = task.attempts + 1;
                let fresh = attempt_files::prepare(&options.state_dir, task, number);
                created.push((down, FilesAhead { number, fresh }));
            }
        };
        let step = &self.pipeline.steps[slots[index].planned.step];
        let state = &self.options.state_dir;
        // This attempt's own files, if created ahead when its upstream started.
        let ahead = slots[index].ahead;
        let record = &mut slots[index].record;
        record.attempts += 1;
        let number = record.attempts;
        let tag = AttemptTag::new(record.id, number).to_string();
        let files = attempt_files(state, record, number);
        let tmp_dir = files.tmp_dir.clone();

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
            command,
            tag: tag.clone(),
            ended_log: files.status_file.clone(),
            script: attempt_files::script_path(&files.stdout),
            env,
            workdir: self.base.clone(),
            out_dir: tmp_dir.clone(),
            stdout_path: files.stdout.clone(),
            stderr_path: files.stderr.clone(),
            prepared: ahead.is_some_and(|ahead| ahead.fresh && ahead.number == number),
            timeout: step.policy.timeout_ms.map(Duration::from_millis),
            kill_grace: self.options.kill_grace,
        };
        let mut attempt = AttemptRecord::new(record.id, number, files);
        // The command may run before its start is committed (a SLURM job as soon as it is
        // submitted, a local command unless held): if the engine dies before that commit,
        // recovery completes the attempt from the run's ended log and decided log.
        let kept = decided_log.keep(&tag, record);
        // The journal commits later, in its own time, unless something outside the engine
        // relies on the start: recovery knows of one uncommitted attempt per task only, and
        // SLURM's queue is waited on by the job id committed. A local command whose start
        // must be committed first waits at the gate until then.
        let commit_first = !kept || number > 1 || step.executor.kind == ExecutorKind::Slurm;
        let started = match launcher.start(
            step,
            &self.pipeline.name,
            &tag,
            &spec,
            commit_first,
            &mut attempt,
            prepare_ahead,
        ) {
            Ok(handle) => {
                let event = Event::AttemptStarted {
                    number,
                    executor: handle.describe(),
                };
                record.apply(&event)?;
                self.progress.started(record);
                // Committed before the command is released and before the scheduler waits for
                // anything: after a crash, recovery finds this process.
                let (record, started) = (record.clone(), attempt.clone());
                self.journal.record(move |tx| {
                    tx.put_attempt(&started)?;
                    tx.task_event(&record, &event)
                });
                Some(Starting {
                    index,
                    handle,
                    attempt: Box::new(attempt),
                    commit_first,
                })
            }
            Err(error) => {
                attempt.end = Some(AttemptEnd::LaunchFailed);
                attempt.finished_ms = Some(now_ms());
                attempt.error = Some(error.to_string());
                self.progress
                    .note(&format!("cannot start {}: {error}", label(record)));
                let event = Event::AttemptLaunchFailed {
                    number,
                    error: error.to_string(),
                };
                record.apply(&event)?;
                let record = record.clone();
                self.journal.record(move |tx| {
                    tx.put_attempt(&attempt)?;
                    tx.task_event(&record, &event)
                });
                None
            }
        };
        for (&down, files) in created {
            slots[down].ahead = Some(files);
        }
        Ok(started)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        slots: &mut [Slot],
        index: usize,
        mut attempt: AttemptRecord,
        outcome: AttemptOutcome,
        sender: &mpsc::UnboundedSender<Message>,
        ready: &mut Ready,
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
                    let event = Event::TaskSucceeded {
                        products: products.len(),
                    };
                    record.apply(&event)?;
                    record.products = products.iter().map(|p| p.path.clone()).collect();
                    record.finished_ms = Some(now_ms());
                    self.progress.succeeded(record, &attempt);
                    let (record, written, pipeline) =
                        (record.clone(), products.clone(), self.pipeline.name.clone());
                    self.journal.record(move |tx| {
                        tx.put_attempt(&attempt)?;
                        for product in &written {
                            tx.put_product(product)?;
                        }
                        tx.task_event(&record, &event)?;
                        tx.complete(&pipeline, &record)
                    });
                    slots[index].products = products;
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
        // Only once the failure is committed: recovery reads "status 0 and no temporary
        // directory" as "published".
        self.journal.remove_after_commit(attempt.tmp_dir.clone());
        let cancelled = attempt.end == Some(AttemptEnd::Cancelled);
        if !cancelled {
            self.progress.attempt_failed(&slots[index].record, &attempt);
        }
        let finished = Event::AttemptFinished {
            number: attempt.number,
            end: attempt.end.unwrap_or(AttemptEnd::Failed),
            exit_code: attempt.exit_code,
            signal: attempt.signal,
        };
        let record = &mut slots[index].record;
        record.apply(&finished)?;
        let task = record.clone();
        self.journal.record(move |tx| {
            tx.put_attempt(&attempt)?;
            tx.task_event(&task, &finished)
        });
        if cancelled {
            record.apply(&Event::TaskCancelled)?;
            record.finished_ms = Some(now_ms());
            self.progress.cancelled(record);
            let record = record.clone();
            self.journal
                .record(move |tx| tx.task_event(&record, &Event::TaskCancelled));
            return Ok(());
        }
        self.fail_or_retry(slots, index, sender, retries_pending)
    }

    /// After a failed attempt: schedule a retry after the backoff, or fail the task and block
    /// everything downstream of it.
    fn fail_or_retry(
        &mut self,
        slots: &mut [Slot],
        index: usize,
        sender: &mpsc::UnboundedSender<Message>,
        retries_pending: &mut usize,
    ) -> Result<(), RunError> {
        let policy = &self.pipeline.steps[slots[index].planned.step].policy;
        let record = &mut slots[index].record;
        if record.attempts <= policy.retries {
            let delay = Duration::from_millis(policy.backoff.delay_before(record.attempts + 1));
            let event = Event::TaskRetry {
                delay_ms: delay.as_millis() as u64,
            };
            record.apply(&event)?;
            self.progress.retrying(record, delay);
            let record = record.clone();
            self.journal
                .record(move |tx| tx.task_event(&record, &event));
            *retries_pending += 1;
            let sender = sender.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = sender.send(Message::RetryDue(index));
            });
            return Ok(());
        }
        let event = Event::TaskFailed {
            attempts: record.attempts,
        };
        record.apply(&event)?;
        record.finished_ms = Some(now_ms());
        let failed = record.clone();
        let blocked = block_downstream(slots, index)?;
        self.progress.failed(&failed, blocked.len());
        self.journal.record(move |tx| {
            tx.task_event(&failed, &event)?;
            let blocked_by = Event::TaskBlocked { by: failed.id };
            for task in &blocked {
                tx.task_event(task, &blocked_by)?;
            }
            Ok(())
        });
        Ok(())
    }

    /// Marks `index` done for its downstream tasks; those with nothing left to wait for are ready.
    fn release(&self, slots: &mut [Slot], index: usize, ready: &mut Ready) {
        let downstream = slots[index].downstream.clone();
        for next in downstream {
            slots[next].waiting_on -= 1;
            if slots[next].waiting_on == 0 && slots[next].record.status == TaskStatus::Pending {
                self.enqueue(ready, slots, next);
            }
        }
    }
}

enum Decision {
    Cached,
    Run,
}

/// An attempt started, held at the executor's gate until it is released.
struct Starting {
    index: usize,
    handle: launch::Started,
    attempt: Box<AttemptRecord>,
    /// Whether the start must be committed before the command is released.
    commit_first: bool,
}

/// Resolves when another run gives up an output claim; never without claims.
async fn claim_released(released: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    match released {
        Some(released) => {
            if released.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Blocks every task downstream of `failed` (transitively); returns their updated records.
fn block_downstream(
    slots: &mut [Slot],
    failed: usize,
) -> Result<Vec<TaskRecord>, IllegalTransition> {
    let failed_id = slots[failed].record.id;
    let blocked_by = Event::TaskBlocked { by: failed_id };
    let mut stack = slots[failed].downstream.clone();
    let mut blocked = Vec::new();
    while let Some(index) = stack.pop() {
        if slots[index].record.status != TaskStatus::Pending {
            continue;
        }
        slots[index].record.apply(&blocked_by)?;
        slots[index].record.blocked_by = Some(failed_id);
        slots[index].record.finished_ms = Some(now_ms());
        blocked.push(slots[index].record.clone());
        stack.extend(slots[index].downstream.iter().copied());
    }
    Ok(blocked)
}

/// How a run ends: cancelled when it was stopped, else succeeded when every task is done.
fn run_end(slots: &[Slot], stopped: bool) -> Event {
    let not_done = slots.iter().filter(|s| !s.record.status.is_done()).count();
    if stopped {
        Event::RunCancelled {
            why: format!("{not_done} of {} tasks not done", slots.len()),
        }
    } else if not_done == 0 {
        Event::RunSucceeded
    } else {
        Event::RunFailed {
            why: format!("{not_done} of {} tasks not done", slots.len()),
        }
    }
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
