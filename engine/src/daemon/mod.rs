//! `engine daemon`: standing pipelines. It loads every `.pipe` file under a directory, keeps them
//! up to date as they change ([`registry`]), fires their triggers ([`continuous`] on new data
//! that has settled, [`cron`] on schedule) and executes the runs ([`runs`]), one live run per
//! pipeline. Everything goes through the same store and run machinery as `engine run`.
//!
//! One loop owns the decisions: file-system events, poll ticks, cron fires and ended runs all
//! arrive on one channel as [`Event`]s, so nothing about a pipeline is decided twice at once.

pub mod backups;
pub mod continuous;
pub mod control;
pub mod cron;
pub mod registry;
pub mod runs;
pub mod webhooks;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dsl::model::{Pipeline, Trigger};
use tokio::sync::mpsc;

use crate::api::control::StepGap;
use crate::run::claims::Claims;
use crate::run::{recovery, Force, RunOptions, RunRequest, Stop};
use crate::store::{RunRecord, Store};
use registry::Registry;
use runs::{Launch, Runs};
use webhooks::{WebhookSettings, Webhooks};

/// How long the daemon waits after a file-system event before it looks, so that a burst of
/// events (a hundred files copied in) makes one look.
const EVENT_DEBOUNCE: Duration = Duration::from_millis(20);

/// How long the daemon waits after a `.pipe` file changed before it loads it.
const PIPE_DEBOUNCE: Duration = Duration::from_millis(200);

/// How long the daemon, once its runs have stopped, waits for webhooks still being delivered.
const WEBHOOK_GRACE: Duration = Duration::from_secs(5);

/// How the daemon is set up.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Where the `.pipe` files are.
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    /// Products go to `OUT/PIPELINE/STEP/GROUP`.
    pub out_root: PathBuf,
    /// Task slots per run.
    pub jobs: usize,
    /// How often the `.pipe` files are looked at again, besides file-system events.
    pub rescan: Duration,
    /// After SIGTERM: how long running tasks may take to finish before they are stopped.
    pub grace: Duration,
    /// How SLURM steps are submitted and watched (per run).
    pub slurm: crate::exec::slurm::SlurmSettings,
    pub webhooks: WebhookSettings,
    /// The rolling backups of the store.
    pub backups: backups::BackupSettings,
}

/// What the daemon's loop acts on.
#[derive(Debug)]
pub enum Event {
    /// Something changed under a watched path.
    Changed(PathBuf),
    /// Time to look at a continuous pipeline's sources (its poll interval, or its cooldown ran
    /// out).
    Check(String),
    /// A cron trigger fired.
    Cron(String),
    /// Time to load the `.pipe` files again (some changed a moment ago).
    Reload,
    /// A run ended; `again` when its trigger fired meanwhile.
    RunEnded {
        pipeline: String,
        run: Option<RunRecord>,
        again: bool,
    },
}

/// The daemon's shared state.
pub struct Daemon {
    pub store: Arc<Store>,
    pub options: DaemonOptions,
    pub registry: Mutex<Registry>,
    pub runs: Arc<Runs>,
    pub events: mpsc::UnboundedSender<Event>,
    /// Stops every run: drain on SIGTERM, cancel after the grace.
    pub stop: Stop,
    /// Per continuous pipeline, the tasks per step that would run or wait, as of its last check.
    pub gaps: Mutex<BTreeMap<String, BTreeMap<String, StepGap>>>,
    /// The outputs being produced, shared by all runs so that runs of one pipeline may overlap.
    pub claims: Arc<Claims>,
    pub webhooks: Arc<Webhooks>,
    /// The pipelines whose products were found with no run of them recorded (said once).
    unrecorded: Mutex<BTreeSet<String>>,
}

impl Daemon {
    pub fn new(store: Arc<Store>, options: DaemonOptions) -> (Arc<Daemon>, Receiver) {
        let (events, receiver) = mpsc::unbounded_channel();
        let webhooks = Arc::new(Webhooks::new(store.clone(), options.webhooks.clone()));
        let daemon = Arc::new(Daemon {
            runs: Arc::new(Runs::new(store.clone(), events.clone(), webhooks.clone())),
            webhooks,
            registry: Mutex::new(Registry::new(options.dir.clone())),
            store,
            options,
            events,
            stop: Stop::default(),
            gaps: Mutex::default(),
            claims: Arc::default(),
            unrecorded: Mutex::default(),
        });
        (daemon, Receiver(receiver))
    }

