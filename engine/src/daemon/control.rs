//! The daemon's side of the API's [`Control`] seam: its pipelines as it runs them, and the
//! actions on them, with the same validation and the same run machinery as the CLI.

use std::sync::Arc;

use dsl::model::param::{resolve_params, ParamConstraint, ParamError, ParamType};
use dsl::model::pipeline::{Edge, Node};
use dsl::model::{Pipeline, Trigger};
use petgraph::visit::EdgeRef;

use super::continuous::{look, LookError};
use super::cron::next_fire_ms;
use super::runs::Launch;
use super::Daemon;
use crate::api::control::{
    Control, ControlError, GraphEdge, GraphNode, LoadError, ParamInfo, ParamProblem, PipelineGraph,
    PipelineStatus, StepGap,
};
use crate::lifecycle::Event;
use crate::run::again::{derive, Again};
use crate::run::{Force, RunError, RunRequest};
use crate::store::RunStatus;

impl Control for Daemon {
    fn pipelines(&self) -> Vec<PipelineStatus> {
        // Each pipeline with the error of its file's current version, read under one lock.
        let pipelines: Vec<_> = {
            let registry = self.registry.lock().expect("registry lock");
            registry
                .pipelines()
                .map(|(file, pipeline)| {
                    let error = registry.error_of(&file);
                    (file, pipeline, error)
                })
                .collect()
        };
        let gaps = self.gaps.lock().expect("gaps lock").clone();
        pipelines
            .into_iter()
            .map(|(file, pipeline, load_error)| {
                let newest = self.store.runs_of(&pipeline.name, None, 1);
                let last = newest.as_ref().ok().and_then(|runs| runs.first());
                PipelineStatus {
                    name: pipeline.name.clone(),
                    file: file.display().to_string(),
                    trigger: trigger_kind(&pipeline.trigger).to_string(),
                    trigger_detail: trigger_detail(&pipeline.trigger),
                    next_fire_ms: next_fire_ms(&pipeline.trigger),
                    overlap: pipeline.overlap.as_str().to_string(),
                    gap: gaps
                        .get(&pipeline.name)
                        .map(|gap| gap.values().cloned().collect())
                        .unwrap_or_default(),
                    last_run: last.map(|r| r.id),
                    last_run_status: last.map(|r| r.status.as_str().to_string()),
                    params: params_of(&pipeline),
                    load_error,
                }
            })
            .collect()
    }

    fn load_errors(&self) -> Vec<LoadError> {
        self.registry
            .lock()
            .expect("registry lock")
            .errors()
            .into_iter()
            .filter(|(_, _, has_good)| !has_good)
            .map(|(file, error, _)| LoadError {
                file: file.display().to_string(),
                error,
            })
            .collect()
    }

    fn trigger(&self, name: &str, params: &[(String, String)]) -> Result<u64, ControlError> {
        let (file, pipeline) = self
            .pipeline(name)
            .ok_or_else(|| ControlError::UnknownPipeline(name.to_string()))?;
        let params = resolve_params(&pipeline.params, params)
            .map_err(|errors| ControlError::InvalidParams(errors.iter().map(problem).collect()))?;
        self.launch(
            pipeline,
            file,
            params,
            "api".to_string(),
            Force::None,
            None,
            None,
        )
    }

    fn cancel(&self, run: u64) -> Result<(), ControlError> {
        self.store
            .run(run)
            .map_err(|_| ControlError::UnknownRun(run))?;
        let requested = Event::RunCancelRequested {
            by: "over the API".to_string(),
        };
        let ended = self
            .store
            .write(|tx| {
                let status = tx.run(run)?.status;
                if status.is_finished() {
                    return Ok(Some(status));
                }
                tx.run_event(run, &requested, |run| run.cancel_requested = true)?;
                Ok(None)
            })
            .map_err(|error| ControlError::Internal(error.to_string()))?;
        match ended {
            Some(status) => Err(ControlError::Conflict(format!(
                "run {run} is not running (it is {})",
                status.as_str()
            ))),
            None => Ok(()),
        }
    }

