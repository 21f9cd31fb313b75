//! The scheduler: executes a planned run. Tasks become ready in DAG order once everything they
//! consume or come after is done; the highest priority ready task starts first, within the
//! run's [`Capacity`]. A ready task is keyed from its actual inputs and reused from the cache
//! when a completed task with the same key still has its products (see [`super::attempts`] for
//! what happens to one task). Failures are retried with backoff; a task that fails for good
//! blocks only what is downstream of it.
//!
//! Every transition is committed to the store before the scheduler acts on it: an attempt's pid
//! before waiting on it, a task's products before its downstream tasks are released.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dsl::model::{ParamValue, Pipeline};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::attempts::{Decision, Launch};
use super::capacity::Capacity;
use super::claims::Output;
use super::journal::Journal;
use super::launch::{self, Launcher, SubmittedJob};
use super::progress::Progress;
use super::publish::PublishError;
use super::ready::Ready;
use super::slots::{self, Slot};
use super::{RunError, RunOptions};
use crate::exec::files::{self as attempt_files, DecidedLog};
use crate::exec::local::sleep_until;
use crate::exec::{AttemptOutcome, ExecError};
use crate::lifecycle::Event;
use crate::plan::Plan;
use crate::store::{now_ms, AttemptRecord, ProductRecord, RunRecord, Store, TaskRecord};

/// How often the run's record is read for a `cancel_requested` from another process.
const CANCEL_POLL: Duration = Duration::from_millis(250);

/// What the attempts and their backoffs tell the run loop.
pub(super) enum Message {
    /// `sbatch` answered for attempt `attempt` of task `index`.
    Submitted {
        index: usize,
        attempt: Box<AttemptRecord>,
        result: Result<SubmittedJob, ExecError>,
    },
    Finished {
        index: usize,
        attempt: Box<AttemptRecord>,
        outcome: AttemptOutcome,
    },
    /// The products of attempt `attempt` of task `index`, hashed on a blocking thread.
    Hashed {
        index: usize,
        attempt: Box<AttemptRecord>,
        products: Result<Vec<ProductRecord>, PublishError>,
    },
    RetryDue(usize),
}

/// Why a run starts nothing new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// Its engine shuts down: running tasks finish.
    Drain,
    /// It was cancelled: running tasks are killed.
    Cancel,
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
    /// Where local attempts start, when not through the supervisor (the run loop's tests).
    pub local: Option<Box<dyn launch::Local>>,
}

/// A run while it executes: its tasks, and what the run loop keeps between two turns.
pub(super) struct Execution {
    pub run: RunRecord,
    pub slots: Vec<Slot>,
    pub ready: Ready,
    pub capacity: Capacity,
    pub launcher: Launcher,
    /// Started at the gate, released once their start is committed.
    pub starting: Vec<Starting>,
    /// Tasks waiting out their backoff before a retry.
    pub retries_pending: usize,
    /// Tasks whose products are being hashed on a blocking thread.
    pub hashing: usize,
    stopping: Option<Stopping>,
    /// With overlapping runs: tasks whose output another run is producing...
    deferred: Vec<(i64, Reverse<usize>)>,
    /// ...and the outputs this run is done with, given up once that is committed.
    done_with: Vec<Output>,
    pub decided_log: DecidedLog,
    /// Where attempts and backoffs report to the loop.
    pub sender: mpsc::UnboundedSender<Message>,
    /// Kills the running attempts: cancelled by a `cancel_requested` in the store, or from
    /// outside with the run's stop (of which it is a child).
    cancel: CancellationToken,
}

/// An attempt started, held at the executor's gate until it is released.
pub(super) struct Starting {
    pub index: usize,
    pub handle: launch::Started,
    pub attempt: Box<AttemptRecord>,
    /// Whether the start must be committed before the command is released.
    pub commit_first: bool,
}

