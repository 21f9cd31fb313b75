//! A [`Control`] for the tests: it records every call, knows one pipeline `hello` (params
//! `threads: int` and `reference: string`, steps `count` and `total`), checks runs against the
//! store, and answers as the daemon would.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::api::control::{
    Control, ControlError, GraphEdge, GraphNode, LoadError, ParamInfo, ParamProblem, PipelineGraph,
    PipelineStatus, StepGap,
};
use crate::store::Store;

pub struct FakeControl {
    store: Arc<Store>,
    /// Every call, as `method args`.
    calls: Mutex<Vec<String>>,
    /// The id the next new run gets.
    next_run: AtomicU64,
    /// Refuse everything as a daemon that is shutting down does.
    pub shutting_down: AtomicBool,
    /// Whether new task starts are paused.
    paused: AtomicBool,
}

const STEPS: [&str; 2] = ["count", "total"];

impl FakeControl {
    pub fn new(store: Arc<Store>) -> FakeControl {
        FakeControl {
            store,
            calls: Mutex::new(Vec::new()),
            next_run: AtomicU64::new(100),
            shutting_down: AtomicBool::new(false),
            paused: AtomicBool::new(false),
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) -> Result<(), ControlError> {
        self.calls.lock().unwrap().push(call);
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(ControlError::ShuttingDown);
        }
        Ok(())
    }

    fn new_run(&self) -> u64 {
        self.next_run.fetch_add(1, Ordering::SeqCst)
    }

    /// The run, which must exist; `finished` says whether it must (or must not) be finished.
    fn check_run(&self, run: u64, finished: bool) -> Result<(), ControlError> {
        let record = self
            .store
            .run(run)
            .map_err(|_| ControlError::UnknownRun(run))?;
        match (record.status.is_finished(), finished) {
            (true, false) => Err(ControlError::Conflict(format!("run {run} has finished"))),
            (false, true) => Err(ControlError::Conflict(format!("run {run} is still going"))),
            _ => Ok(()),
        }
    }

    fn check_step(step: Option<&str>) -> Result<(), ControlError> {
        match step {
            Some(step) if !STEPS.contains(&step) => Err(ControlError::UnknownStep {
                pipeline: "hello".into(),
                step: step.into(),
            }),
            _ => Ok(()),
        }
    }
}

impl Control for FakeControl {
    fn pipelines(&self) -> Vec<PipelineStatus> {
        vec![PipelineStatus {
            name: "hello".into(),
            file: "/w/hello.pipe".into(),
            trigger: "cron".into(),
            trigger_detail: Some("0 2 * * * UTC".into()),
            next_fire_ms: Some(1_800_000_000_000),
            overlap: "queue".into(),
            gap: vec![
                StepGap {
                    step: "count".into(),
                    tasks: 2,
                    held: 0,
                },
                StepGap {
                    step: "total".into(),
                    tasks: 1,
                    held: 1,
                },
            ],
            last_run: None,
            last_run_status: None,
            params: vec![ParamInfo {
                name: "threads".into(),
                kind: "int".into(),
                default: Some("4".into()),
                constraint: Some("1..=64".into()),
                choices: vec![],
                required: false,
                min: Some(1.0),
                max: Some(64.0),
                pattern: None,
                expected: "a whole number between 1 and 64".into(),
            }],
            load_error: None,
        }]
    }

    fn load_errors(&self) -> Vec<LoadError> {
        vec![LoadError {
            file: "/w/broken.pipe".into(),
            error: "broken.pipe:1:1: expected `pipeline`".into(),
        }]
    }

    fn trigger(&self, pipeline: &str, params: &[(String, String)]) -> Result<u64, ControlError> {
        let args: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.record(format!("trigger {pipeline} {}", args.join(" ")))?;
        if pipeline == "boom" {
            panic!("the fake control fails as asked");
        }
        if pipeline != "hello" {
            return Err(ControlError::UnknownPipeline(pipeline.into()));
        }
        let mut problems = Vec::new();
        for (name, value) in params {
            let message = match name.as_str() {
                "threads" if value.parse::<i64>().is_err() => {
                    format!("param `threads`: `{value}` is not an integer")
                }
                "threads" | "reference" => continue,
                _ => format!("param `{name}`: pipeline `hello` has no such param"),
            };
            problems.push(ParamProblem {
                param: name.clone(),
                message,
            });
        }
        if !problems.is_empty() {
            return Err(ControlError::InvalidParams(problems));
        }
        Ok(self.new_run())
    }

    fn cancel(&self, run: u64) -> Result<(), ControlError> {
        self.record(format!("cancel {run}"))?;
        self.check_run(run, false)
    }

    fn resume(&self, run: u64) -> Result<u64, ControlError> {
        self.record(format!("resume {run}"))?;
        self.check_run(run, true)?;
        Ok(self.new_run())
    }

    fn rerun(&self, run: u64, from: Option<&str>) -> Result<u64, ControlError> {
        self.record(format!("rerun {run} from={}", from.unwrap_or("-")))?;
        self.check_run(run, true)?;
        FakeControl::check_step(from)?;
        Ok(self.new_run())
    }

    fn retry(&self, run: u64, step: Option<&str>) -> Result<u64, ControlError> {
        self.record(format!("retry {run} step={}", step.unwrap_or("-")))?;
        self.check_run(run, true)?;
        FakeControl::check_step(step)?;
        Ok(self.new_run())
    }

    fn queue_depth(&self) -> u64 {
        3
    }

    fn graph(&self, pipeline: &str) -> Result<PipelineGraph, ControlError> {
        if pipeline != "hello" {
            return Err(ControlError::UnknownPipeline(pipeline.into()));
        }
        let node = |name: &str, kind: &str, each: Option<&str>| GraphNode {
            name: name.into(),
            kind: kind.into(),
            each: each.map(str::to_string),
        };
        let edge = |from: &str, to: &str| GraphEdge {
            from: from.into(),
            to: to.into(),
            kind: "input".into(),
        };
        Ok(PipelineGraph {
            pipeline: "hello".into(),
            nodes: vec![
                node("texts", "source", None),
                node("count", "step", Some("file")),
                node("total", "step", None),
            ],
            edges: vec![edge("texts", "count"), edge("count", "total")],
        })
    }

    fn gap(&self, pipeline: &str) -> Result<Vec<StepGap>, ControlError> {
        self.record(format!("gap {pipeline}"))?;
        if pipeline != "hello" {
            return Err(ControlError::UnknownPipeline(pipeline.into()));
        }
        Ok(STEPS
            .iter()
            .map(|step| StepGap {
                step: step.to_string(),
                tasks: if *step == "count" { 2 } else { 0 },
                held: 0,
            })
            .collect())
    }

    fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    fn set_paused(&self, paused: bool) -> bool {
        self.calls.lock().unwrap().push(format!("paused {paused}"));
        self.paused.swap(paused, Ordering::SeqCst) != paused
    }
}
