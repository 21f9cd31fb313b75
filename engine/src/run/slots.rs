//! The tasks of a run as the scheduler tracks them: one [`Slot`] per planned task, linked to
//! what it waits on and what waits on it, created in the store when the run is planned.

use std::collections::BTreeMap;

use dsl::model::step::ExecutorKind;
use dsl::model::Pipeline;

use super::paths::out_dir;
use crate::lifecycle::{self, Event, IllegalTransition};
use crate::plan::{Plan, PlannedTask};
use crate::store::{now_ms, ProductRecord, RunRecord, Store, StoreError, TaskRecord, TaskStatus};

/// A task as the scheduler tracks it.
pub struct Slot {
    pub planned: PlannedTask,
    pub record: TaskRecord,
    /// Upstream and `after` tasks not yet done.
    pub waiting_on: usize,
    /// Tasks that consume this one or come after it.
    pub downstream: Vec<usize>,
    pub products: Vec<ProductRecord>,
    /// The files [`crate::exec::files::prepare`] created ahead of the task's next attempt, if
    /// any.
    pub ahead: Option<FilesAhead>,
}

/// Files created for an attempt before it started.
#[derive(Clone, Copy)]
pub struct FilesAhead {
    /// The attempt's number.
    pub number: u32,
    /// Whether every one of them was created new (and so is empty).
    pub fresh: bool,
}

/// Creates the task records of `plan` (in the lifecycle's first status, with `run.planned`),
/// one transaction for them all, and links them.
pub fn create(
    store: &Store,
    pipeline: &Pipeline,
    out_root: &std::path::Path,
    run: &RunRecord,
    plan: Plan,
) -> Result<Vec<Slot>, StoreError> {
    let records = store.write(|tx| {
        let mut records = Vec::with_capacity(plan.tasks.len());
        for planned in &plan.tasks {
            let step = &pipeline.steps[planned.step];
            let group = planned.group.as_deref();
            records.push(tx.create_task(TaskRecord {
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
                out_dir: out_dir(out_root, &pipeline.name, &step.name, group),
                products: Vec::new(),
                attempts: 0,
                blocked_by: None,
                command: String::new(),
                finished_ms: None,
            })?);
        }
        let planned = Event::RunPlanned {
            tasks: records.len(),
        };
        tx.run_event(run.id, &planned, |_| {})?;
        Ok(records)
    })?;
    let mut slots: Vec<Slot> = plan
        .tasks
        .into_iter()
        .zip(records)
        .map(|(planned, record)| Slot {
            waiting_on: planned.upstream.len() + planned.after.len(),
            planned,
            record,
            downstream: Vec::new(),
            products: Vec::new(),
            ahead: None,
        })
        .collect();
    for index in 0..slots.len() {
        let planned = &slots[index].planned;
        let sources: Vec<usize> = planned
            .upstream
            .iter()
            .chain(&planned.after)
            .copied()
            .collect();
        for upstream in sources {
            slots[upstream].downstream.push(index);
        }
    }
    Ok(slots)
}

/// Marks `index` done for its downstream tasks; returns those left with nothing to wait for.
pub fn release(slots: &mut [Slot], index: usize) -> Vec<usize> {
    let downstream = slots[index].downstream.clone();
    let mut ready = Vec::new();
    for next in downstream {
        slots[next].waiting_on -= 1;
        if slots[next].waiting_on == 0 && slots[next].record.status == TaskStatus::Pending {
            ready.push(next);
        }
    }
    ready
}

/// The local tasks that wait only on task `index`, which is starting, and whose next attempt's
/// files were not created yet: they can be while it starts and runs (see
/// [`crate::exec::files::prepare`]).
pub fn waiting_only_on(
    slots: &[Slot],
    index: usize,
    pipeline: &Pipeline,
) -> Vec<(usize, TaskRecord)> {
    slots[index]
        .downstream
        .iter()
        .map(|&down| (down, &slots[down]))
        .filter(|(_, slot)| {
            slot.waiting_on == 1
                && slot.record.status == TaskStatus::Pending
                && slot.ahead.is_none()
                && pipeline.steps[slot.planned.step].executor.kind == ExecutorKind::Local
        })
        .map(|(down, slot)| (down, slot.record.clone()))
        .collect()
}

/// Blocks every task downstream of `failed` (transitively); returns their updated records.
pub fn block_downstream(
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

/// Cancels every task not yet final (the run stopped before it got to them); returns their
/// updated records.
pub fn cancel_unfinished(slots: &mut [Slot]) -> Result<Vec<TaskRecord>, IllegalTransition> {
    let mut cancelled = Vec::new();
    for slot in slots.iter_mut().filter(|s| !s.record.status.is_final()) {
        slot.record.apply(&Event::TaskCancelled)?;
        slot.record.finished_ms = Some(now_ms());
        cancelled.push(slot.record.clone());
    }
    Ok(cancelled)
}

/// How a run ends: cancelled when it was stopped, else succeeded when every task is done or held
/// (a held task's failure was its earlier run's).
pub fn run_end(slots: &[Slot], stopped: bool) -> Event {
    let not_done = slots
        .iter()
        .filter(|s| !s.record.status.is_done() && s.record.status != TaskStatus::Held)
        .count();
    let why = || format!("{not_done} of {} tasks not done", slots.len());
    if stopped {
        Event::RunCancelled { why: why() }
    } else if not_done == 0 {
        Event::RunSucceeded
    } else {
        Event::RunFailed { why: why() }
    }
}
