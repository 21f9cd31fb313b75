//! Continuous triggers: a pipeline runs when its sources hold data it has not processed (the
//! gap) and that data has settled. The daemon looks when the file system says something changed
//! under a source root, every `poll` as a safety net, and when a cooldown runs out. Nothing fires
//! while any group of the gap had an input arrive less than the cooldown ago, so a file still
//! being copied in is not processed half-written and a burst of files is one run (see [`check`]
//! for `max` and a step's own cooldown). One run covers the whole gap, however much arrived.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dsl::model::{Pipeline, Trigger};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::{Daemon, Event};
use crate::api::control::StepGap;
use crate::plan::preview::{preview, Previewed};
use crate::plan::{base_dir, plan, Plan, PlanError};
use crate::run::Force;
use crate::store::StoreError;
use dsl::model::param::{resolve_params, ParamError};

/// The pipeline as a continuous trigger runs it: every step without a cooldown of its own takes
/// the trigger's, so the planner holds back groups whose inputs are still changing. (A step's
/// cooldown is a policy, not part of its task keys: this changes no cached result.)
pub fn with_trigger_cooldown(pipeline: &Pipeline) -> Pipeline {
    let mut pipeline = pipeline.clone();
    if let Trigger::Continuous { cooldown_ms, .. } = pipeline.trigger {
        for step in &mut pipeline.steps {
            step.policy.cooldown_ms.get_or_insert(cooldown_ms);
        }
    }
    pipeline
}

/// Looks at a continuous pipeline's sources: starts a run when there is a gap that has settled,
/// and comes back when the gap's newest waiting group's cooldown runs out.
///
/// The trigger's cooldown is over the whole gap: while any group of a step without a cooldown
/// of its own is still settling, nothing fires, so a burst of files is one run once the burst is
/// over. With `max`, a task whose newest input arrived longer ago than that is processed all the
/// same, with the other groups that have settled (an instrument that never pauses). A step's own
/// cooldown is per group: its settling groups hold back no other work.
pub fn check(daemon: &Arc<Daemon>, name: &str) {
    if daemon.stop.drain.is_cancelled() {
        return;
    }
    let Some((file, pipeline)) = daemon.pipeline(name) else {
        return;
    };
    // A check of another kind of pipeline (a reload looks at every pipeline it loaded) is no
    // fire: it must not be held for when a cron run ends.
    let Trigger::Continuous { max_wait_ms, .. } = pipeline.trigger else {
        return;
    };
    if daemon.runs.hold_fire(name, pipeline.overlap) {
        return;
    }
    let Looked {
        planned, decisions, ..
    } = match look(daemon, &file, &pipeline) {
        Ok(looked) => looked,
        // Sources may be missing for a while (a mount not there yet); the rest is an error.
        Err(error @ LookError::Scan(_)) => {
            tracing::warn!(pipeline = name, "{error}");
            return;
        }
        Err(error) => {
            tracing::error!(pipeline = name, "{error}");
            return;
        }
    };
    let now_ns = crate::store::now_ms() as i128 * 1_000_000;
    // With `overlap allow`, what a going run is producing or has planned is not new work. Of
    // the rest: how long ago the data of the longest waiting task arrived.
    let waited_ms = planned
        .tasks
        .iter()
        .zip(&decisions)
        .filter(|(_, d)| {
            d.decision == "run"
                && !daemon
                    .claims
                    .busy(&(name.to_string(), d.step.clone(), d.group.clone()))
        })
        .map(|(task, _)| {
            task.arrived_ns()
                .map_or(0, |at| ((now_ns - at) / 1_000_000).max(0))
        })
        .max();
    // The groups still settling under the trigger's cooldown.
    let settling = planned
        .waiting
        .iter()
        .filter(|w| {
            pipeline
                .step(&w.step)
                .is_some_and(|s| s.policy.cooldown_ms.is_none())
        })
        .filter_map(|w| w.remaining_ms)
        .max();
    let overdue = |waited: i128| max_wait_ms.is_some_and(|max| waited >= i128::from(max));
    match (waited_ms, settling) {
        (Some(_), None) => daemon.fire(name, "continuous"),
        (Some(waited), Some(_)) if overdue(waited) => {
            tracing::info!(
                pipeline = name,
                waited_ms = waited as u64,
                "data has waited the trigger's max wait: processing what has settled"
            );
            daemon.fire(name, "continuous");
        }
        _ => {}
    }
    // Come back when a cooldown runs out, or when the max wait does.
    let max_wait_left = match (waited_ms, max_wait_ms) {
        (Some(waited), Some(max)) if settling.is_some() && !overdue(waited) => {
            Some((i128::from(max) - waited) as u64)
        }
        _ => None,
    };
    let next = planned
        .waiting
        .iter()
        .filter_map(|w| w.remaining_ms)
        .chain(max_wait_left)
        .min();
    if let Some(ms) = next {
        let events = daemon.events.clone();
        let name = name.to_string();
        tracing::debug!(pipeline = %name, wait_ms = ms, "inputs settling");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms + 20)).await;
            let _ = events.send(Event::Check(name));
        });
    }
}

