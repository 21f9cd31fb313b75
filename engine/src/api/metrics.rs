//! `GET /metrics`: the Prometheus text format. Runs and tasks by pipeline and status, the queue
//! depth and whether new task starts are paused, a histogram of attempt wall times, the gap per pipeline and step, the time of each
//! pipeline's last successful run, and how many pipeline files do not load.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use super::control::{LoadError, PipelineStatus};
use super::error::ApiError;
use super::response::{with_type, Response};
use super::state::ApiState;
use crate::store::{AttemptRecord, RunRecord, RunStatus, TaskRecord, TaskStatus};

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the duration histogram's buckets, in seconds (`+Inf` follows).
const BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0,
];

/// What the metrics are computed from.
struct Snapshot {
    runs: Vec<RunRecord>,
    tasks: Vec<TaskRecord>,
    attempts: Vec<AttemptRecord>,
    pipelines: Vec<PipelineStatus>,
    load_errors: Vec<LoadError>,
    queue_depth: u64,
    paused: bool,
}

pub async fn get(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let snapshot = state
        .blocking(|state| {
            Ok(Snapshot {
                runs: state.store.runs()?,
                tasks: state.store.tasks()?,
                attempts: state.store.attempts()?,
                pipelines: state.control.pipelines(),
                load_errors: state.control.load_errors(),
                queue_depth: state.control.queue_depth(),
                paused: state.control.paused(),
            })
        })
        .await?;
    Ok(with_type(StatusCode::OK, CONTENT_TYPE, render(&snapshot)))
}

fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let pipeline_of_run: HashMap<u64, &str> =
        s.runs.iter().map(|r| (r.id, r.pipeline.as_str())).collect();
    let pipeline_of_task: HashMap<u64, &str> = s
        .tasks
        .iter()
        .map(|t| (t.id, pipeline_of_run.get(&t.run).copied().unwrap_or("")))
        .collect();

    let mut runs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut last_success: BTreeMap<&str, u64> = BTreeMap::new();
    for run in &s.runs {
        for status in RunStatus::all() {
            runs.entry((&run.pipeline, status.as_str())).or_default();
        }
        *runs
            .entry((&run.pipeline, run.status.as_str()))
            .or_default() += 1;
        if let (RunStatus::Succeeded, Some(finished)) = (run.status, run.finished_ms) {
            let last = last_success.entry(&run.pipeline).or_default();
            *last = (*last).max(finished);
        }
    }
    header(
        &mut out,
        "engine_runs",
        "gauge",
        "Runs in the store, by pipeline and status.",
    );
    for ((pipeline, status), n) in &runs {
        line(
            &mut out,
            "engine_runs",
            &[("pipeline", pipeline), ("status", status)],
            *n,
        );
    }

    let mut tasks: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for task in &s.tasks {
        let pipeline = pipeline_of_run.get(&task.run).copied().unwrap_or("");
        for status in TaskStatus::all() {
            tasks.entry((pipeline, status.as_str())).or_default();
        }
        *tasks.entry((pipeline, task.status.as_str())).or_default() += 1;
    }
    header(
        &mut out,
        "engine_tasks",
        "gauge",
        "Tasks in the store, by pipeline and status.",
    );
    for ((pipeline, status), n) in &tasks {
        line(
            &mut out,
            "engine_tasks",
            &[("pipeline", pipeline), ("status", status)],
            *n,
        );
    }

    header(
        &mut out,
        "engine_queue_depth",
        "gauge",
        "Tasks waiting for a slot in the daemon's runs.",
    );
    line(&mut out, "engine_queue_depth", &[], s.queue_depth);

    header(
        &mut out,
        "engine_queue_paused",
        "gauge",
        "1 while new task starts are paused in the daemon's runs, else 0.",
    );
    line(&mut out, "engine_queue_paused", &[], u8::from(s.paused));

    let mut durations: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for attempt in s.attempts.iter().filter(|a| a.end.is_some()) {
        if let Some(ms) = attempt.wall_ms {
            let pipeline = pipeline_of_task.get(&attempt.task).copied().unwrap_or("");
            durations
                .entry(pipeline)
                .or_default()
                .push(ms as f64 / 1000.0);
        }
    }
    let name = "engine_task_duration_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Wall time of finished task attempts, by pipeline.",
    );
    for (pipeline, seconds) in &durations {
        for bound in BUCKETS {
            let n = seconds.iter().filter(|s| **s <= bound).count() as u64;
            let le = bound.to_string();
            line(
                &mut out,
                &format!("{name}_bucket"),
                &[("pipeline", pipeline), ("le", &le)],
                n,
            );
        }
        let n = seconds.len() as u64;
        line(
            &mut out,
            &format!("{name}_bucket"),
            &[("pipeline", pipeline), ("le", "+Inf")],
            n,
        );
        let sum: f64 = seconds.iter().sum();
        line(
            &mut out,
            &format!("{name}_sum"),
            &[("pipeline", pipeline)],
            sum,
        );
        line(
            &mut out,
            &format!("{name}_count"),
            &[("pipeline", pipeline)],
            n,
        );
    }

    header(
        &mut out,
        "engine_gap_tasks",
        "gauge",
        "Tasks that would run now, by pipeline and step.",
    );
    for pipeline in &s.pipelines {
        for gap in &pipeline.gap {
            let labels = [
                ("pipeline", pipeline.name.as_str()),
                ("step", gap.step.as_str()),
            ];
            line(&mut out, "engine_gap_tasks", &labels, gap.tasks);
        }
    }

    let name = "engine_last_success_timestamp_seconds";
    header(
        &mut out,
        name,
        "gauge",
        "When each pipeline's newest successful run finished.",
    );
    for (pipeline, ms) in &last_success {
        line(
            &mut out,
            name,
            &[("pipeline", pipeline)],
            *ms as f64 / 1000.0,
        );
    }

    let failing = s.load_errors.len()
        + s.pipelines
            .iter()
            .filter(|p| p.load_error.is_some())
            .count();
    header(
        &mut out,
        "engine_load_errors",
        "gauge",
        "Pipeline files that do not load as they are.",
    );
    line(&mut out, "engine_load_errors", &[], failing as u64);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = write!(out, "{{{}}}", labels.join(","));
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a "b" \c"#), r#"a \"b\" \\c"#);
        assert_eq!(escape("two\nlines"), "two\\nlines");
    }

    #[test]
    fn an_empty_engine_has_every_family_and_no_series_but_its_totals() {
        let text = render(&Snapshot {
            runs: vec![],
            tasks: vec![],
            attempts: vec![],
            pipelines: vec![],
            load_errors: vec![],
            queue_depth: 0,
            paused: false,
        });
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "engine_queue_depth 0",
                "engine_queue_paused 0",
                "engine_load_errors 0"
            ]
        );
        assert_eq!(text.matches("# TYPE").count(), 8);
    }
}