    /// Options for a run of the daemon.
    pub fn run_options(&self, force: Force) -> RunOptions {
        RunOptions {
            jobs: self.options.jobs,
            force,
            state_dir: self.options.state_dir.clone(),
            out_root: self.options.out_root.clone(),
            kill_grace: crate::exec::KILL_GRACE,
            only: None,
            slurm: self.options.slurm.clone(),
            stop: Stop {
                drain: self.stop.drain.child_token(),
                cancel: self.stop.cancel.child_token(),
                pause: self.stop.pause.clone(),
            },
            claims: Some(self.claims.clone()),
            hold_failed: false,
        }
    }

    /// The pipeline named `name` as the daemon runs it, with its file.
    pub fn pipeline(&self, name: &str) -> Option<(PathBuf, Arc<Pipeline>)> {
        self.registry.lock().expect("registry lock").get(name)
    }

    /// Starts a run of `name` with its default params, unless one is going and the pipeline's
    /// overlap policy holds the fire back (to run once that ends, with `queue`).
    fn fire(self: &Arc<Self>, name: &str, trigger: &str) {
        if self.stop.drain.is_cancelled() {
            return;
        }
        let Some((file, pipeline)) = self.pipeline(name) else {
            return;
        };
        if self.runs.hold_fire(name, pipeline.overlap) {
            return;
        }
        if self.products_unrecorded(name) {
            return;
        }
        let params = match dsl::model::param::resolve_params(&pipeline.params, &[]) {
            Ok(params) => params,
            Err(errors) => {
                for error in errors {
                    tracing::error!(pipeline = name, %error, "cannot fire the trigger");
                }
                return;
            }
        };
        let launch = Launch {
            pipeline: Arc::new(continuous::with_trigger_cooldown(&pipeline)),
            request: RunRequest {
                file,
                params,
                trigger: trigger.to_string(),
                parent: None,
            },
            options: RunOptions {
                hold_failed: true,
                ..self.run_options(Force::None)
            },
        };
        match self.runs.start(launch) {
            Ok(_) => {}
            // Started over the API a moment ago: the policy says what becomes of this fire.
            Err(crate::run::RunError::AlreadyRunning { .. }) => {
                self.runs.hold_fire(name, pipeline.overlap);
            }
            Err(error) => tracing::error!(pipeline = name, %error, "cannot start a run"),
        }
    }

    /// Whether `name`'s products lie in the output directory with no run of it in the store (a
    /// lost or replaced store): its trigger then does not fire, which would redo every task.
    /// Said once per pipeline; `engine run --fresh-store` by hand, or a restore, clears it.
    fn products_unrecorded(&self, name: &str) -> bool {
        match crate::run::unrecorded::unrecorded(&self.store, name, &self.options.out_root) {
            Ok(None) => false,
            Ok(Some(found)) => {
                if self
                    .unrecorded
                    .lock()
                    .expect("unrecorded lock")
                    .insert(name.to_string())
                {
                    tracing::error!(
                        pipeline = name,
                        "{found}: its trigger does not fire until then"
                    );
                }
                true
            }
            Err(error) => {
                tracing::error!(pipeline = name, %error, "cannot read the store");
                true
            }
        }
    }

    /// Loads the `.pipe` files again; logs what changed and sets the triggers up anew.
    async fn reload(self: &Arc<Self>, triggers: &mut Triggers) {
        let changes = self.registry.lock().expect("registry lock").refresh();
        for (file, error) in &changes.failed {
            tracing::error!(file = %file.display(), "the file does not load; its last good version stays in force:\n{error}");
        }
        for name in &changes.removed {
            tracing::info!(pipeline = %name, "pipeline removed");
        }
        for name in &changes.loaded {
            tracing::info!(pipeline = %name, "pipeline loaded");
            // A new definition may leave data unprocessed (a changed command, a new step).
            let _ = self.events.send(Event::Check(name.clone()));
        }
        if !changes.loaded.is_empty() || !changes.removed.is_empty() {
            triggers.update(self).await;
        }
    }
}

/// The receiving end of the daemon's events, handed to [`run`].
pub struct Receiver(mpsc::UnboundedReceiver<Event>);

/// The live trigger machinery of the loaded pipelines.
pub struct Triggers {
    watcher: continuous::Watcher,
    cron: cron::Cron,
    /// Each pipeline's trigger as last set up, to see what changed on reload.
    set_up: BTreeMap<String, Trigger>,
}

