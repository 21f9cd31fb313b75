//! The SLURM executor: submits each attempt as a batch job with `sbatch --parsable`, watches
//! every outstanding job with one `squeue` call per poll cycle, reads the final state and exit
//! code from `sacct` when the cluster keeps accounting (else from `scontrol show job`, else from
//! the status the batch script wrote), and stops jobs with `scancel` on cancel and timeout.
//!
//! [`SlurmExecutor::submit`] returns as soon as `sbatch` has answered with the job id, so the
//! caller can commit it before it waits ([`SlurmJob::wait`]), as with a local pid. The executor
//! owns one background poller for all its jobs; each job's waiter follows the job's state
//! through a `watch` channel. Submissions are paced by a rate limit ([`SlurmSettings::submit_rate`]);
//! the cap on jobs in the queue ([`SlurmSettings::queue_size`]) is the scheduler's to apply, as
//! it applies `--jobs` to local tasks.

mod parse;
mod poll;
pub mod query;
mod rate;
mod request;
mod script;
mod state;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{AttemptOutcome, AttemptSpec, Ending, ExecError};
use parse::FinalRecord;
pub use poll::{poll_once, wait_blocking};
use rate::TokenBucket;
pub use request::{slurm_comment, state_id};
pub use script::{SlurmRequest, EXECUTOR_VAR};
pub use state::JobState;

/// Engine-wide SLURM settings (the command line's `--slurm-*` options).
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmSettings {
    /// At most this many jobs of one engine in the queue (pending or running) at once.
    pub queue_size: usize,
    /// At most this many submissions per second.
    pub submit_rate: f64,
    /// How often the state of the outstanding jobs is polled.
    pub poll: Duration,
}

impl Default for SlurmSettings {
    fn default() -> Self {
        SlurmSettings {
            queue_size: 100,
            submit_rate: 10.0,
            poll: Duration::from_secs(3),
        }
    }
}

/// Why a SLURM command failed or said something the engine cannot read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SlurmError {
    /// The command could not be started (not installed, not on `PATH`).
    #[error("cannot run `{program}` (is SLURM installed and on PATH?): {source}")]
    Spawn { program: String, source: io::Error },
    /// The command exited with a failure.
    #[error("`{program}` failed ({}): {stderr}", status.map_or("killed".to_string(), |s| format!("status {s}")))]
    Failed {
        program: String,
        status: Option<i32>,
        stderr: String,
    },
    /// The command's output is not what the engine expects.
    #[error("cannot read what `{program}` printed: {output:?}")]
    Unreadable { program: String, output: String },
    /// The step's `options` setting has an unclosed quote or a trailing backslash.
    #[error("cannot split the executor's options into words: {options}")]
    Options { options: String },
    /// The batch script could not be written.
    #[error("cannot write the batch script {}: {source}", path.display())]
    Script { path: PathBuf, source: io::Error },
}

/// What the executor knows of a job, as its waiter sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobView {
    /// `None` until the first poll that found the job.
    pub state: Option<JobState>,
    pub reason: Option<String>,
    pub nodes: Option<String>,
    /// The peak memory `sstat` saw while it ran.
    pub peak_rss_bytes: Option<u64>,
    /// Set once the job is over: what SLURM recorded of its end (its state is `None` when
    /// SLURM has forgotten the job).
    pub end: Option<FinalRecord>,
}

/// Submits attempts to SLURM and watches them. Cheap to clone: clones share the poller.
#[derive(Debug, Clone)]
pub struct SlurmExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: SlurmSettings,
    /// The jobs being watched, by id. The poller removes a job once it has sent its end.
    watched: Mutex<BTreeMap<String, watch::Sender<JobView>>>,
    /// The rate limit.
    bucket: Mutex<TokenBucket>,
    /// Whether `sacct` works on this cluster; asked once, on the first job that ends.
    sacct: OnceLock<bool>,
}

