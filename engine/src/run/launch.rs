//! The seam between the scheduler and the executors: starts an attempt on the executor its step
//! names (a local process group, or a SLURM batch job submitted off the run loop's thread),
//! writes what identifies it into the attempt record (pid and pgid, or the SLURM job id) for the
//! scheduler to commit before it waits. How many attempts may run at once is [`super::capacity`]'s to count; how fast SLURM
//! jobs may be submitted is the SLURM executor's.

use std::sync::Arc;

use dsl::model::step::ExecutorKind;
use dsl::model::StepDef;
use tokio_util::sync::CancellationToken;

use super::RunOptions;
use crate::exec::slurm::{state_id, SlurmExecutor, SlurmJob, SlurmRequest, SlurmSettings};
use crate::exec::{AttemptOutcome, AttemptSpec, Ending, ExecError, LocalExecutor, RunningAttempt};
use crate::store::{AttemptRecord, SlurmJobRecord, Store};

/// Where local attempts start: the supervisor's [`LocalExecutor`], or a test's script of the run
/// loop.
pub trait Local: Send {
    /// Starts `spec` (held at the gate when `held`), calling `meanwhile` while it starts.
    fn start(
        &self,
        spec: &AttemptSpec,
        held: bool,
        meanwhile: Box<dyn FnOnce() + '_>,
    ) -> Result<Box<dyn LocalAttempt>, ExecError>;
}

/// A local attempt that has started.
pub trait LocalAttempt: Send {
    fn pid(&self) -> u32;
    fn pgid(&self) -> u32;
    /// Lets a held command run.
    fn release(&mut self);
    /// Waits for the command to end, stopping it on `cancel` or its timeout.
    fn wait(self: Box<Self>, cancel: CancellationToken) -> BoxFuture<AttemptOutcome>;
}

/// A future an attempt's waiter runs to its end.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl Local for LocalExecutor {
    fn start(
        &self,
        spec: &AttemptSpec,
        held: bool,
        meanwhile: Box<dyn FnOnce() + '_>,
    ) -> Result<Box<dyn LocalAttempt>, ExecError> {
        Ok(Box::new(self.start_while(spec, held, meanwhile)?))
    }
}

impl LocalAttempt for RunningAttempt {
    fn pid(&self) -> u32 {
        RunningAttempt::pid(self)
    }

    fn pgid(&self) -> u32 {
        RunningAttempt::pgid(self)
    }

    fn release(&mut self) {
        RunningAttempt::release(self)
    }

    fn wait(self: Box<Self>, cancel: CancellationToken) -> BoxFuture<AttemptOutcome> {
        Box::pin(RunningAttempt::wait(*self, cancel))
    }
}

/// Starts attempts on their step's executor.
pub struct Launcher {
    local: Box<dyn Local>,
    /// Created on the first SLURM attempt, so a run without one never touches SLURM.
    slurm: Option<SlurmExecutor>,
    settings: SlurmSettings,
    /// Names this state directory in the comment of every SLURM job.
    state_id: String,
    /// Where a SLURM attempt's state is recorded while it waits and runs.
    store: Arc<Store>,
}

impl Launcher {
    /// Starts local attempts on `local`, or through the supervisor of the state directory.
    pub fn new(options: &RunOptions, store: Arc<Store>, local: Option<Box<dyn Local>>) -> Launcher {
        Launcher {
            local: local.unwrap_or_else(|| Box::new(LocalExecutor::new(&options.state_dir))),
            slurm: None,
            settings: options.slurm.clone(),
            state_id: state_id(&options.state_dir),
            store,
        }
    }

    /// Whether `kind` takes an attempt now, room aside: SLURM jobs are submitted no faster than
    /// the SLURM submission rate.
    pub fn ready(&self, kind: ExecutorKind) -> bool {
        match kind {
            ExecutorKind::Local => true,
            ExecutorKind::Slurm => self.slurm.as_ref().is_none_or(SlurmExecutor::may_submit),
        }
    }

    /// Starts `spec` on the local executor and records its pid and pgid in `attempt`. A command
    /// started `held` waits at the executor's gate (its stdin) until [`Started::release`].
    /// `meanwhile` is called at most once, while the command starts.
    pub fn start_local(
        &mut self,
        spec: &AttemptSpec,
        held: bool,
        attempt: &mut AttemptRecord,
        meanwhile: impl FnOnce(),
    ) -> Result<Started, ExecError> {
        let handle = self.local.start(spec, held, Box::new(meanwhile))?;
        attempt.pid = Some(handle.pid());
        attempt.pgid = Some(handle.pgid());
        Ok(Started::Local(handle))
    }

