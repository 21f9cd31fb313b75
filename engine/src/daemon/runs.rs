//! The runs the daemon executes: at most one live run per pipeline. A trigger that fires while
//! one is live is remembered (once) and fires again when the run ends, so data that arrives
//! during a run is picked up by the next one and a burst of triggers never floods the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use dsl::model::Pipeline;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

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
    /// Pipelines with a run going, and that run's id.
    running: BTreeMap<String, u64>,
    /// Pipelines whose trigger fired while their run was going.
    again: BTreeSet<String>,
}

/// The daemon's live runs.
pub struct Runs {
    store: Arc<Store>,
    live: Mutex<Live>,
    tasks: TaskTracker,
    events: mpsc::UnboundedSender<Event>,
}

impl Runs {
    pub fn new(store: Arc<Store>, events: mpsc::UnboundedSender<Event>) -> Runs {
        Runs {
            store,
            live: Mutex::default(),
            tasks: TaskTracker::new(),
            events,
        }
    }

    /// Whether a run of `pipeline` is going; if so, remembers that its trigger fired again.
    pub fn busy_or_queue(&self, pipeline: &str) -> bool {
        let mut live = self.live.lock().expect("runs lock");
        if live.running.contains_key(pipeline) {
            live.again.insert(pipeline.to_string());
            return true;
        }
        false
    }

    /// The run of `pipeline` going now, if any.
    pub fn running(&self, pipeline: &str) -> Option<u64> {
        self.live
            .lock()
            .expect("runs lock")
            .running
            .get(pipeline)
            .copied()
    }

    /// Creates the run (so its id is known at once) and executes it in the background.
    pub fn start(self: &Arc<Self>, launch: Launch) -> Result<RunRecord, RunError> {
        let name = launch.pipeline.name.clone();
        let run = {
            let mut live = self.live.lock().expect("runs lock");
            // Checked under the lock: a trigger and an API call may race for the same pipeline,
            // and a run of ours must never be taken for an orphan by the other's recovery.
            if let Some(&run) = live.running.get(&name) {
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
            live.running.insert(name.clone(), run.id);
            run
        };
        tracing::info!(pipeline = %name, run = run.id, trigger = %run.trigger, "run started");
        let this = self.clone();
        let started = run.clone();
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
            let again = {
                let mut live = this.live.lock().expect("runs lock");
                live.running.remove(&name);
                live.again.remove(&name)
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