impl Scheduler<'_> {
    /// Records the plan's tasks and executes them. Returns the run as it ended.
    pub async fn execute(&mut self, run: RunRecord, plan: Plan) -> Result<RunRecord, RunError> {
        let (mut ex, mut receiver) = self.begin(run, plan)?;
        let mut poll = tokio::time::interval(CANCEL_POLL);
        let mut pause = self.options.stop.pause.subscribe();
        let claims = self.options.claims.clone();
        let mut claims_released = claims.as_ref().map(|claims| claims.subscribe());
        loop {
            let paused = *pause.borrow_and_update();
            if let Some(released) = &mut claims_released {
                released.borrow_and_update();
            }
            // A stop that came while the loop handled something else: before anything starts.
            if ex.stopping != Some(Stopping::Cancel) && self.options.stop.cancel.is_cancelled() {
                self.stop(&mut ex, Stopping::Cancel);
            }
            if ex.stopping.is_none() && self.options.stop.drain.is_cancelled() {
                self.stop(&mut ex, Stopping::Drain);
            }
            if ex.stopping.is_none() && !paused {
                self.start_ready(&mut ex)?;
            }
            self.release_started(&mut ex)?;
            if ex.is_over() {
                break;
            }
            tokio::select! {
                Some(message) = receiver.recv() => self.on_message(&mut ex, message)?,
                () = sleep_until(self.journal.due_at()) => {
                    self.commit(&mut ex.done_with, ex.run.id)?;
                }
                _ = claim_released(&mut claims_released), if !ex.deferred.is_empty() => {
                    for (_, Reverse(index)) in std::mem::take(&mut ex.deferred) {
                        self.enqueue(&mut ex, index);
                    }
                }
                _ = poll.tick() => self.poll_cancel(&mut ex)?,
                _ = self.options.stop.cancel.cancelled(), if ex.stopping != Some(Stopping::Cancel) => {
                    self.stop(&mut ex, Stopping::Cancel);
                }
                // Resumed (or paused): the loop starts what can start.
                Ok(()) = pause.changed() => {}
                _ = self.options.stop.drain.cancelled(), if ex.stopping.is_none() => {
                    self.stop(&mut ex, Stopping::Drain);
                }
            }
        }
        self.end(ex)
    }

    /// Records the plan's tasks, starts the run, and readies the tasks that wait on nothing.
    fn begin(
        &mut self,
        run: RunRecord,
        plan: Plan,
    ) -> Result<(Execution, mpsc::UnboundedReceiver<Message>), RunError> {
        let out_root = &self.options.out_root;
        let slots = slots::create(&self.store, self.pipeline, out_root, &run, plan)?;
        self.progress.planned(slots.len());
        let started = Event::RunStarted { tasks: slots.len() };
        let run = self.store.write(|tx| {
            tx.run_event(run.id, &started, |run| {
                run.owner_pid = Some(std::process::id());
            })
        })?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let options = self.options;
        let mut ex = Execution {
            decided_log: DecidedLog::new(&options.state_dir, run.id),
            run,
            ready: Ready::default(),
            capacity: Capacity::new(self.pipeline, options.jobs, options.slurm.queue_size),
            launcher: Launcher::new(options, self.store.clone(), self.local.take()),
            starting: Vec::new(),
            retries_pending: 0,
            hashing: 0,
            stopping: None,
            deferred: Vec::new(),
            done_with: Vec::new(),
            sender,
            cancel: options.stop.cancel.child_token(),
            slots,
        };
        if let Some(claims) = &options.claims {
            claims.plan(ex.slots.iter().map(|slot| self.output(slot)), ex.run.id);
        }
        for index in 0..ex.slots.len() {
            if ex.slots[index].waiting_on == 0 {
                self.enqueue(&mut ex, index);
            }
        }
        Ok((ex, receiver))
    }

    /// Decides and starts ready tasks while there is room.
    fn start_ready(&mut self, ex: &mut Execution) -> Result<(), RunError> {
        while let Some((priority, index)) = ex.next_ready() {
            let step = ex.slots[index].planned.step;
            // The output this task claims, when runs may overlap.
            let claimed = match &self.options.claims {
                Some(claims) => {
                    let output = self.output(&ex.slots[index]);
                    if !claims.try_claim(&output, ex.run.id) {
                        ex.deferred.push((priority, Reverse(index)));
                        continue;
                    }
                    Some(output)
                }
                None => None,
            };
            match self.decide(ex, index)? {
                Decision::Run => {
                    let kind = self.pipeline.steps[step].executor.kind;
                    match self.start(ex, index)? {
                        Launch::Started(attempt) => {
                            ex.capacity.started(step, kind);
                            ex.starting.push(attempt);
                            continue;
                        }
                        // Its slots are taken while `sbatch` runs.
                        Launch::Submitting => {
                            ex.capacity.started(step, kind);
                            continue;
                        }
                        Launch::Failed => self.fail_or_retry(ex, index)?,
                    }
                }
                Decision::Cached => self.release(ex, index),
                // What is downstream is held with it.
                Decision::Held => {}
            }
            // It took no room of its step's.
            ex.done_with.extend(claimed);
            ex.ready.make_room(step, 1);
        }
        Ok(())
    }

    /// Commits what must be before the attempts that started are let through their gate, then
    /// lets them run and waits for each.
    fn release_started(&mut self, ex: &mut Execution) -> Result<(), RunError> {
        if self.journal.is_due() || ex.starting.iter().any(|s| s.commit_first) {
            self.commit(&mut ex.done_with, ex.run.id)?;
        }
        for Starting {
            index,
            mut handle,
            mut attempt,
            commit_first: _,
        } in ex.starting.drain(..)
        {
            handle.release();
            let sender = ex.sender.clone();
            let cancel = ex.cancel.clone();
            tokio::spawn(async move {
                let outcome = handle.wait(cancel, &mut attempt).await;
                let _ = sender.send(Message::Finished {
                    index,
                    attempt,
                    outcome,
                });
            });
        }
        Ok(())
    }

    fn on_message(&mut self, ex: &mut Execution, message: Message) -> Result<(), RunError> {
        match message {
            Message::Submitted {
                index,
                mut attempt,
                result: Ok(job),
            } => {
                let handle = ex.launcher.submitted(job, &mut attempt);
                // SLURM's queue is waited on by the job id committed.
                let started = self.started(ex, index, handle, *attempt, true)?;
                ex.starting.push(started);
                Ok(())
            }
            Message::Submitted {
                index,
                attempt,
                result: Err(error),
            } => {
                self.attempt_ended(ex, index);
                self.launch_failed(ex, index, *attempt, error)?;
                self.fail_or_retry(ex, index)
            }
            Message::Finished {
                index,
                attempt,
                outcome,
            } => {
                self.attempt_ended(ex, index);
                self.finish(ex, index, *attempt, outcome)
            }
            Message::Hashed {
                index,
                attempt,
                products,
            } => {
                ex.hashing -= 1;
                self.published(ex, index, *attempt, products)
            }
            Message::RetryDue(index) => {
                ex.retries_pending -= 1;
                if ex.stopping.is_none() {
                    self.enqueue(ex, index);
                }
                Ok(())
            }
        }
    }

    /// An attempt of task `index` ended, or its submission failed: its slots are free, and its
    /// output is no longer being produced.
    fn attempt_ended(&self, ex: &mut Execution, index: usize) {
        let step = ex.slots[index].planned.step;
        ex.capacity
            .ended(step, self.pipeline.steps[step].executor.kind);
        ex.ready.make_room(step, 1);
        if self.options.claims.is_some() {
            ex.done_with.push(self.output(&ex.slots[index]));
        }
    }

    /// Stops the run on a `cancel_requested` written by another process.
    fn poll_cancel(&mut self, ex: &mut Execution) -> Result<(), RunError> {
        if ex.stopping != Some(Stopping::Cancel) && self.store.run(ex.run.id)?.cancel_requested {
            ex.stopping = Some(Stopping::Cancel);
            ex.cancel.cancel();
            self.progress.note("cancel requested: stopping the run");
        }
        Ok(())
    }

    /// Stops the run on its engine's word: a signal (cancel), or the daemon shutting down
    /// (drain).
    fn stop(&mut self, ex: &mut Execution, how: Stopping) {
        ex.stopping = Some(how);
        let (note, event) = match how {
            Stopping::Cancel => ("stopped: cancelling the run", Event::RunStopped),
            Stopping::Drain => (
                "stopping: no new task starts; the running ones finish",
                Event::RunStopping,
            ),
        };
        self.progress.note(note);
        let run = ex.run.id;
        self.journal
            .record(move |tx| tx.run_event(run, &event, |_| {}).map(drop));
    }

    /// Cancels what never got to run and ends the run.
    fn end(&mut self, mut ex: Execution) -> Result<RunRecord, RunError> {
        let leftovers = slots::cancel_unfinished(&mut ex.slots)?;
        let ended = slots::run_end(&ex.slots, ex.stopping.is_some());
        self.journal.commit(&self.store)?;
        if let Some(claims) = &self.options.claims {
            claims.release(ex.slots.iter().map(|slot| self.output(slot)), ex.run.id);
        }
        let run = self.store.write(|tx| {
            for task in &leftovers {
                tx.task_event(task, &Event::TaskCancelled)?;
            }
            tx.run_event(ex.run.id, &ended, |run| {
                run.finished_ms = Some(now_ms());
                run.owner_pid = None;
            })
        })?;
        let state = &self.options.state_dir;
        for slot in &ex.slots {
            if let Some(ahead) = slot
                .ahead
                .filter(|ahead| slot.record.attempts < ahead.number)
            {
                attempt_files::unprepare(state, &slot.record, ahead.number);
            }
        }
        // Everything they could tell recovery is committed now.
        ex.decided_log.remove();
        let _ = std::fs::remove_file(attempt_files::ended_log(state, run.id));
        let records: Vec<TaskRecord> = ex.slots.into_iter().map(|s| s.record).collect();
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

    /// Adds task `index` to the ready queue.
    fn enqueue(&self, ex: &mut Execution, index: usize) {
        let step = &self.pipeline.steps[ex.slots[index].planned.step];
        let at = ex.slots[index].planned.step;
        ex.ready
            .push(step.policy.priority, index, at, step.executor.kind);
    }

    /// Marks task `index` done for its downstream tasks; those with nothing left to wait for
    /// are ready.
    pub(super) fn release(&self, ex: &mut Execution, index: usize) {
        for next in slots::release(&mut ex.slots, index) {
            self.enqueue(ex, next);
        }
    }
}

impl Execution {
    /// The next task that may start, with its priority: the best ready task on an executor
    /// with room, passing over (and setting aside) the tasks of steps at their limit.
    fn next_ready(&mut self) -> Option<(i64, usize)> {
        let (capacity, launcher) = (&self.capacity, &self.launcher);
        self.ready.pop(
            |kind| capacity.has_room(kind) && launcher.ready(kind),
            |step| capacity.step_full(step),
        )
    }

    /// Whether nothing runs or waits for a retry, and nothing more will start.
    fn is_over(&self) -> bool {
        let nothing_ready = self.ready.is_empty() && self.deferred.is_empty();
        self.capacity.running() == 0
            && self.retries_pending == 0
            && self.hashing == 0
            && (nothing_ready || self.stopping.is_some())
    }
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

#[cfg(test)]
mod tests;