/// Why the daemon could not look for a pipeline's gap.
#[derive(Debug, thiserror::Error)]
pub enum LookError {
    #[error("a param has no default: the trigger cannot fire")]
    Params(Vec<ParamError>),
    #[error("cannot scan the sources: {0}")]
    Scan(#[from] PlanError),
    #[error("cannot read the store: {0}")]
    Store(#[from] StoreError),
}

/// What a run fired by the trigger would do now.
pub struct Looked {
    pub planned: Plan,
    /// Each task's decision.
    pub decisions: Vec<Previewed>,
    /// The tasks per step that would run or wait, and those held.
    pub gap: BTreeMap<String, StepGap>,
}

/// Looks at `pipeline` as a run fired by its trigger would (the params' defaults, the trigger's
/// cooldown), and keeps the gap it found for the API.
pub fn look(daemon: &Daemon, file: &Path, pipeline: &Pipeline) -> Result<Looked, LookError> {
    let pipeline = with_trigger_cooldown(pipeline);
    let params = resolve_params(&pipeline.params, &[]).map_err(LookError::Params)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let planned = plan(&pipeline, &params, &base_dir(file), &daemon.store, threads)?;
    let decisions = preview(
        &pipeline,
        &params,
        &planned,
        &daemon.store,
        &Force::None,
        true,
    )?;
    let gap = gap_of(&decisions, &planned);
    daemon
        .gaps
        .lock()
        .expect("gaps lock")
        .insert(pipeline.name.clone(), gap.clone());
    Ok(Looked {
        planned,
        decisions,
        gap,
    })
}

/// The gap per step: the tasks that would run, those waiting for their inputs to settle, and
/// those held for a retry by hand. Steps with nothing to do are left out.
fn gap_of(decisions: &[Previewed], planned: &Plan) -> BTreeMap<String, StepGap> {
    let mut gap: BTreeMap<String, StepGap> = BTreeMap::new();
    for decision in decisions.iter().filter(|d| d.decision != "cached") {
        let entry = gap
            .entry(decision.step.clone())
            .or_insert_with(|| StepGap::empty(&decision.step));
        if decision.decision == "held" {
            entry.held += 1;
        } else {
            entry.tasks += 1;
        }
    }
    for waiting in &planned.waiting {
        gap.entry(waiting.step.clone())
            .or_insert_with(|| StepGap::empty(&waiting.step))
            .tasks += 1;
    }
    gap
}

/// The continuous pipelines with a source root at or above `path`.
pub fn watching(daemon: &Daemon, path: &Path) -> Vec<String> {
    let registry = daemon.registry.lock().expect("registry lock");
    registry
        .pipelines()
        .filter(|(_, p)| matches!(p.trigger, Trigger::Continuous { .. }))
        .filter(|(file, p)| source_roots(file, p).iter().any(|r| path.starts_with(r)))
        .map(|(_, p)| p.name.clone())
        .collect()
}

fn source_roots(file: &Path, pipeline: &Pipeline) -> Vec<PathBuf> {
    let base = base_dir(file);
    pipeline
        .sources
        .iter()
        .map(|s| {
            let root = base.join(&s.root);
            std::fs::canonicalize(&root).unwrap_or(root)
        })
        .collect()
}

/// File-system notifications for the `.pipe` directory and the continuous pipelines' source
/// roots, delivered to the daemon's loop as [`Event::Changed`].
pub struct Watcher {
    inner: RecommendedWatcher,
    watched: Vec<PathBuf>,
}

impl Watcher {
    /// Reports changes (not reads: scanning a source must not trigger another scan) outside
    /// the state directory `state` (the store's own writes are no news).
    pub fn new(events: mpsc::UnboundedSender<Event>, state: PathBuf) -> notify::Result<Watcher> {
        let state = std::fs::canonicalize(&state).unwrap_or(state);
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else {
                return;
            };
            if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
                return;
            }
            for path in event.paths {
                if !path.starts_with(&state) {
                    let _ = events.send(Event::Changed(path));
                }
            }
        })?;
        Ok(Watcher {
            inner,
            watched: Vec::new(),
        })
    }

    /// Watches `dir` and the source roots of the continuous pipelines, and nothing else.
    pub fn watch(&mut self, dir: &Path, pipelines: &[(PathBuf, Arc<Pipeline>)]) {
        let mut wanted = vec![std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())];
        for (file, pipeline) in pipelines {
            if matches!(pipeline.trigger, Trigger::Continuous { .. }) {
                wanted.extend(source_roots(file, pipeline));
            }
        }
        wanted.sort();
        wanted.dedup();
        for path in &self.watched {
            let _ = self.inner.unwatch(path);
        }
        self.watched.clear();
        for path in wanted {
            // A root that does not exist yet is found by the polls once it does.
            match self.inner.watch(&path, RecursiveMode::Recursive) {
                Ok(()) => self.watched.push(path),
                Err(error) => tracing::debug!(path = %path.display(), %error, "not watched"),
            }
        }
    }
}

/// The continuous pipelines' poll intervals.
#[derive(Default)]
pub struct Polls {
    last: HashMap<String, Instant>,
}

impl Polls {
    /// Waits for the next pipeline whose poll is due, and checks it.
    pub async fn next(&mut self, daemon: &Arc<Daemon>) {
        let now = Instant::now();
        let due: Vec<(String, Instant)> = daemon
            .registry
            .lock()
            .expect("registry lock")
            .pipelines()
            .filter_map(|(_, p)| match p.trigger {
                Trigger::Continuous { poll_ms, .. } => {
                    let last = *self.last.entry(p.name.clone()).or_insert(now);
                    Some((p.name.clone(), last + Duration::from_millis(poll_ms)))
                }
                _ => None,
            })
            .collect();
        let Some((name, at)) = due.into_iter().min_by_key(|(_, at)| *at) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::time::sleep_until(at.into()).await;
        self.last.insert(name.clone(), Instant::now());
        check(daemon, &name);
    }
}