impl SlurmExecutor {
    /// An executor with its poller. Must be called within a tokio runtime; the poller stops
    /// when the last clone is dropped.
    pub fn new(settings: SlurmSettings) -> SlurmExecutor {
        let inner = Arc::new(Inner {
            settings: settings.clone(),
            watched: Mutex::new(BTreeMap::new()),
            bucket: Mutex::new(TokenBucket::new(settings.submit_rate)),
            sacct: OnceLock::new(),
        });
        tokio::spawn(poller(Arc::downgrade(&inner)));
        SlurmExecutor { inner }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &SlurmSettings {
        &self.inner.settings
    }

    /// Whether the rate limit lets a submission go out now.
    pub fn may_submit(&self) -> bool {
        self.inner
            .bucket
            .lock()
            .map(|mut bucket| bucket.available(Instant::now()))
            .unwrap_or(true)
    }

    /// Counts a submission against the rate limit, before it is made (submissions may be under
    /// way on several threads at once).
    pub fn take_submission(&self) {
        if let Ok(mut bucket) = self.inner.bucket.lock() {
            bucket.take(Instant::now());
        }
    }

    /// Prepares the output directory and the log files, writes the batch script and submits
    /// it. Returns once `sbatch` has given the job id; the caller commits it, then waits.
    /// The caller counts it against the rate limit first ([`Self::take_submission`]).
    ///
    /// Blocks for as long as `sbatch` takes (it talks to the controller): call it on a blocking
    /// thread.
    pub fn submit(
        &self,
        spec: &AttemptSpec,
        request: &SlurmRequest,
    ) -> Result<SlurmJob, ExecError> {
        let out_dir = super::files::prepare_out_dir(&spec.out_dir)?;
        drop(super::files::create_log(&spec.stdout_path)?);
        if spec.stderr_path != spec.stdout_path {
            drop(super::files::create_log(&spec.stderr_path)?);
        }
        let _ = std::fs::remove_file(&request.usage);
        let script = script::batch_script(spec, &out_dir, request);
        write_script(&request.script, &script)?;
        let args = script::sbatch_args(spec, request)?;
        let id = query::sbatch(&args, &request.script)?;
        tracing::debug!(job = %id, name = %request.job_name, "SLURM job submitted");
        Ok(self.watch(
            id,
            spec.timeout,
            spec.out_dir.clone(),
            request.usage.clone(),
        ))
    }

    /// Follows a job submitted earlier (by this engine or one that died).
    pub fn watch(
        &self,
        id: String,
        timeout: Option<Duration>,
        out_dir: PathBuf,
        usage: PathBuf,
    ) -> SlurmJob {
        let (sender, receiver) = watch::channel(JobView::default());
        if let Ok(mut watched) = self.inner.watched.lock() {
            watched.insert(id.clone(), sender);
        }
        SlurmJob {
            id,
            _executor: self.clone(),
            receiver,
            timeout,
            out_dir,
            usage,
            submitted: Instant::now(),
        }
    }
}

fn write_script(path: &Path, text: &str) -> Result<(), SlurmError> {
    let error = |source| SlurmError::Script {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    std::fs::write(path, text).map_err(error)
}

/// A submitted job, not yet waited for. Dropping it stops watching the job, not the job.
#[derive(Debug)]
pub struct SlurmJob {
    id: String,
    /// Keeps the poller running while the job is waited for.
    _executor: SlurmExecutor,
    receiver: watch::Receiver<JobView>,
    timeout: Option<Duration>,
    out_dir: PathBuf,
    usage: PathBuf,
    submitted: Instant,
}

/// How a job ended, for the attempt record: SLURM's own words.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobReport {
    /// The last state SLURM gave (`COMPLETED`, `OUT_OF_MEMORY`, ...); `None` if it forgot the
    /// job before the engine asked.
    pub state: Option<String>,
    pub reason: Option<String>,
    pub nodes: Option<String>,
}

impl SlurmJob {
    /// The SLURM job id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for the job to end. On `cancel`, or once it has run (counted from when the poller
    /// first saw it running) past its timeout, `scancel`s it and waits for it to leave the
    /// queue. Calls `changed` with each new state while it is in the queue (`PENDING` with its
    /// reason, `RUNNING` with its nodes). Returns how it ended, and what SLURM said about it.
    pub async fn wait(
        mut self,
        cancel: CancellationToken,
        mut changed: impl FnMut(&JobReport),
    ) -> (AttemptOutcome, JobReport) {
        let mut killed_for: Option<Ending> = None;
        let mut deadline: Option<Instant> = None;
        let mut last = JobView::default();
        loop {
            let view = self.receiver.borrow_and_update().clone();
            if view.state == Some(JobState::Running) && deadline.is_none() {
                deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
            }
            if view != JobView::default() {
                let moved = view.state != last.state || view.reason != last.reason;
                last = view;
                if last.end.is_some() {
                    break;
                }
                if moved {
                    changed(&JobReport {
                        state: last.state.as_ref().map(|s| s.to_string()),
                        reason: last.reason.clone(),
                        nodes: last.nodes.clone(),
                    });
                }
            }
            tokio::select! {
                biased;
                changed = self.receiver.changed() => {
                    if changed.is_err() {
                        // The executor is gone: nobody will tell how the job ends.
                        break;
                    }
                }
                () = sleep_until(deadline), if killed_for.is_none() => {
                    killed_for = Some(Ending::TimedOut);
                    self.scancel().await;
                }
                () = cancel.cancelled(), if killed_for.is_none() => {
                    killed_for = Some(Ending::Cancelled);
                    self.scancel().await;
                }
            }
        }
        let usage = tokio::fs::read_to_string(&self.usage).await.ok();
        let _ = tokio::fs::remove_file(&self.usage).await;
        let outcome = outcome(
            &last,
            usage.as_deref(),
            killed_for,
            self.submitted.elapsed(),
        );
        let end = last.end.unwrap_or_default();
        let report = JobReport {
            state: end.state.as_ref().map(|s| s.to_string()),
            reason: end.reason.or(last.reason),
            nodes: end.nodes.or(last.nodes),
        };
        tracing::debug!(job = %self.id, ending = %outcome.ending, out = %self.out_dir.display(), "SLURM job ended");
        (outcome, report)
    }