impl Triggers {
    /// Brings the triggers in line with the registry.
    async fn update(&mut self, daemon: &Arc<Daemon>) {
        let pipelines: Vec<(PathBuf, Arc<Pipeline>)> = daemon
            .registry
            .lock()
            .expect("registry lock")
            .pipelines()
            .collect();
        self.watcher.watch(&daemon.options.dir, &pipelines);
        let mut now: BTreeMap<String, Trigger> = BTreeMap::new();
        for (_, pipeline) in &pipelines {
            now.insert(pipeline.name.clone(), pipeline.trigger.clone());
        }
        for (name, trigger) in &now {
            if self.set_up.get(name) != Some(trigger) {
                self.cron.set(name, trigger, &daemon.events).await;
            }
        }
        for name in self.set_up.keys() {
            if !now.contains_key(name) {
                self.cron.set(name, &Trigger::Manual, &daemon.events).await;
            }
        }
        self.set_up = now;
    }
}

/// Runs the daemon until SIGTERM or SIGINT: then it stops firing triggers, lets running tasks
/// finish for up to the grace period, stops the rest, and returns.
pub async fn run(daemon: Arc<Daemon>, receiver: Receiver) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut events = receiver.0;

    // The pipelines are loaded first, so the API lists them at once; their triggers' events
    // wait in the channel until the loop below, once recovery is over.
    let mut triggers = Triggers {
        watcher: continuous::Watcher::new(daemon.events.clone(), daemon.options.state_dir.clone())?,
        cron: cron::Cron::new().await?,
        set_up: BTreeMap::new(),
    };
    daemon.reload(&mut triggers).await;

    // Runs whose engine died (this daemon, killed) are settled before any run starts (a run
    // asked for over the API meanwhile waits, see `Runs::start`). Before any run of ours
    // exists: a run owned by our own pid is from before a restart. Recovery may wait for
    // orphaned commands to end: on a blocking thread, off the runtime.
    let mut recovery_options = daemon.run_options(Force::None);
    recovery_options.claims = None;
    let store = daemon.store.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for run in store.live_runs()? {
            let scope = recovery::Scope::Run(run.id);
            for id in recovery::recover(&store, &recovery_options, scope)? {
                tracing::warn!(pipeline = %run.pipeline, run = id, "run interrupted: its engine was gone");
            }
        }
        Ok(())
    })
    .await??;
    daemon.runs.open();
    daemon.webhooks.resume();
    cron::fire_missed(&daemon);
    let mut rescan = tokio::time::interval(daemon.options.rescan);
    let mut polls = continuous::Polls::default();
    // Pipelines with a check on its way: a burst of file-system events makes one check.
    let mut soon: BTreeSet<String> = BTreeSet::new();
    let mut reload_soon = false;

    loop {
        tokio::select! {
            Some(event) = events.recv() => match event {
                Event::Changed(path) => {
                    if path.extension().is_some_and(|e| e == "pipe") {
                        // A file being written is seen truncated, then half written: load it
                        // once the writing is over.
                        if !reload_soon {
                            reload_soon = true;
                            let events = daemon.events.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(PIPE_DEBOUNCE).await;
                                let _ = events.send(Event::Reload);
                            });
                        }
                    } else {
                        for name in continuous::watching(&daemon, &path) {
                            if soon.insert(name.clone()) {
                                let events = daemon.events.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(EVENT_DEBOUNCE).await;
                                    let _ = events.send(Event::Check(name));
                                });
                            }
                        }
                    }
                }
                Event::Check(name) => {
                    soon.remove(&name);
                    continuous::check(&daemon, &name);
                }
                Event::Cron(name) => daemon.fire(&name, "cron"),
                Event::Reload => {
                    reload_soon = false;
                    daemon.reload(&mut triggers).await;
                }
                Event::RunEnded { pipeline, again, .. } => {
                    if again {
                        match daemon.pipeline(&pipeline).map(|(_, p)| p.trigger.clone()) {
                            Some(Trigger::Continuous { .. }) => continuous::check(&daemon, &pipeline),
                            Some(Trigger::Cron { .. }) => daemon.fire(&pipeline, "cron"),
                            _ => {}
                        }
                    }
                }
            },
            _ = rescan.tick() => daemon.reload(&mut triggers).await,
            _ = polls.next(&daemon) => {}
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }

    tracing::info!(
        grace_s = daemon.options.grace.as_secs_f64(),
        "stopping: no trigger fires and no task starts; running tasks may finish"
    );
    triggers.cron.shutdown().await;
    daemon.stop.drain.cancel();
    if tokio::time::timeout(daemon.options.grace, daemon.runs.wait())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: stopping the running tasks");
        daemon.stop.cancel.cancel();
        daemon.runs.wait().await;
    }
    daemon.webhooks.wait(WEBHOOK_GRACE).await;
    tracing::info!("stopped");
    Ok(())
}
