//! Executors run attempts. This module owns what every executor shares: the description of one
//! attempt ([`AttemptSpec`]), how it ended ([`Ending`], [`AttemptOutcome`]) and why it could not
//! be started ([`ExecError`]). The executors themselves live in submodules: [`local`] runs
//! attempts as local process groups, [`slurm`] submits them as SLURM batch jobs.
//!
//! The split between starting and waiting is deliberate: an executor's `start` returns as soon as
//! the attempt exists, with what identifies it (a pid and pgid, or a SLURM job id), so the caller
//! can record that before it waits for the end (a SLURM job's id is committed before it is
//! waited on; see "The store" and "Crash recovery" in docs/design.md).

pub mod direct;
pub mod files;
pub mod local;
mod process;
pub mod segment;
pub mod slurm;
pub mod supervisor;
pub mod tag;

pub use tag::{AttemptTag, ATTEMPT_VAR, ENGINE_PID_VAR, STATE_DIR_VAR};

/// How long a stopped attempt (cancelled, timed out) gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use local::{kill_group, process_alive, LocalExecutor, RunningAttempt};

/// Everything needed to run one attempt of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSpec {
    /// The command, already rendered and shell-quoted: a `/bin/sh` script, run verbatim.
    pub command: String,
    /// The attempt's tag (`TASK-N`), under which its end is recorded in `ended_log`.
    pub tag: String,
    /// The run's ended log: the local executor's supervisor appends how the command ended to
    /// it, so that an attempt that ends while the engine is down is not run again.
    pub ended_log: PathBuf,
    /// Where the local executor writes the command when it is too long to be passed as one
    /// argument (parent directories created). The script is the caller's: the executor leaves it
    /// in place, for the caller to remove when it likes.
    pub script: PathBuf,
    /// Added to (and overriding) the engine's own environment.
    pub env: Vec<(String, String)>,
    /// The working directory of the command. It must exist.
    pub workdir: PathBuf,
    /// The attempt's temporary output directory: created empty by `start` (removed first if it
    /// exists), so nothing from an earlier attempt survives into this one. Exported to the command
    /// as the absolute path in the env var `ENGINE_OUT`, which wins over an `ENGINE_OUT` in `env`.
    pub out_dir: PathBuf,
    /// Where the command's stdout goes (created or truncated; parent directories created).
    pub stdout_path: PathBuf,
    /// Where the command's stderr goes (created or truncated; parent directories created). It may
    /// be `stdout_path`: both streams then share one file, interleaved as written.
    pub stderr_path: PathBuf,
    /// Whether `out_dir` and the log files were created just before, new and empty (see
    /// `run::attempt_files::prepare`): the local executor then takes them as they are.
    pub prepared: bool,
    /// How long the attempt may run, counted from `start`; `None` for no limit.
    pub timeout: Option<Duration>,
    /// After SIGTERM to the process group (timeout or cancel), wait this long before SIGKILL.
    /// Between SIGTERM and SIGKILL when the attempt is stopped; [`KILL_GRACE`] unless a test
    /// wants it shorter.
    pub kill_grace: Duration,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The command exited by itself with this status.
    Exited(i32),
    /// The command was killed by this signal, sent by someone other than the engine.
    Signaled(i32),
    /// The attempt ran past its timeout and the engine killed it.
    TimedOut,
    /// The attempt was cancelled and the engine killed it.
    Cancelled,
    /// The process ended but its status could not be collected, because something else in the
    /// engine's process reaped it (a `waitpid(-1)` or SIGCHLD set to be ignored). Always a bug;
    /// treat it as a failure.
    Lost,
    /// The cluster's scheduler ended the job for a reason of its own (SLURM).
    Cluster(ClusterEnding),
}

/// Why a cluster's scheduler ended a job that neither exited by itself nor was stopped by the
/// engine. Every one of them is a failure of the attempt (retried when retries remain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterEnding {
    /// The job used more memory than it asked for and was killed.
    OutOfMemory,
    /// A node the job ran on failed.
    NodeFailure,
    /// The job was cancelled by someone other than the engine (e.g. `scancel` by hand).
    CancelledOutside,
    /// A job of higher priority took its resources.
    Preempted,
    /// The node could not be booted for it.
    BootFailure,
    /// It could not finish before its deadline.
    Deadline,
    /// It failed without an exit status (e.g. its batch script could not be started).
    Failed,
}

impl fmt::Display for ClusterEnding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClusterEnding::OutOfMemory => "ran out of memory",
            ClusterEnding::NodeFailure => "its node failed",
            ClusterEnding::CancelledOutside => "was cancelled outside the engine",
            ClusterEnding::Preempted => "was preempted",
            ClusterEnding::BootFailure => "its node failed to boot",
            ClusterEnding::Deadline => "missed its deadline",
            ClusterEnding::Failed => "failed without an exit status",
        })
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ending::Exited(code) => write!(f, "exited with status {code}"),
            Ending::Signaled(signal) => match nix::sys::signal::Signal::try_from(signal) {
                Ok(name) => write!(f, "killed by signal {signal} ({name})"),
                Err(_) => write!(f, "killed by signal {signal}"),
            },
            Ending::TimedOut => f.write_str("timed out"),
            Ending::Cancelled => f.write_str("cancelled"),
            Ending::Lost => f.write_str("ended with an unknown status"),
            Ending::Cluster(why) => write!(f, "{why}"),
        }
    }
}

/// How an attempt ended and what it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// How it ended.
    pub ending: Ending,
    /// From `start` until the group's leader (the `sh`) exited.
    pub wall: Duration,
    /// User CPU time of the leader and of every descendant it waited for.
    pub user_cpu: Duration,
    /// System CPU time of the leader and of every descendant it waited for.
    pub sys_cpu: Duration,
    /// Peak resident memory of the attempt's process tree as rusage reports it (bytes): the
    /// largest peak among the leader and the descendants it waited for, not their sum.
    pub max_rss_bytes: u64,
}

impl AttemptOutcome {
    /// Whether the command exited by itself with status 0.
    pub fn succeeded(&self) -> bool {
        self.ending == Ending::Exited(0)
    }
}

/// Why an attempt could not be started. Nothing of the attempt runs when `start` returns one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The output directory could not be emptied or created.
    #[error("cannot prepare the output directory {}: {source}", path.display())]
    OutDir {
        /// The attempt's `out_dir`.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// A log file (stdout or stderr), or its parent directory, could not be created.
    #[error("cannot create the log file {}: {source}", path.display())]
    LogFile {
        /// The log file's path.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// The script holding the command could not be written.
    #[error("cannot write the attempt's script {}: {source}", path.display())]
    Script {
        /// Where the script was to be written.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// The command could not be started, e.g. because the working directory does not exist.
    #[error("cannot start the command in {}: {source}", workdir.display())]
    Spawn {
        /// The attempt's working directory.
        workdir: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The SLURM job could not be submitted.
    #[error(transparent)]
    Slurm(#[from] slurm::SlurmError),
    /// The thread submitting the job died (a bug).
    #[error("the SLURM submission was lost: {0} (a bug: please report it)")]
    Submission(String),
}
