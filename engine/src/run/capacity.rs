//! `Capacity`: every limit on how many attempts run at once, counted in one place. An attempt
//! takes one slot of its executor (`--jobs` local attempts; the SLURM queue size for SLURM jobs)
//! and one of its step's `concurrency`, from its start until it ends or fails to start.

use dsl::model::step::ExecutorKind;
use dsl::model::Pipeline;

pub struct Capacity {
    /// `--jobs`: local attempts at once.
    jobs: usize,
    /// SLURM jobs in the queue at once.
    slurm_queue: usize,
    running_local: usize,
    running_slurm: usize,
    /// Per step (by index): its `concurrency` limit, and how many of its attempts run.
    steps: Vec<(Option<u32>, u32)>,
}

impl Capacity {
    pub fn new(pipeline: &Pipeline, jobs: usize, slurm_queue: usize) -> Capacity {
        Capacity {
            jobs,
            slurm_queue: slurm_queue.max(1),
            running_local: 0,
            running_slurm: 0,
            steps: pipeline
                .steps
                .iter()
                .map(|step| (step.policy.concurrency, 0))
                .collect(),
        }
    }

    /// Whether another attempt on `kind` may start.
    pub fn has_room(&self, kind: ExecutorKind) -> bool {
        match kind {
            ExecutorKind::Local => self.running_local < self.jobs,
            ExecutorKind::Slurm => self.running_slurm < self.slurm_queue,
        }
    }

    /// Whether step `step` runs as many attempts as its `concurrency` allows.
    pub fn step_full(&self, step: usize) -> bool {
        let (limit, running) = self.steps[step];
        limit.is_some_and(|limit| running >= limit)
    }

    /// An attempt of `step` on `kind` started: it holds a slot of each until [`Self::ended`].
    pub fn started(&mut self, step: usize, kind: ExecutorKind) {
        self.steps[step].1 += 1;
        match kind {
            ExecutorKind::Local => self.running_local += 1,
            ExecutorKind::Slurm => self.running_slurm += 1,
        }
    }

    /// An attempt of `step` on `kind` ended: its slots are free.
    pub fn ended(&mut self, step: usize, kind: ExecutorKind) {
        let running = &mut self.steps[step].1;
        *running = running.saturating_sub(1);
        let executor = match kind {
            ExecutorKind::Local => &mut self.running_local,
            ExecutorKind::Slurm => &mut self.running_slurm,
        };
        *executor = executor.saturating_sub(1);
    }

    /// How many attempts run, on every executor.
    pub fn running(&self) -> usize {
        self.running_local + self.running_slurm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(jobs: usize, limits: &[Option<u32>]) -> Capacity {
        Capacity {
            jobs,
            slurm_queue: 1,
            running_local: 0,
            running_slurm: 0,
            steps: limits.iter().map(|l| (*l, 0)).collect(),
        }
    }

    #[test]
    fn each_executor_and_each_step_is_counted_on_its_own() {
        let mut capacity = capacity(2, &[Some(1), None]);
        assert!(capacity.has_room(ExecutorKind::Local) && !capacity.step_full(0));
        capacity.started(0, ExecutorKind::Local);
        assert!(capacity.step_full(0), "step 0 allows one at a time");
        assert!(capacity.has_room(ExecutorKind::Local));
        capacity.started(1, ExecutorKind::Local);
        assert!(
            !capacity.has_room(ExecutorKind::Local),
            "--jobs 2 is used up"
        );
        assert!(
            capacity.has_room(ExecutorKind::Slurm),
            "SLURM has its own slots"
        );
        capacity.started(1, ExecutorKind::Slurm);
        assert!(!capacity.has_room(ExecutorKind::Slurm));
        assert!(!capacity.step_full(1), "step 1 has no limit");
        assert_eq!(capacity.running(), 3);
        capacity.ended(0, ExecutorKind::Local);
        assert!(!capacity.step_full(0) && capacity.has_room(ExecutorKind::Local));
        assert_eq!(capacity.running(), 2);
    }
}
