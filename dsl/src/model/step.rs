//! A step as the engine sees it: templates expanded, values parsed, names resolved.
//! [`StepDef::identity`] is the part of a step that decides whether its outputs would change,
//! and so what goes into task keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::command::CommandTemplate;
use super::condition::Condition;
use super::sorted_map::{Env, SortedMap};
use crate::ast::BackoffKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDef {
    pub name: String,
    /// The group the step runs once per; `None` for an aggregate step.
    pub each: Option<String>,
    /// Sources and steps consumed, in the order written.
    pub inputs: Vec<String>,
    /// Steps that must finish first, without consuming their products.
    pub after: Vec<String>,
    /// Boxed: most steps have none, and every step would otherwise hold room for one.
    pub when: Option<Box<Condition>>,
    pub run: CommandTemplate,
    /// Glob patterns selecting the products in the output directory; empty means all files.
    pub outputs: Vec<String>,
    pub env: Env,
    pub policy: Policy,
    pub resources: Resources,
    pub executor: Executor,
    pub container: Option<String>,
    /// The params the step reads (in `run`, `env` or `when`), sorted. Shared with the other
    /// steps of the pipeline: a pipeline has few params and may have a great many steps.
    pub params_used: Vec<Arc<str>>,
}

/// How the scheduler treats the step's tasks. Never part of a task key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub retries: u32,
    pub backoff: Backoff,
    pub timeout_ms: Option<u64>,
    pub cooldown_ms: Option<u64>,
    /// Higher starts first.
    pub priority: i64,
    /// At most this many tasks of the step at once.
    pub concurrency: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    pub kind: BackoffKind,
    pub delay_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            kind: BackoffKind::Exponential,
            delay_ms: 10_000,
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (2 for the first retry).
    pub fn delay_before(&self, attempt: u32) -> u64 {
        match self.kind {
            BackoffKind::Fixed => self.delay_ms,
            BackoffKind::Exponential => {
                let doublings = attempt.saturating_sub(2).min(20);
                self.delay_ms.saturating_mul(1 << doublings)
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: Option<u32>,
    pub gpus: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub time_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executor {
    pub kind: ExecutorKind,
    /// Executor settings such as a SLURM partition, sorted by name.
    pub settings: SortedMap<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    #[default]
    Local,
    Slurm,
}

impl ExecutorKind {
    pub const NAMES: [&'static str; 2] = ["local", "slurm"];

    pub fn from_name(name: &str) -> Option<ExecutorKind> {
        match name {
            "local" => Some(ExecutorKind::Local),
            "slurm" => Some(ExecutorKind::Slurm),
            _ => None,
        }
    }

    /// The settings an `executor` block may give.
    pub fn settings(self) -> &'static [&'static str] {
        match self {
            ExecutorKind::Local => &[],
            ExecutorKind::Slurm => &["partition", "account", "qos", "options"],
        }
    }
}

/// What makes a step's outputs what they are: hashed into every task key of the step.
/// `when` is not part of it (it decides which groups get a task, not what a task makes), and
/// neither is anything in [`Policy`] or [`Resources`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepIdentity<'a> {
    pub name: &'a str,
    pub each: &'a Option<String>,
    pub inputs: &'a [String],
    pub run: String,
    pub outputs: &'a [String],
    pub env: BTreeMap<&'a str, String>,
    pub executor: ExecutorKind,
    pub container: &'a Option<String>,
}

impl StepDef {
    pub fn identity(&self) -> StepIdentity<'_> {
        StepIdentity {
            name: &self.name,
            each: &self.each,
            inputs: &self.inputs,
            run: self.run.to_source(),
            outputs: &self.outputs,
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.to_source()))
                .collect(),
            executor: self.executor.kind,
            container: &self.container,
        }
    }

    /// blake3 of the canonical JSON of [`StepDef::identity`], in hex.
    pub fn identity_hash(&self) -> String {
        let json = serde_json::to_vec(&self.identity()).expect("a step identity always serializes");
        blake3::hash(&json).to_hex().to_string()
    }
}