    /// Submits `spec`, attempt `tag` of `step` in `pipeline`, as a SLURM batch job, on a
    /// blocking thread: `sbatch` talks to the controller and may take seconds, during which
    /// the run goes on. The submission counts against the rate limit at once. Once it resolves,
    /// [`Launcher::submitted`] makes the started attempt of the job.
    pub fn submit(
        &mut self,
        step: &StepDef,
        pipeline: &str,
        tag: &str,
        spec: &AttemptSpec,
        attempt: &AttemptRecord,
    ) -> Submission {
        let usage = attempt.tmp_dir.with_extension("usage");
        let request = SlurmRequest::for_step(step, pipeline, tag, &self.state_id, spec, usage);
        let executor = self
            .slurm
            .get_or_insert_with(|| SlurmExecutor::new(self.settings.clone()))
            .clone();
        executor.take_submission();
        let spec = spec.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let job = executor.submit(&spec, &request)?;
            Ok((job, request.script))
        });
        Submission(handle)
    }

    /// The started attempt of a SLURM job that `sbatch` accepted; records the job in `attempt`.
    pub fn submitted(&self, job: SubmittedJob, attempt: &mut AttemptRecord) -> Started {
        let (job, script) = job;
        attempt.slurm = Some(SlurmJobRecord {
            job_id: job.id().to_string(),
            script,
            state: None,
            reason: None,
            nodes: None,
        });
        Started::Slurm(job, self.store.clone())
    }
}

/// A job `sbatch` accepted, with its batch script.
pub type SubmittedJob = (SlurmJob, std::path::PathBuf);

/// A SLURM submission under way on a blocking thread.
pub struct Submission(tokio::task::JoinHandle<Result<SubmittedJob, ExecError>>);

impl Submission {
    /// The job, once `sbatch` has answered, or why it could not be submitted.
    pub async fn wait(self) -> Result<SubmittedJob, ExecError> {
        match self.0.await {
            Ok(result) => result,
            Err(error) => Err(ExecError::Submission(error.to_string())),
        }
    }
}

/// An attempt that has started, on whichever executor.
pub enum Started {
    Local(Box<dyn LocalAttempt>),
    /// With the store, to record the job's state while it is in the queue.
    Slurm(SlurmJob, Arc<Store>),
}

impl Started {
    /// `pid 123` or `SLURM job 45`, for events and messages.
    pub fn describe(&self) -> String {
        match self {
            Started::Local(handle) => format!("pid {}", handle.pid()),
            Started::Slurm(job, _) => format!("SLURM job {}", job.id()),
        }
    }

    /// Lets a held local command run: it waits at the executor's gate until its start is
    /// committed. (A SLURM job runs once submitted; recovery finds it by its comment if its id
    /// was lost.)
    pub fn release(&mut self) {
        if let Started::Local(handle) = self {
            handle.release();
        }
    }

    /// Waits for the attempt to end (stopping it on `cancel` or its timeout); records in
    /// `attempt` what the executor said beyond the outcome: SLURM's state, reason and nodes.
    /// A SLURM job's state is also committed each time it changes while the job is in the queue
    /// (pending, and why; running, and where), for `engine show` to tell.
    pub async fn wait(
        self,
        cancel: CancellationToken,
        attempt: &mut AttemptRecord,
    ) -> AttemptOutcome {
        match self {
            Started::Local(handle) => handle.wait(cancel).await,
            Started::Slurm(job, store) => {
                let id = job.id().to_string();
                let mut live = attempt.clone();
                let (outcome, report) = job
                    .wait(cancel, |report| {
                        if let Some(record) = live.slurm.as_mut() {
                            record.state = report.state.clone();
                            record.reason = report.reason.clone();
                            record.nodes = report.nodes.clone();
                        }
                        if let Err(error) = store.write(|tx| tx.put_attempt(&live)) {
                            tracing::warn!(job = %id, %error, "cannot record the job's state");
                        }
                    })
                    .await;
                if let Some(record) = attempt.slurm.as_mut() {
                    record.state = report.state.clone();
                    record.reason = report.reason.clone();
                    record.nodes = report.nodes.clone();
                }
                if let Some(error) = slurm_error(&id, &outcome, &report) {
                    attempt.error = Some(error);
                }
                outcome
            }
        }
    }
}

/// What to say about a SLURM job that did not simply exit: `SLURM job 12 ran out of memory
/// (OUT_OF_MEMORY, reason OutOfMemory)`.
fn slurm_error(
    id: &str,
    outcome: &AttemptOutcome,
    report: &crate::exec::slurm::JobReport,
) -> Option<String> {
    let how = match outcome.ending {
        Ending::Cluster(why) => why.to_string(),
        Ending::Lost => "left the queue without a state or exit status".to_string(),
        Ending::TimedOut if report.reason.as_deref() == Some("TimeLimit") => {
            "reached its SLURM time limit".to_string()
        }
        _ => return None,
    };
    let mut detail = Vec::new();
    if let Some(state) = &report.state {
        detail.push(state.clone());
    }
    if let Some(reason) = &report.reason {
        detail.push(format!("reason {reason}"));
    }
    Some(if detail.is_empty() {
        format!("SLURM job {id} {how}")
    } else {
        format!("SLURM job {id} {how} ({})", detail.join(", "))
    })
}
