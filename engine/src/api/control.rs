//! What the HTTP API asks of the daemon: the seam between the two. The API reads runs, tasks,
//! attempts, logs and lineage straight from the store; everything that needs the daemon's live
//! state (its loaded pipelines, its triggers, the runs it executes) goes through [`Control`].

use serde::Serialize;

/// One loaded pipeline as the daemon sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PipelineStatus {
    pub name: String,
    /// The `.pipe` file it comes from (absolute).
    pub file: String,
    /// `manual`, `cron` or `continuous`.
    pub trigger: String,
    /// The cron expression and time zone, or the cooldown, as written.
    pub trigger_detail: Option<String>,
    /// When a cron trigger fires next (ms since the epoch).
    pub next_fire_ms: Option<u64>,
    /// What a trigger that fires while a run is going does: `skip`, `queue` or `allow`.
    pub overlap: String,
    /// Items not yet processed, per step (the gap), as of the daemon's last scan.
    pub gap: Vec<StepGap>,
    /// The newest run of the pipeline, if any.
    pub last_run: Option<u64>,
    pub last_run_status: Option<String>,
    /// The params, with their types and constraints, for a form that triggers the pipeline.
    pub params: Vec<ParamInfo>,
    /// Why the file does not load as it is now (the daemon keeps its last good version).
    pub load_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepGap {
    pub step: String,
    /// Tasks that would run (new or changed inputs) or wait for their inputs to settle.
    pub tasks: u64,
    /// Tasks held for a retry by hand: the same task failed after its retries (or one upstream
    /// of it did), and the trigger does not run it again until someone retries it or its
    /// inputs, command or params change.
    pub held: u64,
}

impl StepGap {
    /// A step with nothing to do.
    pub fn empty(step: &str) -> StepGap {
        StepGap {
            step: step.to_string(),
            tasks: 0,
            held: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    /// `int`, `float`, `string`, `bool`, `path`, `duration`, `size` or `enum`.
    pub kind: String,
    /// The default, as `--param` would take it.
    pub default: Option<String>,
    /// The constraint in words (`1..=64`, `matches ^[A-Z]+$`, `one of a, b`), if any.
    pub constraint: Option<String>,
    /// For an enum: its values.
    pub choices: Vec<String>,
    /// Whether a value must be given (the param has no default).
    pub required: bool,
    /// Inclusive bounds of a range constraint (on an int or float; milliseconds for a
    /// duration, bytes for a size).
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The regex a string must match as a whole.
    pub pattern: Option<String>,
    /// What a value looks like, in words (`a duration such as `30s``).
    pub expected: String,
}

/// A pipeline's DAG: its sources and steps, and what each step consumes or comes after.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PipelineGraph {
    pub pipeline: String,
    /// Sources first, then steps upstream before downstream.
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphNode {
    pub name: String,
    /// `source` or `step`.
    pub kind: String,
    /// For a step run once per group: the grouping it runs `each` of.
    pub each: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
    /// `input` (the downstream consumes the upstream) or `after` (ordering only).
    pub kind: String,
}

/// A file that does not load, with the error the daemon logged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadError {
    pub file: String,
    pub error: String,
}

/// Why the daemon refused an action. The API maps each to a status code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    /// 404.
    #[error("no pipeline named `{0}`")]
    UnknownPipeline(String),
    /// 404.
    #[error("no run {0}")]
    UnknownRun(u64),
    /// 404: `rerun --from` or `retry STEP` naming a step the pipeline does not have.
    #[error("pipeline `{pipeline}` has no step `{step}`")]
    UnknownStep { pipeline: String, step: String },
    /// 422: each bad param with its message (param name, value, what was expected).
    #[error("invalid params")]
    InvalidParams(Vec<ParamProblem>),
    /// 409: e.g. cancelling a run that has finished, retrying a run with nothing failed.
    #[error("{0}")]
    Conflict(String),
    /// 503: the daemon is shutting down and starts nothing new.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// 500.
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParamProblem {
    pub param: String,
    pub message: String,
}

/// Actions on the daemon's live state. Each returns quickly: a triggered run executes in the
/// background, and its id is returned as soon as it exists in the store.
pub trait Control: Send + Sync + 'static {
    /// Every loaded pipeline.
    fn pipelines(&self) -> Vec<PipelineStatus>;
    /// Files under the daemon's directory that do not load at all (no last good version).
    fn load_errors(&self) -> Vec<LoadError>;
    /// Starts a manual run of `pipeline` with these `--param`-style assignments (name, text),
    /// validated exactly as `engine run --param` validates them. Returns the new run's id.
    fn trigger(&self, pipeline: &str, params: &[(String, String)]) -> Result<u64, ControlError>;
    /// Asks a running run to stop (as `engine cancel` does). Returns once the request is stored.
    fn cancel(&self, run: u64) -> Result<(), ControlError>;
    /// A new run that goes on with `run` (as `engine resume`). Returns its id.
    fn resume(&self, run: u64) -> Result<u64, ControlError>;
    /// A new run that reruns `run`, ignoring the cache for every step or from `from` on.
    fn rerun(&self, run: u64, from: Option<&str>) -> Result<u64, ControlError>;
    /// A new run of the failed tasks of `run` (of `step` only, if given).
    fn retry(&self, run: u64, step: Option<&str>) -> Result<u64, ControlError>;
    /// Number of tasks waiting for a slot, across the daemon's runs (for `/metrics`).
    fn queue_depth(&self) -> u64;
    /// The DAG of a loaded pipeline.
    fn graph(&self, pipeline: &str) -> Result<PipelineGraph, ControlError>;
    /// Scans the pipeline's sources now and returns its gap, per step, as a run with the
    /// params' defaults would see it (and as `GET /pipelines` shows it from then on).
    fn gap(&self, pipeline: &str) -> Result<Vec<StepGap>, ControlError>;
    /// Whether new task starts are paused in every run of the daemon.
    fn paused(&self) -> bool;
    /// Pauses (`true`) or resumes new task starts; running tasks go on. Returns whether it
    /// changed anything.
    fn set_paused(&self, paused: bool) -> bool;
}
