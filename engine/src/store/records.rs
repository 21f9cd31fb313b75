//! The records the store keeps, one type per table, serialized as JSON values. Every field that
//! recovery depends on is documented on the field.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dsl::model::ParamValue;
use serde::{Deserialize, Serialize};

use crate::lifecycle::{self, Event, IllegalTransition};
pub use crate::lifecycle::{AttemptEnd, RunStatus, TaskStatus};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One firing of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub pipeline: String,
    /// The `.pipe` file the pipeline was loaded from (absolute).
    pub file: PathBuf,
    /// What fired it: `manual`, `resume of N`, `rerun of N`, `cron`, `continuous`.
    pub trigger: String,
    pub params: BTreeMap<String, ParamValue>,
    pub definition_hash: String,
    pub status: RunStatus,
    pub created_ms: Millis,
    pub finished_ms: Option<Millis>,
    /// The pid of the engine process executing the run. With `status == Running` and this pid
    /// gone, the run was interrupted by a crash.
    pub owner_pid: Option<u32>,
    /// Set by `engine cancel` from any process; the owner polls it and stops the run.
    pub cancel_requested: bool,
    /// The run this one resumes or reruns.
    pub parent: Option<u64>,
}

impl RunRecord {
    /// Moves the run's status on by `event`, as the run lifecycle table says.
    pub fn apply(&mut self, event: &Event) -> Result<(), IllegalTransition> {
        self.status = lifecycle::run::apply(self.id, self.status, event.kind())?;
        Ok(())
    }
}

#[cfg(test)]
impl RunRecord {
    /// A queued manual run of `pipeline`, for tests; the store assigns its id.
    pub fn queued(pipeline: &str) -> RunRecord {
        RunRecord {
            id: 0,
            pipeline: pipeline.to_string(),
            file: "p.pipe".into(),
            trigger: "manual".to_string(),
            params: Default::default(),
            definition_hash: String::new(),
            status: RunStatus::Queued,
            created_ms: super::now_ms(),
            finished_ms: None,
            owner_pid: None,
            cancel_requested: false,
            parent: None,
        }
    }
}

/// Why a task runs (or why it is cached).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum Reason {
    /// A completed task with this key and intact products exists.
    Cached { task: u64 },
    /// No task of this step ever ran for this group.
    New,
    /// These inputs changed (or appeared, or disappeared) since the last completed task.
    InputsChanged(Vec<String>),
    /// The command, env, outputs or container changed.
    DefinitionChanged,
    /// These params changed.
    ParamsChanged(Vec<String>),
    /// An upstream task produced different products.
    UpstreamChanged,
    /// The cached products were deleted or modified.
    ProductsMissing(String),
    /// `--force` or `rerun`.
    Forced,
    /// The previous attempt of this task failed, was cancelled or was interrupted.
    Retry,
    /// The same task (same key) failed after its retries in `run`: a run by hand tries again.
    FailedBefore { task: u64, run: u64 },
    /// Not run (a trigger's run): the same task failed after its retries as `task` of `run`,
    /// or, downstream, an upstream task is held for that one.
    Held { task: u64, run: u64 },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Cached { task } => write!(f, "cached (task {task})"),
            Reason::New => f.write_str("new input"),
            Reason::InputsChanged(paths) => write!(f, "changed input: {}", abbreviate(paths)),
            Reason::DefinitionChanged => f.write_str("changed command"),
            Reason::ParamsChanged(names) => write!(f, "changed param: {}", abbreviate(names)),
            Reason::UpstreamChanged => f.write_str("upstream changed"),
            Reason::ProductsMissing(path) => write!(f, "product missing or modified: {path}"),
            Reason::Forced => f.write_str("forced"),
            Reason::Retry => f.write_str("previous attempt failed"),
            Reason::FailedBefore { task, run } => write!(
                f,
                "failed after its retries in run {run} (task {task}); triggers hold it for a retry by hand"
            ),
            Reason::Held { task, run } => write!(
                f,
                "held: task {task} failed after its retries in run {run}; waits for `engine retry {run}` or changed inputs"
            ),
        }
    }
}

fn abbreviate(list: &[String]) -> String {
    match list.len() {
        0 => String::new(),
        1..=3 => list.join(", "),
        n => format!("{}, ... ({n} in all)", list[..2].join(", ")),
    }
}