    fn resume(&self, run: u64) -> Result<u64, ControlError> {
        self.again(run, Again::Resume)
    }

    fn rerun(&self, run: u64, from: Option<&str>) -> Result<u64, ControlError> {
        self.again(run, Again::Rerun(from.map(str::to_string)))
    }

    fn retry(&self, run: u64, step: Option<&str>) -> Result<u64, ControlError> {
        self.again(run, Again::Retry(step.map(str::to_string)))
    }

    fn queue_depth(&self) -> u64 {
        let Ok(runs) = self.store.live_runs() else {
            return 0;
        };
        runs.iter()
            .filter(|r| r.status == RunStatus::Running)
            .filter_map(|r| self.store.tasks_of(r.id).ok())
            .flatten()
            .filter(|t| t.status == crate::store::TaskStatus::Pending)
            .count() as u64
    }

    fn graph(&self, name: &str) -> Result<PipelineGraph, ControlError> {
        let (_, pipeline) = self
            .pipeline(name)
            .ok_or_else(|| ControlError::UnknownPipeline(name.to_string()))?;
        Ok(graph_of(&pipeline))
    }

    fn gap(&self, name: &str) -> Result<Vec<StepGap>, ControlError> {
        let (file, pipeline) = self
            .pipeline(name)
            .ok_or_else(|| ControlError::UnknownPipeline(name.to_string()))?;
        let looked = look(self, &file, &pipeline).map_err(|error| match error {
            LookError::Params(errors) => {
                ControlError::InvalidParams(errors.iter().map(problem).collect())
            }
            LookError::Scan(error) => {
                ControlError::Conflict(format!("cannot scan the sources of `{name}`: {error}"))
            }
            LookError::Store(error) => ControlError::Internal(error.to_string()),
        })?;
        let steps = pipeline
            .steps
            .iter()
            .map(|step| {
                looked
                    .gap
                    .get(&step.name)
                    .cloned()
                    .unwrap_or_else(|| StepGap::empty(&step.name))
            })
            .collect();
        Ok(steps)
    }

    fn paused(&self) -> bool {
        self.stop.pause.is_paused()
    }

    fn set_paused(&self, paused: bool) -> bool {
        let changed = self.stop.pause.set(paused);
        if changed {
            if paused {
                tracing::info!("new task starts paused: running tasks go on");
            } else {
                tracing::info!("new task starts resumed");
            }
        }
        changed
    }
}

impl Daemon {
    fn again(&self, run: u64, again: Again) -> Result<u64, ControlError> {
        let parent = self
            .store
            .run(run)
            .map_err(|_| ControlError::UnknownRun(run))?;
        if !parent.status.is_finished() {
            return Err(ControlError::Conflict(format!(
                "run {run} is still {}; cancel it first, or wait",
                parent.status.as_str()
            )));
        }
        let (file, pipeline) = self
            .pipeline(&parent.pipeline)
            .ok_or_else(|| ControlError::UnknownPipeline(parent.pipeline.clone()))?;
        if let Again::Rerun(Some(step)) | Again::Retry(Some(step)) = &again {
            if pipeline.step(step).is_none() {
                return Err(ControlError::UnknownStep {
                    pipeline: pipeline.name.clone(),
                    step: step.clone(),
                });
            }
        }
        let derived = derive(&self.store, &parent, &pipeline, &again)
            .map_err(|error| ControlError::Internal(error.to_string()))?
            .ok_or_else(|| ControlError::Conflict(format!("run {run} has no failed tasks")))?;
        self.launch(
            pipeline,
            file,
            parent.params.clone(),
            derived.trigger,
            derived.force,
            derived.only,
            Some(parent.id),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        pipeline: Arc<Pipeline>,
        file: std::path::PathBuf,
        params: std::collections::BTreeMap<String, dsl::model::ParamValue>,
        trigger: String,
        force: Force,
        only: Option<crate::run::TaskFilter>,
        parent: Option<u64>,
    ) -> Result<u64, ControlError> {
        if self.stop.drain.is_cancelled() {
            return Err(ControlError::ShuttingDown);
        }
        let mut options = self.run_options(force);
        options.only = only;
        let launch = Launch {
            pipeline,
            request: RunRequest {
                file,
                params,
                trigger,
                parent,
            },
            options,
        };
        match self.runs.start(launch) {
            Ok(run) => Ok(run.id),
            // Refused by the pipeline's overlap policy, or by a live run of another process.
            Err(RunError::AlreadyRunning { pipeline, run, .. }) => {
                Err(ControlError::Conflict(format!(
                    "pipeline `{pipeline}` is being run by run {run}; wait for it, or cancel it"
                )))
            }
            Err(error) => Err(ControlError::Internal(error.to_string())),
        }
    }
}

fn problem(error: &ParamError) -> ParamProblem {
    let param = match error {
        ParamError::Invalid { param, .. }
        | ParamError::Unknown { param, .. }
        | ParamError::Missing { param } => param.clone(),
        ParamError::Malformed { arg } => arg.clone(),
    };
    ParamProblem {
        param,
        message: error.to_string(),
    }
}

fn trigger_kind(trigger: &Trigger) -> &'static str {
    match trigger {
        Trigger::Manual => "manual",
        Trigger::Cron { .. } => "cron",
        Trigger::Continuous { .. } => "continuous",
    }
}

