//! The ready queue: the tasks whose upstream is done, in the order they start (highest priority
//! first, then plan order), kept so that finding the next task that may start costs the same
//! however many wait. There is one heap per executor, so a full executor is passed over without
//! looking at its tasks, and the tasks of a step at its `concurrency` limit are set aside, per
//! step, until one of the step's tasks ends: a queue that held them would be searched past them
//! again and again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use dsl::model::step::ExecutorKind;

/// Priority, plan order (earlier first), step.
type Entry = (i64, Reverse<usize>, usize);

#[derive(Default)]
pub struct Ready {
    local: BinaryHeap<Entry>,
    slurm: BinaryHeap<Entry>,
    /// Tasks set aside while their step was at its concurrency limit, with the step's executor.
    aside: HashMap<usize, (ExecutorKind, BinaryHeap<Entry>)>,
    len: usize,
}

impl Ready {
    fn heap(&mut self, kind: ExecutorKind) -> &mut BinaryHeap<Entry> {
        match kind {
            ExecutorKind::Local => &mut self.local,
            ExecutorKind::Slurm => &mut self.slurm,
        }
    }

    /// Adds task `index` of `step`, which runs on `kind`.
    pub fn push(&mut self, priority: i64, index: usize, step: usize, kind: ExecutorKind) {
        self.heap(kind).push((priority, Reverse(index), step));
        self.len += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the first task that may start now, with its priority: the best of the executors
    /// for which `room` holds, passing over (and setting aside) tasks whose step is `full`.
    pub fn pop(
        &mut self,
        room: impl Fn(ExecutorKind) -> bool,
        full: impl Fn(usize) -> bool,
    ) -> Option<(i64, usize)> {
        loop {
            let local = self.local.peek().filter(|_| room(ExecutorKind::Local));
            let slurm = self.slurm.peek().filter(|_| room(ExecutorKind::Slurm));
            let kind = match (local, slurm) {
                (Some(l), Some(s)) if s > l => ExecutorKind::Slurm,
                (Some(_), _) => ExecutorKind::Local,
                (None, Some(_)) => ExecutorKind::Slurm,
                (None, None) => return None,
            };
            let entry = self.heap(kind).pop()?;
            let (priority, Reverse(index), step) = entry;
            if full(step) {
                let (_, aside) = self
                    .aside
                    .entry(step)
                    .or_insert_with(|| (kind, BinaryHeap::new()));
                aside.push(entry);
                continue;
            }
            self.len -= 1;
            return Some((priority, index));
        }
    }

    /// Step `step` has room for `free` more tasks: as many of those set aside for it may start.
    pub fn make_room(&mut self, step: usize, free: usize) {
        let Some((kind, aside)) = self.aside.get_mut(&step) else {
            return;
        };
        let kind = *kind;
        let mut back = Vec::new();
        for _ in 0..free {
            match aside.pop() {
                Some(entry) => back.push(entry),
                None => break,
            }
        }
        if aside.is_empty() {
            self.aside.remove(&step);
        }
        self.heap(kind).extend(back);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(ready: &mut Ready, full: impl Fn(usize) -> bool) -> Vec<usize> {
        std::iter::from_fn(|| ready.pop(|_| true, &full).map(|(_, i)| i)).collect()
    }

    #[test]
    fn tasks_come_out_by_priority_then_plan_order() {
        let mut ready = Ready::default();
        ready.push(0, 3, 0, ExecutorKind::Local);
        ready.push(5, 4, 1, ExecutorKind::Slurm);
        ready.push(0, 1, 0, ExecutorKind::Local);
        ready.push(5, 2, 0, ExecutorKind::Local);
        assert_eq!(drain(&mut ready, |_| false), vec![2, 4, 1, 3]);
        assert!(ready.is_empty());
    }

    #[test]
    fn a_full_executor_is_passed_over() {
        let mut ready = Ready::default();
        ready.push(9, 0, 0, ExecutorKind::Local);
        ready.push(0, 1, 1, ExecutorKind::Slurm);
        let slurm_only = |kind| kind == ExecutorKind::Slurm;
        assert_eq!(ready.pop(slurm_only, |_| false), Some((0, 1)));
        assert_eq!(ready.pop(slurm_only, |_| false), None);
        assert!(!ready.is_empty());
        assert_eq!(ready.pop(|_| true, |_| false), Some((9, 0)));
        assert!(ready.is_empty());
    }

    #[test]
    fn a_full_steps_tasks_wait_aside_until_it_has_room() {
        let mut ready = Ready::default();
        for index in 0..5 {
            ready.push(0, index, 0, ExecutorKind::Local);
        }
        ready.push(0, 9, 1, ExecutorKind::Local);
        // Step 0 is full: its tasks are set aside, step 1's comes out.
        assert_eq!(drain(&mut ready, |step| step == 0), vec![9]);
        assert!(!ready.is_empty());
        ready.make_room(0, 2);
        assert_eq!(drain(&mut ready, |_| false), vec![0, 1]);
        ready.make_room(0, 10);
        assert_eq!(drain(&mut ready, |_| false), vec![2, 3, 4]);
        assert!(ready.is_empty());
        ready.make_room(0, 1);
        assert!(ready.is_empty());
    }
}