/// One input of a task, with the content hash it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRef {
    /// The source or step it came from.
    pub from: String,
    /// The stable name the key uses: the path relative to the source root, or to the producing
    /// task's output directory.
    pub name: String,
    pub path: PathBuf,
    pub hash: String,
    /// The task that made it, when it is a product.
    pub task: Option<u64>,
}

/// One execution of a step for one group (or for everything, for an aggregate step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: u64,
    pub run: u64,
    pub step: String,
    /// The group key; `None` for an aggregate step.
    pub group: Option<String>,
    /// blake3 of the step identity, the params it reads and its inputs' hashes; empty until the
    /// task is ready (its inputs known).
    pub key: String,
    /// The step's identity hash when the task was keyed.
    pub identity: String,
    /// The params the step reads, as resolved for this task.
    pub params: BTreeMap<String, ParamValue>,
    pub status: TaskStatus,
    /// Why it ran or was cached; `None` until decided.
    pub reason: Option<Reason>,
    pub inputs: Vec<InputRef>,
    /// Where the products are published (absolute); written atomically by renaming.
    pub out_dir: PathBuf,
    /// Product paths, set when the task succeeds (or copied from the cached task).
    pub products: Vec<PathBuf>,
    pub attempts: u32,
    /// For `Blocked`: the upstream task that failed.
    pub blocked_by: Option<u64>,
    /// The rendered command, for `show` and `lineage`.
    pub command: String,
    pub finished_ms: Option<Millis>,
}

/// One try of a task.
#[cfg(test)]
impl TaskRecord {
    /// A pending task of `step` in `run`, for tests; the store assigns its id.
    pub fn pending(run: u64, step: &str) -> TaskRecord {
        TaskRecord {
            id: 0,
            run,
            step: step.to_string(),
            group: None,
            key: String::new(),
            identity: String::new(),
            params: BTreeMap::new(),
            status: TaskStatus::Pending,
            reason: None,
            inputs: Vec::new(),
            out_dir: PathBuf::new(),
            products: Vec::new(),
            attempts: 0,
            blocked_by: None,
            command: String::new(),
            finished_ms: None,
        }
    }
}

impl TaskRecord {
    /// Moves the task's status on by `event`, as the task lifecycle table says.
    pub fn apply(&mut self, event: &Event) -> Result<(), IllegalTransition> {
        self.status = lifecycle::task::apply(self.id, self.status, event.kind())?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub task: u64,
    pub number: u32,
    /// Committed before the engine waits on the process, so recovery can find it.
    pub pid: Option<u32>,
    pub pgid: Option<u32>,
    pub started_ms: Millis,
    pub finished_ms: Option<Millis>,
    pub end: Option<AttemptEnd>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub wall_ms: Option<u64>,
    pub user_cpu_ms: Option<u64>,
    pub sys_cpu_ms: Option<u64>,
    pub max_rss_bytes: Option<u64>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// The temporary output directory of this attempt.
    pub tmp_dir: PathBuf,
    /// The run's ended log, where the supervisor appends how the command ended (stores from
    /// before the supervisor name a status file of the attempt's own): an attempt that finished
    /// while the engine was down is settled from it, not run again. Kept as `status_file`.
    #[serde(rename = "status_file")]
    pub ended_log: PathBuf,
    pub error: Option<String>,
    /// For an attempt run by the SLURM executor: its job. Absent in stores written before the
    /// SLURM executor existed, and for local attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmJobRecord>,
}

/// The SLURM job of an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmJobRecord {
    /// The id `sbatch` gave. Committed before the engine waits on the job: a restarted engine
    /// re-attaches to the job by this id and never submits the attempt again.
    pub job_id: String,
    /// The batch script that was submitted.
    pub script: PathBuf,
    /// The job's last state as SLURM named it: `PENDING` or `RUNNING` while it is in the queue,
    /// then how it ended (`COMPLETED`, `FAILED`, `TIMEOUT`, `OUT_OF_MEMORY`, `NODE_FAIL`,
    /// `CANCELLED`, ...). `None` before the first poll saw it, or for an ended job when SLURM had
    /// forgotten it by the time the engine asked.
    pub state: Option<String>,
    /// SLURM's reason for that state (`Resources`, `Priority`, `TimeLimit`, `NodeDown`, ...).
    pub reason: Option<String>,
    /// The nodes it ran on.
    pub nodes: Option<String>,
}