fn trigger_detail(trigger: &Trigger) -> Option<String> {
    match trigger {
        Trigger::Manual => None,
        Trigger::Cron { expr, tz, missed } => {
            Some(format!("{expr} ({tz}), missed fires: {}", missed.as_str()))
        }
        Trigger::Continuous {
            cooldown_ms,
            max_wait_ms,
            poll_ms,
        } => {
            let max_wait = max_wait_ms.map_or(String::new(), |max| format!(", max wait {max} ms"));
            Some(format!(
                "cooldown {cooldown_ms} ms{max_wait}, poll {poll_ms} ms"
            ))
        }
    }
}

fn params_of(pipeline: &Pipeline) -> Vec<ParamInfo> {
    pipeline
        .params
        .iter()
        .map(|p| {
            let (min, max, pattern) = match &p.constraint {
                Some(ParamConstraint::Range { min, max }) => (*min, *max, None),
                Some(ParamConstraint::Matches(regex)) => (None, None, Some(regex.clone())),
                None => (None, None, None),
            };
            ParamInfo {
                name: p.name.clone(),
                kind: p.ty.name().to_string(),
                default: p.default.as_ref().map(|v| v.to_param_text()),
                constraint: p.constraint.as_ref().map(|c| c.to_string()),
                choices: match &p.ty {
                    ParamType::Enum(values) => values.clone(),
                    _ => Vec::new(),
                },
                required: p.default.is_none(),
                min,
                max,
                pattern,
                expected: p.expected(),
            }
        })
        .collect()
}

/// The pipeline's DAG as the API shows it: sources, then steps in topological order.
fn graph_of(pipeline: &Pipeline) -> PipelineGraph {
    let graph = pipeline.graph();
    let mut nodes: Vec<GraphNode> = pipeline
        .sources
        .iter()
        .map(|source| GraphNode {
            name: source.name.clone(),
            kind: "source".to_string(),
            each: None,
        })
        .collect();
    nodes.extend(pipeline.steps.iter().map(|step| GraphNode {
        name: step.name.clone(),
        kind: "step".to_string(),
        each: step.each.clone(),
    }));
    let name = |node: Node| pipeline.node_name(node).to_string();
    let edges = graph
        .edge_references()
        .map(|edge| GraphEdge {
            from: name(graph[edge.source()]),
            to: name(graph[edge.target()]),
            kind: match edge.weight() {
                Edge::Input => "input",
                Edge::After => "after",
            }
            .to_string(),
        })
        .collect();
    PipelineGraph {
        pipeline: pipeline.name.clone(),
        nodes,
        edges,
    }
}
