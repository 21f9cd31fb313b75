//! What the scheduler does with one ready task: decide it (reuse a cached result, or run), start
//! an attempt of it, and settle how the attempt ended (publish its products, retry it, or fail
//! it and block what is downstream). Every change of the task's status is an event applied
//! through the lifecycle table and recorded in the journal with the records it changed.

use std::time::Duration;

use dsl::model::step::ExecutorKind;

use super::launch::Started;
use super::publish::{move_into_place, PublishError};
use super::render::{label, Values};
use super::scheduler::{Execution, Message, Scheduler, Starting};
use super::slots::{self, FilesAhead};
use super::RunError;
use crate::exec::files::{self as attempt_files, attempt_files};
use crate::exec::{
    AttemptOutcome, AttemptSpec, AttemptTag, Ending, ExecError, ATTEMPT_VAR, STATE_DIR_VAR,
};
use crate::lifecycle::Event;
use crate::plan::decide::{decide, Asked, Verdict};
use crate::plan::{inputs_of, Produced};
use crate::store::{now_ms, AttemptEnd, AttemptRecord, ProductRecord, Reason, TaskStatus};

/// Products up to this size are hashed on the run loop's thread (a millisecond or so); larger
/// ones on a blocking thread.
pub const HASH_INLINE_BYTES: u64 = 1 << 20;

/// What [`Scheduler::decide`] found for a ready task.
pub enum Decision {
    Cached,
    Run,
    /// Held for a person, with what is downstream of it.
    Held,
}

/// How [`Scheduler::start`] went.
pub enum Launch {
    /// Started (held at the gate when its start must be committed first).
    Started(Starting),
    /// Being submitted to SLURM: [`Message::Submitted`] says how that went.
    Submitting,
    /// It could not start, and is recorded as a failed attempt.
    Failed,
}

