//! `GET /pipelines/{name}/graph` and `GET /runs/{id}/graph`: a pipeline's DAG of sources and
//! steps, and the same DAG for one run with each step's tasks counted by status and summed up
//! in one state, for drawing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::control::{ControlError, GraphEdge, GraphNode, PipelineGraph};
use super::error::ApiError;
use super::request::{RunId, Segments};
use super::response::{json, Response};
use super::state::ApiState;
use crate::store::{TaskRecord, TaskStatus};

pub async fn pipeline(
    State(state): State<Arc<ApiState>>,
    Segments(name): Segments<String>,
) -> Result<Response, ApiError> {
    let graph = state
        .blocking(move |state| Ok(state.control.graph(&name)?))
        .await?;
    Ok(json(StatusCode::OK, &graph))
}

/// A run's DAG.
#[derive(Debug, Serialize)]
struct RunGraph {
    run: u64,
    pipeline: String,
    /// `definition` when drawn from the pipeline as the daemon has it loaded (steps the run had
    /// that it no longer has are added, unconnected); `tasks` when the pipeline is not loaded
    /// and the graph is pieced together from the run's tasks and their inputs.
    drawn_from: &'static str,
    nodes: Vec<RunNode>,
    edges: Vec<GraphEdge>,
}

#[derive(Debug, Serialize)]
struct RunNode {
    #[serde(flatten)]
    node: GraphNode,
    /// The run's tasks of this step, by status.
    tasks: BTreeMap<&'static str, u64>,
    /// The step's state in the run, from its tasks (see [`step_state`]); `null` for a source,
    /// or a step with no task in the run.
    state: Option<&'static str>,
}

pub async fn run(
    State(state): State<Arc<ApiState>>,
    RunId(id): RunId,
) -> Result<Response, ApiError> {
    let graph = state
        .blocking(move |state| {
            let run = state.store.run(id)?;
            let tasks = state.store.tasks_of(id)?;
            let (drawn_from, graph) = match state.control.graph(&run.pipeline) {
                Ok(graph) => ("definition", graph),
                Err(ControlError::UnknownPipeline(_)) => {
                    ("tasks", from_tasks(&run.pipeline, &tasks))
                }
                Err(error) => return Err(error.into()),
            };
            Ok(run_graph(id, drawn_from, graph, &tasks))
        })
        .await?;
    Ok(json(StatusCode::OK, &graph))
}

fn run_graph(
    run: u64,
    drawn_from: &'static str,
    graph: PipelineGraph,
    tasks: &[TaskRecord],
) -> RunGraph {
    let mut counts: BTreeMap<&str, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for task in tasks {
        *counts
            .entry(task.step.as_str())
            .or_default()
            .entry(task.status.as_str())
            .or_default() += 1;
    }
    let mut nodes: Vec<RunNode> = Vec::new();
    for node in graph.nodes {
        let tasks = counts.remove(node.name.as_str()).unwrap_or_default();
        nodes.push(RunNode {
            state: (node.kind == "step").then(|| step_state(&tasks)).flatten(),
            node,
            tasks,
        });
    }
    for (step, tasks) in counts {
        nodes.push(RunNode {
            node: GraphNode {
                name: step.to_string(),
                kind: "step".to_string(),
                each: None,
            },
            state: step_state(&tasks),
            tasks,
        });
    }
    RunGraph {
        run,
        pipeline: graph.pipeline,
        drawn_from,
        nodes,
        edges: graph.edges,
    }
}

/// A graph pieced together from a run's tasks: each step that has tasks, each source or step
/// their inputs came from, and an `input` edge for each such pair.
fn from_tasks(pipeline: &str, tasks: &[TaskRecord]) -> PipelineGraph {
    let mut steps: Vec<&str> = Vec::new();
    for task in tasks {
        if !steps.contains(&task.step.as_str()) {
            steps.push(&task.step);
        }
    }
    let mut sources: Vec<&str> = Vec::new();
    let mut edges: Vec<GraphEdge> = Vec::new();
    for task in tasks {
        for input in &task.inputs {
            if !steps.contains(&input.from.as_str()) && !sources.contains(&input.from.as_str()) {
                sources.push(&input.from);
            }
            let known = edges
                .iter()
                .any(|e| e.from == input.from && e.to == task.step);
            if !known {
                edges.push(GraphEdge {
                    from: input.from.clone(),
                    to: task.step.clone(),
                    kind: "input".to_string(),
                });
            }
        }
    }
    let node = |name: &str, kind: &str| GraphNode {
        name: name.to_string(),
        kind: kind.to_string(),
        each: None,
    };
    let mut nodes: Vec<GraphNode> = sources.iter().map(|s| node(s, "source")).collect();
    nodes.extend(steps.iter().map(|s| node(s, "step")));
    PipelineGraph {
        pipeline: pipeline.to_string(),
        nodes,
        edges,
    }
}

/// One word for a step's tasks in a run, the first that holds of: `running` (any task runs),
/// `failed` (any failed), `pending` (any waits), `cancelled`, `not_started`, `blocked`, `held`, `cached` (every task
/// was cached), `succeeded` (every task succeeded or was cached). `None` without tasks.
pub fn step_state(tasks: &BTreeMap<&'static str, u64>) -> Option<&'static str> {
    let has = |status: TaskStatus| tasks.get(status.as_str()).is_some_and(|n| *n > 0);
    let order = [
        TaskStatus::Running,
        TaskStatus::Failed,
        TaskStatus::Pending,
        TaskStatus::Cancelled,
        TaskStatus::NotStarted,
        TaskStatus::Blocked,
        TaskStatus::Held,
    ];
    if let Some(status) = order.into_iter().find(|s| has(*s)) {
        return Some(status.as_str());
    }
    match (has(TaskStatus::Succeeded), has(TaskStatus::Cached)) {
        (true, _) => Some(TaskStatus::Succeeded.as_str()),
        (false, true) => Some(TaskStatus::Cached.as_str()),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn a_step_state_says_what_matters_most() {
        assert_eq!(step_state(&counts(&[])), None);
        assert_eq!(
            step_state(&counts(&[("succeeded", 3), ("running", 1), ("failed", 1)])),
            Some("running")
        );
        assert_eq!(
            step_state(&counts(&[("succeeded", 3), ("failed", 1), ("pending", 2)])),
            Some("failed")
        );
        assert_eq!(
            step_state(&counts(&[("cancelled", 1), ("blocked", 1)])),
            Some("cancelled")
        );
        assert_eq!(step_state(&counts(&[("cached", 2)])), Some("cached"));
        assert_eq!(
            step_state(&counts(&[("cached", 2), ("succeeded", 1)])),
            Some("succeeded")
        );
    }
}