    async fn scancel(&self) {
        let ids = vec![self.id.clone()];
        match tokio::task::spawn_blocking(move || query::scancel(&ids)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(job = %self.id, %error, "scancel failed"),
            Err(error) => tracing::warn!(job = %self.id, %error, "scancel failed"),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// How an attempt ended, from what SLURM said (`view`), the usage record the batch script
/// wrote (its exit status, wall and CPU time), and whether the engine stopped it.
fn outcome(
    view: &JobView,
    usage: Option<&str>,
    killed_for: Option<Ending>,
    since_submit: Duration,
) -> AttemptOutcome {
    let usage = usage.and_then(script::parse_usage);
    let end = view.end.clone().unwrap_or_default();
    let slurm_ending = end.state.as_ref().and_then(|s| s.ending(end.exit));
    let ending = killed_for
        .or(slurm_ending)
        .or(usage.and_then(|u| u.status).map(Ending::Exited))
        .unwrap_or(Ending::Lost);
    let (user_cpu, sys_cpu) = match (usage, end.cpu) {
        (Some(usage), _) => (usage.user_cpu, usage.sys_cpu),
        (None, Some(cpu)) => (cpu, Duration::ZERO),
        (None, None) => (Duration::ZERO, Duration::ZERO),
    };
    AttemptOutcome {
        ending,
        wall: end
            .elapsed
            .or(usage.map(|u| u.wall))
            .or(end.run_time)
            .unwrap_or(since_submit),
        user_cpu,
        sys_cpu,
        max_rss_bytes: end.max_rss_bytes.or(view.peak_rss_bytes).unwrap_or(0),
    }
}

/// Polls every watched job once per interval until the executor is dropped.
async fn poller(inner: Weak<Inner>) {
    let Some(interval) = inner.upgrade().map(|i| i.settings.poll) else {
        return;
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let ids: Vec<String> = match inner.watched.lock() {
            Ok(mut watched) => {
                // Nobody waits for a job whose receiver is gone.
                watched.retain(|_, sender| !sender.is_closed());
                watched.keys().cloned().collect()
            }
            Err(_) => return,
        };
        if ids.is_empty() {
            continue;
        }
        let sacct = inner.sacct.get().copied();
        let cycle = tokio::task::spawn_blocking(move || poll_once(&ids, sacct)).await;
        let (views, sacct) = match cycle {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot poll SLURM; trying again");
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot poll SLURM; trying again");
                continue;
            }
        };
        if let Some(sacct) = sacct {
            let _ = inner.sacct.set(sacct);
        }
        let Ok(mut watched) = inner.watched.lock() else {
            return;
        };
        for (id, mut view) in views {
            let Some(sender) = watched.get(&id) else {
                continue;
            };
            let over = view.end.is_some();
            sender.send_if_modified(|current| {
                view.peak_rss_bytes = match (current.peak_rss_bytes, view.peak_rss_bytes) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                if *current == view {
                    false
                } else {
                    *current = view;
                    true
                }
            });
            if over {
                watched.remove(&id);
            }
        }
    }
}

/// How an attempt that recovery waited for ended: SLURM's view of it and the usage record.
pub fn recovered_outcome(view: &JobView, usage: Option<&str>) -> AttemptOutcome {
    outcome(view, usage, None, Duration::ZERO)
}

#[cfg(test)]
mod tests;