impl Scheduler<'_> {
    /// Keys ready task `index` from its inputs and decides: reuse a cached result, or run.
    pub(super) fn decide(
        &mut self,
        ex: &mut Execution,
        index: usize,
    ) -> Result<Decision, RunError> {
        let slots = &mut ex.slots;
        let step = &self.pipeline.steps[slots[index].planned.step];
        #[cfg(debug_assertions)]
        inject_fault(&step.name);
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
        let asked = Asked {
            forced: self.options.force.applies_to(&step.name),
            retry: slots[index].record.attempts > 0,
            hold: self.options.hold_failed,
        };
        let decided = decide(
            &self.store,
            &self.pipeline.name,
            step,
            slots[index].planned.group.as_deref(),
            self.params,
            &inputs,
            asked,
        )?;
        let record = &mut slots[index].record;
        record.key = decided.key;
        record.identity = decided.identity;
        record.params = decided.params;
        record.inputs = inputs;
        let (cached, products) = match decided.verdict {
            Verdict::Cached { task, products } => (task, products),
            Verdict::Run(reason) => {
                record.reason = Some(reason);
                return Ok(Decision::Run);
            }
            Verdict::Held(reason) => {
                self.hold(ex, index, reason)?;
                return Ok(Decision::Held);
            }
        };
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

    /// Holds task `index` for a retry by hand (`reason` names the failed task), and every task
    /// downstream of it.
    fn hold(&mut self, ex: &mut Execution, index: usize, reason: Reason) -> Result<(), RunError> {
        let Reason::Held { task: failed, .. } = reason else {
            unreachable!("a task is held for a failed task");
        };
        let event = Event::TaskHeld { failed };
        let mut held = vec![index];
        let mut next = ex.slots[index].downstream.clone();
        while let Some(down) = next.pop() {
            if ex.slots[down].record.status == TaskStatus::Pending && !held.contains(&down) {
                held.push(down);
                next.extend(ex.slots[down].downstream.iter().copied());
            }
        }
        let mut records = Vec::with_capacity(held.len());
        for &slot in &held {
            let record = &mut ex.slots[slot].record;
            record.apply(&event)?;
            record.reason = Some(reason.clone());
            record.finished_ms = Some(now_ms());
            self.progress.held(record);
            records.push(record.clone());
        }
        self.journal.record(move |tx| {
            records
                .iter()
                .try_for_each(|record| tx.task_event(record, &event))
        });
        Ok(())
    }

    /// Starts an attempt of task `index`: a local command, held at the executor's gate until its
    /// start is committed when it must be, or a SLURM job, submitted on a blocking thread
    /// ([`Message::Submitted`] says how that went). While the executor starts it, creates the
    /// files of the tasks waiting only on it, noted in their slots, to be removed at the run's
    /// end if they never start.
    pub(super) fn start(&mut self, ex: &mut Execution, index: usize) -> Result<Launch, RunError> {
        let state = &self.options.state_dir;
        let downstream = slots::waiting_only_on(&ex.slots, index, self.pipeline);
        let mut created = Vec::with_capacity(downstream.len());
        let mut prepare_ahead = || {
            for (down, task) in &downstream {
                let number = task.attempts + 1;
                let fresh = attempt_files::prepare(state, task, number);
                created.push((*down, FilesAhead { number, fresh }));
            }
        };
        let step = &self.pipeline.steps[ex.slots[index].planned.step];
        let (spec, mut attempt) = self.attempt_spec(ex, index);
        // The command may run before its start is committed (a SLURM job as soon as it is
        // submitted, a local command unless held): if the engine dies before that commit,
        // recovery completes the attempt from the run's ended log and decided log.
        let kept = ex.decided_log.keep(&spec.tag, &ex.slots[index].record);
        let launch = if step.executor.kind == ExecutorKind::Slurm {
            let submission =
                ex.launcher
                    .submit(step, &self.pipeline.name, &spec.tag, &spec, &attempt);
            prepare_ahead();
            let sender = ex.sender.clone();
            tokio::spawn(async move {
                let result = submission.wait().await;
                let attempt = Box::new(attempt);
                let _ = sender.send(Message::Submitted {
                    index,
                    attempt,
                    result,
                });
            });
            Launch::Submitting
        } else {
            // The journal commits later, in its own time, unless something outside the engine
            // relies on the start: recovery knows of one uncommitted attempt per task only. A
            // command whose start must be committed first waits at the gate until then.
            let commit_first = !kept || attempt.number > 1;
            match ex
                .launcher
                .start_local(&spec, commit_first, &mut attempt, prepare_ahead)
            {
                Ok(handle) => {
                    Launch::Started(self.started(ex, index, handle, attempt, commit_first)?)
                }
                Err(error) => {
                    self.launch_failed(ex, index, attempt, error)?;
                    Launch::Failed
                }
            }
        };
        for (down, files) in created {
            ex.slots[down].ahead = Some(files);
        }
        Ok(launch)
    }

    /// Records that attempt `attempt` of task `index` started as `handle`: committed before the
    /// command is released (when `commit_first`) and before the scheduler waits for anything,
    /// so that after a crash recovery finds it.
    pub(super) fn started(
        &mut self,
        ex: &mut Execution,
        index: usize,
        handle: Started,
        attempt: AttemptRecord,
        commit_first: bool,
    ) -> Result<Starting, RunError> {
        let record = &mut ex.slots[index].record;
        let event = Event::AttemptStarted {
            number: attempt.number,
            executor: handle.describe(),
        };
        record.apply(&event)?;
        self.progress.started(record);
        let (record, started) = (record.clone(), attempt.clone());
        self.journal.record(move |tx| {
            tx.put_attempt(&started)?;
            tx.task_event(&record, &event)
        });
        Ok(Starting {
            index,
            handle,
            attempt: Box::new(attempt),
            commit_first,
        })
    }

    /// Records that attempt `attempt` of task `index` could not start; the caller then retries
    /// or fails the task.
    pub(super) fn launch_failed(
        &mut self,
        ex: &mut Execution,
        index: usize,
        mut attempt: AttemptRecord,
        error: ExecError,
    ) -> Result<(), RunError> {
        let record = &mut ex.slots[index].record;
        attempt.end = Some(AttemptEnd::LaunchFailed);
        attempt.finished_ms = Some(now_ms());
        attempt.error = Some(error.to_string());
        self.progress
            .note(&format!("cannot start {}: {error}", label(record)));
        let event = Event::AttemptLaunchFailed {
            number: attempt.number,
            error: error.to_string(),
        };
        record.apply(&event)?;
        let record = record.clone();
        self.journal.record(move |tx| {
            tx.put_attempt(&attempt)?;
            tx.task_event(&record, &event)
        });
        Ok(())
    }

    /// The next attempt of task `index`: counted on its record, its command rendered, and what
    /// the executor needs to run it.
    fn attempt_spec(&self, ex: &mut Execution, index: usize) -> (AttemptSpec, AttemptRecord) {
        let state = &self.options.state_dir;
        let slot = &mut ex.slots[index];
        let step = &self.pipeline.steps[slot.planned.step];
        // This attempt's own files, if created ahead when its upstream started.
        let ahead = slot.ahead;
        let record = &mut slot.record;
        record.attempts += 1;
        let number = record.attempts;
        let tag = AttemptTag::new(record.id, number).to_string();
        let files = attempt_files(state, record, number);
        let tmp_dir = files.tmp_dir.clone();
        let values = Values {
            task: record,
            planned: &slot.planned,
            out: &tmp_dir,
            pipeline: &self.pipeline.name,
            params: self.params,
        };
        let command = values.command(step);
        let mut env = values.env(step);
        record.command = command.clone();
        // How recovery recognises this attempt's processes, even before their pid is committed.
        env.push((
            STATE_DIR_VAR.to_string(),
            state.to_string_lossy().into_owned(),
        ));
        env.push((ATTEMPT_VAR.to_string(), tag.clone()));
        let spec = AttemptSpec {
            command,
            tag,
            ended_log: files.ended_log.clone(),
            script: attempt_files::script_path(&files.stdout),
            env,
            workdir: self.base.clone(),
            out_dir: tmp_dir,
            stdout_path: files.stdout.clone(),
            stderr_path: files.stderr.clone(),
            prepared: ahead.is_some_and(|ahead| ahead.fresh && ahead.number == number),
            timeout: step.policy.timeout_ms.map(Duration::from_millis),
            kill_grace: self.options.kill_grace,
        };
        (spec, AttemptRecord::new(record.id, number, files))
    }

    /// Settles an attempt of task `index` that ended: publishes its products and releases what
    /// waits on it, or retries or fails the task. Products of more than [`HASH_INLINE_BYTES`]
    /// are hashed on a blocking thread ([`Message::Hashed`] brings them back), so a large
    /// output does not stall the run loop.
    pub(super) fn finish(
        &mut self,
        ex: &mut Execution,
        index: usize,
        mut attempt: AttemptRecord,
        outcome: AttemptOutcome,
    ) -> Result<(), RunError> {
        record_outcome(&mut attempt, &outcome);
        if !outcome.succeeded() {
            attempt.end = Some(match outcome.ending {
                Ending::TimedOut => AttemptEnd::TimedOut,
                Ending::Cancelled => AttemptEnd::Cancelled,
                _ => AttemptEnd::Failed,
            });
            return self.attempt_failed(ex, index, attempt);
        }
        let slot = &ex.slots[index];
        let step = &self.pipeline.steps[slot.planned.step];
        let trash = self.options.state_dir.join("trash");
        let (tmp, out_dir, task) = (&attempt.tmp_dir, &slot.record.out_dir, slot.record.id);
        match move_into_place(tmp, out_dir, &step.outputs, &trash, task) {
            Ok(moved) if moved.bytes() <= HASH_INLINE_BYTES => {
                self.published(ex, index, attempt, moved.hash())
            }
            Ok(moved) => {
                ex.hashing += 1;
                let sender = ex.sender.clone();
                tokio::task::spawn_blocking(move || {
                    let products = moved.hash();
                    let attempt = Box::new(attempt);
                    let _ = sender.send(Message::Hashed {
                        index,
                        attempt,
                        products,
                    });
                });
                Ok(())
            }
            Err(error) => self.published(ex, index, attempt, Err(error)),
        }
    }

    /// The products of attempt `attempt` of task `index` are hashed, or could not be published:
    /// the task succeeded, or the attempt failed.
    pub(super) fn published(
        &mut self,
        ex: &mut Execution,
        index: usize,
        mut attempt: AttemptRecord,
        products: Result<Vec<ProductRecord>, PublishError>,
    ) -> Result<(), RunError> {
        match products {
            Ok(products) => self.succeeded(ex, index, attempt, products),
            Err(error) => {
                attempt.end = Some(AttemptEnd::Failed);
                attempt.error = Some(error.to_string());
                append_to_log(&attempt.stderr, &format!("engine: {error}\n"));
                self.attempt_failed(ex, index, attempt)
            }
        }
    }

    /// Attempt `attempt` of task `index` ended without success: the task is cancelled, retried
    /// or failed.
    fn attempt_failed(
        &mut self,
        ex: &mut Execution,
        index: usize,
        attempt: AttemptRecord,
    ) -> Result<(), RunError> {
        // Only once the failure is committed: recovery reads "status 0 and no temporary
        // directory" as "published".
        self.journal.remove_after_commit(attempt.tmp_dir.clone());
        let cancelled = attempt.end == Some(AttemptEnd::Cancelled);
        if !cancelled {
            self.progress
                .attempt_failed(&ex.slots[index].record, &attempt);
        }
        let finished = Event::AttemptFinished {
            number: attempt.number,
            end: attempt.end.unwrap_or(AttemptEnd::Failed),
            exit_code: attempt.exit_code,
            signal: attempt.signal,
        };
        let record = &mut ex.slots[index].record;
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
        self.fail_or_retry(ex, index)
    }

    /// Task `index` succeeded with `products`: records it, and readies what waited on it.
    fn succeeded(
        &mut self,
        ex: &mut Execution,
        index: usize,
        mut attempt: AttemptRecord,
        products: Vec<ProductRecord>,
    ) -> Result<(), RunError> {
        attempt.end = Some(AttemptEnd::Succeeded);
        let record = &mut ex.slots[index].record;
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
        ex.slots[index].products = products;
        self.release(ex, index);
        Ok(())
    }

    /// After a failed attempt of task `index`: schedule a retry after the backoff, or fail the
    /// task and block everything downstream of it.
    pub(super) fn fail_or_retry(
        &mut self,
        ex: &mut Execution,
        index: usize,
    ) -> Result<(), RunError> {
        let policy = &self.pipeline.steps[ex.slots[index].planned.step].policy;
        let record = &mut ex.slots[index].record;
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
            ex.retries_pending += 1;
            let sender = ex.sender.clone();
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
        let blocked = slots::block_downstream(&mut ex.slots, index)?;
        self.progress.failed(&failed, blocked.len());
        self.journal.record(move |tx| {
            tx.task_event(&failed, &event)?;
            tx.failed_for_good(&failed)?;
            let blocked_by = Event::TaskBlocked { by: failed.id };
            for task in &blocked {
                tx.task_event(task, &blocked_by)?;
            }
            Ok(())
        });
        Ok(())
    }
}

/// A fault the end-to-end tests inject into a debug build, to prove that a panic in the run loop
/// ends the run as failed: `ENGINE_FAULT=panic-deciding:STEP` panics when a task of `STEP` is
/// decided. Release builds have no such thing.
#[cfg(debug_assertions)]
fn inject_fault(step: &str) {
    let fault = std::env::var("ENGINE_FAULT").unwrap_or_default();
    if fault.strip_prefix("panic-deciding:") == Some(step) {
        panic!("fault injected: deciding a task of {step}");
    }
}

/// Records in `attempt` what its executor measured and how its command ended.
fn record_outcome(attempt: &mut AttemptRecord, outcome: &AttemptOutcome) {
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
}

fn append_to_log(path: &std::path::Path, text: &str) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}
