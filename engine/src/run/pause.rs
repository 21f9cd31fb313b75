//! Holding back new task starts: while a [`Pause`] is paused, the scheduler of every run that
//! shares it starts no task (and decides no cached one); tasks already running go on. Resuming
//! wakes the schedulers at once. The daemon shares one pause among all its runs; `engine run`
//! has one of its own that is never paused.

use std::sync::Arc;

use tokio::sync::watch;

/// A shared on/off switch for new task starts. Clones share the switch.
#[derive(Debug, Clone)]
pub struct Pause {
    /// `true` while paused. Held in an `Arc` so that every clone, and every receiver made by
    /// [`Pause::subscribe`], sees one value; the sender outlives the receivers of a run, since
    /// the run's options hold a clone.
    switch: Arc<watch::Sender<bool>>,
}

impl Default for Pause {
    fn default() -> Pause {
        Pause {
            switch: Arc::new(watch::channel(false).0),
        }
    }
}

impl Pause {
    /// Pauses (`true`) or resumes (`false`) new task starts. Returns whether that changed
    /// anything.
    pub fn set(&self, paused: bool) -> bool {
        self.switch.send_if_modified(|current| {
            let changed = *current != paused;
            *current = paused;
            changed
        })
    }

    pub fn is_paused(&self) -> bool {
        *self.switch.borrow()
    }

    /// A receiver that is told of every change, for a scheduler's loop.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.switch.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_the_switch_and_receivers_hear_of_changes() {
        let pause = Pause::default();
        let other = pause.clone();
        let mut receiver = other.subscribe();
        assert!(!other.is_paused());
        assert!(pause.set(true));
        assert!(!pause.set(true), "already paused");
        assert!(other.is_paused());
        receiver.changed().await.unwrap();
        assert!(*receiver.borrow_and_update());
        assert!(other.set(false));
        receiver.changed().await.unwrap();
        assert!(!*receiver.borrow_and_update());
    }
}
