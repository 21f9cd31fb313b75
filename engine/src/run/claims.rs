//! Claims on output directories, for runs of one pipeline that overlap (`overlap allow` in the
//! daemon). A task's products are published to `OUT/PIPELINE/STEP/GROUP`, the same directory in
//! every run, so two runs must never produce it at once. Before a task is decided, its run
//! claims the directory; a task whose directory another run holds waits until that run's task
//! has ended and its outcome is committed, and is then decided afresh: usually it is cached.
//!
//! Runs of different processes never overlap (the store refuses a second live run), so the
//! claims live in memory, shared by the runs of one daemon.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use tokio::sync::watch;

/// Which output directory: pipeline, step and group (`None` for an aggregate).
pub type Output = (String, String, Option<String>);

/// The output directories being produced, and by which run.
pub struct Claims {
    state: Mutex<State>,
    /// Bumped on every release, so waiting runs look again.
    released: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    held: HashMap<Output, u64>,
    /// The outputs each live run has planned and is not done with, by output: a newer run
    /// leaves them to the older one (which may not have reached them yet), and a trigger does
    /// not fire for them.
    planned: HashMap<Output, BTreeSet<u64>>,
}

impl Default for Claims {
    fn default() -> Claims {
        Claims {
            state: Mutex::default(),
            released: watch::Sender::new(0),
        }
    }
}

impl Claims {
    /// Records the outputs `run` has planned; each is given up with [`Claims::release`] (or
    /// [`Claims::release_run`]) like a claim.
    pub fn plan(&self, outputs: impl IntoIterator<Item = Output>, run: u64) {
        let mut state = self.state.lock().expect("claims lock");
        for output in outputs {
            state.planned.entry(output).or_default().insert(run);
        }
    }

    /// Claims `output` for `run`. False when another run holds it, or an older run has planned
    /// it and is not done with it. (Runs wait only for older runs' plans, and a held claim
    /// waits for nothing, so no two runs wait for each other.)
    pub fn try_claim(&self, output: &Output, run: u64) -> bool {
        let mut state = self.state.lock().expect("claims lock");
        let older_plans = state
            .planned
            .get(output)
            .and_then(|runs| runs.first())
            .is_some_and(|&oldest| oldest < run);
        if older_plans {
            return false;
        }
        match state.held.get(output) {
            Some(&holder) => holder == run,
            None => {
                state.held.insert(output.clone(), run);
                true
            }
        }
    }

    /// Gives up `run`'s claims on `outputs`; runs waiting for one of them look again.
    pub fn release(&self, outputs: impl IntoIterator<Item = Output>, run: u64) {
        let mut state = self.state.lock().expect("claims lock");
        let mut any = false;
        for output in outputs {
            if state.held.get(&output) == Some(&run) {
                state.held.remove(&output);
                any = true;
            }
            if let Some(runs) = state.planned.get_mut(&output) {
                any |= runs.remove(&run);
                if runs.is_empty() {
                    state.planned.remove(&output);
                }
            }
        }
        drop(state);
        if any {
            self.released.send_modify(|n| *n += 1);
        }
    }

    /// Gives up every claim `run` holds (it ended without giving them up one by one: its loop
    /// failed).
    pub fn release_run(&self, run: u64) {
        let mut state = self.state.lock().expect("claims lock");
        let before = state.held.len();
        state.held.retain(|_, holder| *holder != run);
        let mut any = state.held.len() != before;
        state.planned.retain(|_, runs| {
            any |= runs.remove(&run);
            !runs.is_empty()
        });
        drop(state);
        if any {
            self.released.send_modify(|n| *n += 1);
        }
    }

    /// Whether some run is producing `output` now.
    pub fn held(&self, output: &Output) -> bool {
        self.state
            .lock()
            .expect("claims lock")
            .held
            .contains_key(output)
    }

    /// Whether some live run is producing `output` or has it still to do.
    pub fn busy(&self, output: &Output) -> bool {
        let state = self.state.lock().expect("claims lock");
        state.held.contains_key(output) || state.planned.contains_key(output)
    }

    /// Changes whenever a claim is released.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.released.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(group: &str) -> Output {
        ("p".into(), "align".into(), Some(group.into()))
    }

    #[test]
    fn one_run_at_a_time_holds_an_output() {
        let claims = Claims::default();
        assert!(claims.try_claim(&output("a"), 1));
        assert!(claims.try_claim(&output("a"), 1), "a run may claim again");
        assert!(!claims.try_claim(&output("a"), 2));
        assert!(claims.try_claim(&output("b"), 2), "other outputs are free");
        // Only the holder releases.
        claims.release([output("a")], 2);
        assert!(!claims.try_claim(&output("a"), 2));
        claims.release([output("a")], 1);
        assert!(!claims.held(&output("a")));
        assert!(claims.try_claim(&output("a"), 2));
    }

    #[test]
    fn a_newer_run_leaves_an_older_runs_planned_output_to_it() {
        let claims = Claims::default();
        claims.plan([output("a"), output("b")], 1);
        claims.plan([output("a"), output("b"), output("c")], 2);
        assert!(claims.busy(&output("a")) && !claims.held(&output("a")));
        assert!(!claims.try_claim(&output("a"), 2), "run 1 has it to do");
        assert!(claims.try_claim(&output("c"), 2), "only run 2 planned c");
        assert!(
            claims.try_claim(&output("a"), 1),
            "the older run is not held back"
        );
        claims.release([output("a")], 1);
        assert!(claims.try_claim(&output("a"), 2), "run 1 is done with a");
        claims.release_run(1);
        assert!(claims.try_claim(&output("b"), 2), "run 1 ended");
        claims.release([output("a"), output("b"), output("c")], 2);
        assert!(!claims.busy(&output("a")) && !claims.busy(&output("c")));
    }

    #[tokio::test]
    async fn a_release_wakes_the_waiting_runs() {
        let claims = Claims::default();
        let mut waiting = claims.subscribe();
        waiting.borrow_and_update();
        assert!(claims.try_claim(&output("a"), 1));
        claims.release([output("a")], 1);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting.changed())
            .await
            .expect("woken")
            .unwrap();
    }

    #[test]
    fn a_failed_run_gives_up_all_it_held_and_only_that() {
        let claims = Claims::default();
        assert!(claims.try_claim(&output("a"), 1));
        assert!(claims.try_claim(&output("b"), 1));
        assert!(claims.try_claim(&output("c"), 2));
        claims.release_run(1);
        assert!(!claims.held(&output("a")) && !claims.held(&output("b")));
        assert!(claims.held(&output("c")));
    }
}
