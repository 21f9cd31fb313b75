//! Claims on output directories, for runs of one pipeline that overlap (`overlap allow` in the
//! daemon). A task's products are published to `OUT/PIPELINE/STEP/GROUP`, the same directory in
//! every run, so two runs must never produce it at once. Before a task is decided, its run
//! claims the directory; a task whose directory another run holds waits until that run's task
//! has ended and its outcome is committed, and is then decided afresh: usually it is cached.
//!
//! Runs of different processes never overlap (the store refuses a second live run), so the
//! claims live in memory, shared by the runs of one daemon.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Which output directory: pipeline, step and group (`None` for an aggregate).
pub type Output = (String, String, Option<String>);

/// The output directories being produced, and by which run.
pub struct Claims {
    held: Mutex<HashMap<Output, u64>>,
    /// Bumped on every release, so waiting runs look again.
    released: watch::Sender<u64>,
}

impl Default for Claims {
    fn default() -> Claims {
        Claims {
            held: Mutex::default(),
            released: watch::Sender::new(0),
        }
    }
}

impl Claims {
    /// Claims `output` for `run`. False when another run holds it.
    pub fn try_claim(&self, output: &Output, run: u64) -> bool {
        let mut held = self.held.lock().expect("claims lock");
        match held.get(output) {
            Some(&holder) => holder == run,
            None => {
                held.insert(output.clone(), run);
                true
            }
        }
    }

    /// Gives up `run`'s claims on `outputs`; runs waiting for one of them look again.
    pub fn release(&self, outputs: impl IntoIterator<Item = Output>, run: u64) {
        let mut held = self.held.lock().expect("claims lock");
        let mut any = false;
        for output in outputs {
            if held.get(&output) == Some(&run) {
                held.remove(&output);
                any = true;
            }
        }
        drop(held);
        if any {
            self.released.send_modify(|n| *n += 1);
        }
    }

    /// Gives up every claim `run` holds (it ended without giving them up one by one: its loop
    /// failed).
    pub fn release_run(&self, run: u64) {
        let mut held = self.held.lock().expect("claims lock");
        let before = held.len();
        held.retain(|_, holder| *holder != run);
        let any = held.len() != before;
        drop(held);
        if any {
            self.released.send_modify(|n| *n += 1);
        }
    }

    /// Whether some run is producing `output` now.
    pub fn held(&self, output: &Output) -> bool {
        self.held.lock().expect("claims lock").contains_key(output)
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
