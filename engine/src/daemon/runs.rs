//! The runs the daemon executes. A trigger that fires while a run of its pipeline is live is
//! handled by the pipeline's `overlap` policy: `queue` (the default) remembers it, once, and
//! fires again when the run ends, so data that arrives during a run is picked up by the next
//! one and a burst of triggers never floods the store; `skip` drops it; `allow` starts another
//! run at once (the runs take turns at each output, see [`crate::run::claims`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex};

use dsl::model::{Overlap, Pipeline};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::webhooks::Webhooks;
use super::Event;
use crate::run::progress::Progress;
use crate::run::{create_run, execute_run, RunError, RunOptions, RunRequest};
use crate::store::{RunRecord, Store};

/// What a run of the daemon is made of.
pub struct Launch {
    pub pipeline: Arc<Pipeline>,
    pub request: RunRequest,
    pub options: RunOptions,
}

#[derive(Default)]
struct Live {
    /// Pipelines with runs going, and their ids.
    running: BTreeMap<String, BTreeSet<u64>>,
    /// Pipelines whose trigger fired while their run was going.
    again: BTreeSet<String>,
}

/// The daemon's live runs.
pub struct Runs {
    store: Arc<Store>,
    live: Mutex<Live>,
    tasks: TaskTracker,
    events: mpsc::UnboundedSender<Event>,
    webhooks: Arc<Webhooks>,
    /// Whether the runs a dead daemon left are settled: until then no run starts, so that none
    /// is taken for an orphan, or races the settling of one (the API serves from the start).
    settled: (Mutex<bool>, Condvar),
}

impl Runs {
    pub fn new(
        store: Arc<Store>,
        events: mpsc::UnboundedSender<Event>,
        webhooks: Arc<Webhooks>,
    ) -> Runs {
        Runs {
            store,
            live: Mutex::default(),
            tasks: TaskTracker::new(),
            events,
            webhooks,
            settled: (Mutex::new(false), Condvar::new()),
        }
    }

    /// Lets runs start: the runs a dead daemon left are settled.
    pub fn open(&self) {
        let (settled, changed) = &self.settled;
        *settled.lock().expect("runs lock") = true;
        changed.notify_all();
    }

    /// Blocks until [`Runs::open`] (at once, after the daemon's start).
    fn wait_until_open(&self) {
        let (settled, changed) = &self.settled;
        let guard = settled.lock().expect("runs lock");
        drop(
            changed
                .wait_while(guard, |settled| !*settled)
                .expect("runs lock"),
        );
    }

    /// Whether a trigger of `pipeline` that fires now must not start a run, by its overlap
    /// policy, while a run of it is going: `skip` drops the fire, `queue` remembers it for when
    /// the run ends, `allow` holds nothing back.
    pub fn hold_fire(&self, pipeline: &str, overlap: Overlap) -> bool {
        let mut live = self.live.lock().expect("runs lock");
        if !live.running.contains_key(pipeline) {
            return false;
        }
        match overlap {
            Overlap::Skip => {
                tracing::info!(
                    pipeline,
                    "the trigger fired while a run is going: skipped (overlap skip)"
                );
                true
            }
            Overlap::Queue => {
                live.again.insert(pipeline.to_string());
                true
            }
            Overlap::Allow => false,
        }
    }

    /// Creates the run (so its id is known at once) and executes it in the background.
    /// Before the daemon has settled the runs its dead predecessor left, waits for that (a run
    /// asked for over the API; the triggers only fire afterwards).
    pub fn start(self: &Arc<Self>, launch: Launch) -> Result<RunRecord, RunError> {
        self.wait_until_open();
        let name = launch.pipeline.name.clone();
        let run = {
            let mut live = self.live.lock().expect("runs lock");
            // Checked under the lock: a trigger and an API call may race for the same pipeline,
            // and a run of ours must never be taken for an orphan by the other's recovery.
            let newest = live.running.get(&name).and_then(|runs| runs.last());
            if let (Some(&run), false) = (newest, launch.pipeline.overlap == Overlap::Allow) {
                return Err(RunError::AlreadyRunning {
                    pipeline: name,
                    run,
                    pid: std::process::id(),
                });
            }
            let run = create_run(
                &self.store,
                &launch.pipeline,
                launch.request,
                &launch.options,
            )?;
            live.running.entry(name.clone()).or_default().insert(run.id);
            run
        };
        if let Err(error) = self.webhooks.expect(&launch.pipeline.notify, run.id) {
            tracing::error!(run = run.id, %error, "cannot keep the run's webhooks: they may not be sent");
        }
        tracing::info!(pipeline = %name, run = run.id, trigger = %run.trigger, "run started");
        let this = self.clone();
        let started = run.clone();
        let started_id = run.id;
        self.tasks.spawn(async move {
            let mut progress = Progress::silent();
            let result = execute_run(
                this.store.clone(),
                &launch.pipeline,
                started,
                &launch.options,
                &mut progress,
            )
            .await;
            match &result {
                Ok(run) => tracing::info!(
                    pipeline = %run.pipeline, run = run.id, status = run.status.as_str(),
                    "run finished"
                ),
                Err(error) => tracing::error!(pipeline = %name, %error, "run failed to execute"),
            }
            this.webhooks.run_ended(started_id);
            let again = {
                let mut live = this.live.lock().expect("runs lock");
                if let Some(runs) = live.running.get_mut(&name) {
                    runs.remove(&started_id);
                    if runs.is_empty() {
                        live.running.remove(&name);
                    }
                }
                // A fire queued behind this run waits for the last of them.
                !live.running.contains_key(&name) && live.again.remove(&name)
            };
            let _ = this.events.send(Event::RunEnded {
                pipeline: name,
                run: result.ok(),
                again,
            });
        });
        Ok(run)
    }

    /// Waits for every run to end (after they were told to stop).
    pub async fn wait(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}