impl AttemptRecord {
    /// A new attempt, started now, with nothing known yet of how it ends.
    pub fn new(task: u64, number: u32, files: AttemptFiles) -> AttemptRecord {
        AttemptRecord {
            task,
            number,
            pid: None,
            pgid: None,
            started_ms: now_ms(),
            finished_ms: None,
            end: None,
            exit_code: None,
            signal: None,
            wall_ms: None,
            user_cpu_ms: None,
            sys_cpu_ms: None,
            max_rss_bytes: None,
            stdout: files.stdout,
            stderr: files.stderr,
            tmp_dir: files.tmp_dir,
            ended_log: files.ended_log,
            error: None,
            slurm: None,
        }
    }
}

/// Where an attempt's logs and temporary files are.
pub struct AttemptFiles {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub tmp_dir: PathBuf,
    /// The run's ended log.
    pub ended_log: PathBuf,
}

/// git-index-style stat fingerprint: when it is unchanged, the content is assumed unchanged.
///
/// For a file, the fields are its own stat (symlinks followed). For a directory item they summarise
/// everything under it: `size` is the total size of its files, `mtime_ns` and `ctime_ns` are the
/// newest among the directory and all its entries (so they say when anything under it last
/// changed), `inode` and `dev` are the directory's own, and [`tree`](Fingerprint::tree) is a digest
/// of every entry's stat: any file changed, added, removed or renamed under the directory changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Status-change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i128,
    pub inode: u64,
    pub dev: u64,
    /// 0 for a file. For a directory, the first 8 bytes (little-endian) of blake3 over every entry
    /// under it, sorted by relative path: for a file its relative path, size, mtime, ctime, inode
    /// and dev; for a subdirectory its relative path only (touching a directory is not a change
    /// of content, though it does move `mtime_ns`).
    pub tree: u64,
    /// The file (for a directory: any file under it) changed so shortly before this fingerprint
    /// was taken that it could change again within the same timestamp tick, leaving the same
    /// fingerprint over different content (what git calls "racy git"): its newest timestamp is
    /// within [`RACY_WINDOW`](crate::scan::RACY_WINDOW) ([`RACY_WINDOW_COARSE`](crate::scan::RACY_WINDOW_COARSE) on a filesystem with whole-second
    /// timestamps) of the moment the fingerprint was taken.
    ///
    /// A racy fingerprint never lets a recorded hash be reused: the content is hashed on this
    /// scan, and since the flag is part of the fingerprint, the next scan (which sees the settled,
    /// non-racy fingerprint) hashes it once more and can trust it from then on. For a file nobody
    /// but the engine writes (a product just published), [`Fingerprint::same_stat`] ignores it.
    pub racy: bool,
}

/// What the store knows of an input item, to skip rehashing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    pub fingerprint: Fingerprint,
    pub hash: String,
    /// When the engine first saw this content (`hash`) at this path, if its source had been
    /// looked at before: a file moved in with its old mtime and ctime (a disk mounted, a
    /// filesystem that keeps the ctime on a rename) arrives then. Kept while the content stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_ms: Option<Millis>,
}

/// An output file of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRecord {
    pub path: PathBuf,
    pub size: u64,
    pub hash: String,
    pub fingerprint: Fingerprint,
    pub task: u64,
}

/// One entry of the append-only event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: u64,
    pub time_ms: Millis,
    pub run: Option<u64>,
    pub task: Option<u64>,
    /// The event's kind, as [`crate::lifecycle::EventKind`] names it: `run.created`,
    /// `attempt.started`, `task.failed`, ...
    pub kind: String,
    pub detail: String,
}

/// A webhook delivery not yet over: kept from the moment its run is created until the receiver
/// took it or the attempts ran out, so a daemon that stops, or is killed, goes on with it when it
/// starts again. Keyed by (run, the hook's place among its pipeline's `notify` lines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub url: String,
    pub on_success: bool,
    pub on_failure: bool,
    /// The attempts begun so far: written before each attempt, so an attempt cut short by a
    /// stop is never made again under the same number.
    pub attempts: u32,
    /// When the next attempt may begin: the backoff after the last one.
    pub next_ms: Millis,
    /// What went wrong with the last attempt, if it was answered or failed before the stop.
    pub last_problem: Option<String>,
}
