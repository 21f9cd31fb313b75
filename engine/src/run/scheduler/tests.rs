//! The run loop, driven step by step: a scripted local executor tells the test each attempt it
//! starts and ends it when the test says how. Nothing sleeps; the loop runs as `engine run` runs
//! it, with the real store, journal, ready queue, capacity and publishing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::exec::{files, AttemptSpec, Ending, ExecError};
use crate::run::launch::{BoxFuture, Local, LocalAttempt};
use crate::store::{RunStatus, TaskStatus};

/// An attempt the scripted executor started: the test ends it.
struct Begun {
    spec: AttemptSpec,
    end: oneshot::Sender<Ending>,
}

impl Begun {
    /// The step of the attempt's task.
    fn step(&self) -> String {
        // Logs are `STATE/logs/RUN/STEP/GROUP.N.out`.
        let step = self.spec.stdout_path.parent().and_then(Path::file_name);
        step.map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Writes `file` into the attempt's output directory, and ends it with status 0.
    fn succeed(self, file: &str) {
        std::fs::write(self.spec.out_dir.join(file), &self.spec.command).unwrap();
        let _ = self.end.send(Ending::Exited(0));
    }

    /// Writes `file` of `bytes` bytes into the attempt's output directory, and ends it with
    /// status 0.
    fn succeed_with(self, file: &str, bytes: usize) {
        std::fs::write(self.spec.out_dir.join(file), vec![b'x'; bytes]).unwrap();
        let _ = self.end.send(Ending::Exited(0));
    }

    fn fail(self, code: i32) {
        let _ = self.end.send(Ending::Exited(code));
    }
}

/// Starts nothing: tells the test of each start, or refuses them all.
struct Script {
    begun: mpsc::UnboundedSender<Begun>,
    refuse: Arc<AtomicBool>,
}

struct Scripted {
    end: oneshot::Receiver<Ending>,
}

impl Local for Script {
    fn start(
        &self,
        spec: &AttemptSpec,
        _held: bool,
        meanwhile: Box<dyn FnOnce() + '_>,
    ) -> Result<Box<dyn LocalAttempt>, ExecError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(ExecError::Spawn {
                workdir: spec.workdir.clone(),
                source: std::io::Error::other("refused by the test"),
            });
        }
        files::prepare_out_dir(&spec.out_dir)?;
        meanwhile();
        let (end, ended) = oneshot::channel();
        let _ = self.begun.send(Begun {
            spec: spec.clone(),
            end,
        });
        Ok(Box::new(Scripted { end: ended }))
    }
}

impl LocalAttempt for Scripted {
    fn pid(&self) -> u32 {
        0
    }

    fn pgid(&self) -> u32 {
        0
    }

    fn release(&mut self) {}

    fn wait(self: Box<Self>, cancel: CancellationToken) -> BoxFuture<AttemptOutcome> {
        Box::pin(async move {
            let ending = tokio::select! {
                ending = self.end => ending.unwrap_or(Ending::Lost),
                () = cancel.cancelled() => Ending::Cancelled,
            };
            AttemptOutcome {
                ending,
                wall: Duration::ZERO,
                user_cpu: Duration::ZERO,
                sys_cpu: Duration::ZERO,
                max_rss_bytes: 0,
            }
        })
    }
}

/// The test's side of the script.
struct Driver {
    begun: mpsc::UnboundedReceiver<Begun>,
}

impl Driver {
    /// The next attempt started (the loop starts what it can in one turn, so those started
    /// together are all here once the first is).
    async fn next(&mut self) -> Begun {
        let begun = tokio::time::timeout(Duration::from_secs(10), self.begun.recv()).await;
        begun.expect("an attempt starts").expect("the run goes on")
    }

    /// The steps of the attempts started in the loop's last turn.
    async fn turn(&mut self) -> Vec<Begun> {
        let mut begun = vec![self.next().await];
        while let Ok(more) = self.begun.try_recv() {
            begun.push(more);
        }
        begun
    }
}

fn steps(begun: &[Begun]) -> Vec<String> {
    let mut steps: Vec<String> = begun.iter().map(Begun::step).collect();
    steps.sort();
    steps
}

/// A pipeline in a temp dir, with its store.
struct Test {
    dir: tempfile::TempDir,
    store: Arc<Store>,
    pipeline: Pipeline,
    options: RunOptions,
    refuse: Arc<AtomicBool>,
}

impl Test {
    fn new(source: &str, jobs: usize) -> Test {
        let dir = tempfile::tempdir().unwrap();
        let loaded = dsl::load_source(dir.path().join("t.pipe"), source.to_string());
        assert!(loaded.is_valid(), "{:?}", loaded.diagnostics);
        let pipeline = loaded.pipeline("t").unwrap().clone();
        let store = Arc::new(Store::open(&dir.path().join("state")).unwrap());
        let options = RunOptions {
            jobs,
            force: crate::plan::Force::None,
            state_dir: dir.path().join("state"),
            out_root: dir.path().join("out"),
            kill_grace: Duration::from_millis(100),
            only: None,
            slurm: Default::default(),
            stop: Default::default(),
            claims: None,
            hold_failed: false,
        };
        let refuse = Arc::new(AtomicBool::new(false));
        Test {
            dir,
            store,
            pipeline,
            options,
            refuse,
        }
    }

    /// Runs the pipeline while `drive` ends its attempts; returns the run as it ended.
    async fn run<F: std::future::Future<Output = ()>>(
        &self,
        drive: impl FnOnce(Driver) -> F,
    ) -> RunRecord {
        let params = BTreeMap::new();
        let base = self.dir.path().to_path_buf();
        let plan = crate::plan::plan(&self.pipeline, &params, &base, &self.store, 1).unwrap();
        let mut queued = RunRecord::queued(&self.pipeline.name);
        queued.owner_pid = Some(std::process::id());
        let run = self.store.write(|tx| tx.create_run(queued)).unwrap();
        let (begun, started) = mpsc::unbounded_channel();
        let mut progress = Progress::silent();
        let mut scheduler = Scheduler {
            store: self.store.clone(),
            pipeline: &self.pipeline,
            params: &params,
            base,
            options: &self.options,
            progress: &mut progress,
            journal: Default::default(),
            local: Some(Box::new(Script {
                begun,
                refuse: self.refuse.clone(),
            })),
        };
        let (ended, ()) = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(
                scheduler.execute(run, plan),
                drive(Driver { begun: started })
            )
        })
        .await
        .expect("the run ends");
        ended.unwrap()
    }

    /// Each task of `run` as (step, status), in plan order.
    fn statuses(&self, run: &RunRecord) -> Vec<(String, TaskStatus)> {
        let tasks = self.store.tasks_of(run.id).unwrap();
        tasks.into_iter().map(|t| (t.step, t.status)).collect()
    }

    /// The kinds of the events of `run`'s task of `step`, in order.
    fn events_of(&self, run: &RunRecord, step: &str) -> Vec<String> {
        let tasks = self.store.tasks_of(run.id).unwrap();
        let task = tasks.iter().find(|t| t.step == step).unwrap().id;
        let events = self.store.events().unwrap();
        events
            .into_iter()
            .filter(|e| e.task == Some(task))
            .map(|e| e.kind)
            .collect()
    }
}

fn status(statuses: &[(String, TaskStatus)], step: &str) -> TaskStatus {
    statuses.iter().find(|(s, _)| s == step).unwrap().1
}

const CHAIN: &str = r#"
pipeline t {
  step a { run "make a" }
  step b {
    input a
    run "make b from {inputs}"
  }
  step c { run "make c" }
}
"#;

#[tokio::test]
async fn a_task_starts_once_what_it_consumes_is_done() {
    let test = Test::new(CHAIN, 4);
    let run = test
        .run(|mut driver| async move {
            let first = driver.turn().await;
            assert_eq!(steps(&first), ["a", "c"], "b waits for a");
            let mut first = first.into_iter();
            let (a, c) = (first.next().unwrap(), first.next().unwrap());
            a.succeed("a.txt");
            let b = driver.next().await;
            assert_eq!(b.step(), "b");
            assert!(
                b.spec.command.contains("out/t/a/_all/a.txt"),
                "{}",
                b.spec.command
            );
            c.succeed("c.txt");
            b.succeed("b.txt");
        })
        .await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let statuses = test.statuses(&run);
    assert!(
        statuses.iter().all(|(_, s)| *s == TaskStatus::Succeeded),
        "{statuses:?}"
    );
    let made = std::fs::read_to_string(test.dir.path().join("out/t/b/_all/b.txt")).unwrap();
    assert!(made.starts_with("make b from "));
}

#[tokio::test]
async fn what_is_done_is_not_run_again() {
    let test = Test::new(CHAIN, 4);
    test.run(|mut driver| async move {
        for begun in driver.turn().await {
            begun.succeed("x");
        }
        driver.next().await.succeed("x");
    })
    .await;
    // Nothing starts the second time: a started attempt would wait for the test forever.
    let again = test.run(|_| async {}).await;
    assert_eq!(again.status, RunStatus::Succeeded);
    let statuses = test.statuses(&again);
    assert!(
        statuses.iter().all(|(_, s)| *s == TaskStatus::Cached),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn jobs_bound_what_runs_at_once() {
    let test = Test::new(CHAIN, 1);
    let run = test
        .run(|mut driver| async move {
            // One at a time, in plan order once ready: a, then b (ready once a is done), then c.
            for step in ["a", "b", "c"] {
                let begun = driver.turn().await;
                assert_eq!(steps(&begun), [step]);
                begun.into_iter().for_each(|b| b.succeed("x"));
            }
        })
        .await;
    assert_eq!(run.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn a_steps_concurrency_bounds_its_tasks() {
    let test = Test::new(
        r#"
pipeline t {
  source items {
    root "data"
    glob "*.txt"
    group item by regex "^(?P<item>[^.]+)[.]txt$"
  }
  step w each item {
    input items
    concurrency 1
    run "work {group}"
  }
  step other { run "other" }
}
"#,
        4,
    );
    let data = test.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for item in ["1", "2", "3"] {
        std::fs::write(data.join(format!("{item}.txt")), item).unwrap();
    }
    let run = test
        .run(|mut driver| async move {
            let first = driver.turn().await;
            assert_eq!(steps(&first), ["other", "w"], "one of w at a time");
            first.into_iter().for_each(|b| b.succeed("x"));
            for _ in 0..2 {
                let next = driver.turn().await;
                assert_eq!(steps(&next), ["w"]);
                next.into_iter().for_each(|b| b.succeed("x"));
            }
        })
        .await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(test.statuses(&run).len(), 4);
}

#[tokio::test]
async fn a_failing_task_is_retried_then_fails_and_blocks_only_its_downstream() {
    let test = Test::new(
        r#"
pipeline t {
  step a {
    retries 1
    backoff fixed 1ms
    run "make a"
  }
  step b {
    input a
    run "make b"
  }
  step c { run "make c" }
}
"#,
        4,
    );
    let run = test
        .run(|mut driver| async move {
            let mut first = driver.turn().await.into_iter();
            let (a, c) = (first.next().unwrap(), first.next().unwrap());
            a.fail(3);
            let again = driver.next().await;
            assert_eq!(
                (again.step(), again.spec.tag.ends_with("-2")),
                ("a".into(), true)
            );
            again.fail(3);
            c.succeed("c.txt");
        })
        .await;
    assert_eq!(run.status, RunStatus::Failed);
    let statuses = test.statuses(&run);
    assert_eq!(status(&statuses, "a"), TaskStatus::Failed);
    assert_eq!(status(&statuses, "b"), TaskStatus::Blocked);
    assert_eq!(status(&statuses, "c"), TaskStatus::Succeeded);
    assert_eq!(
        test.events_of(&run, "a"),
        [
            "attempt.started",
            "attempt.finished",
            "task.retry",
            "attempt.started",
            "attempt.finished",
            "task.failed"
        ]
    );
    assert_eq!(test.events_of(&run, "b"), ["task.blocked"]);
}

#[tokio::test]
async fn a_command_that_cannot_start_is_a_failed_attempt() {
    let test = Test::new(CHAIN, 4);
    test.refuse.store(true, Ordering::SeqCst);
    let run = test.run(|_| async {}).await;
    assert_eq!(run.status, RunStatus::Failed);
    let statuses = test.statuses(&run);
    assert_eq!(status(&statuses, "a"), TaskStatus::Failed);
    assert_eq!(status(&statuses, "b"), TaskStatus::Blocked);
    assert_eq!(
        test.events_of(&run, "a"),
        ["attempt.launch_failed", "task.failed"]
    );
    let tasks = test.store.tasks_of(run.id).unwrap();
    let attempts = test.store.attempts_of(tasks[0].id).unwrap();
    assert_eq!(
        attempts[0].end,
        Some(crate::store::AttemptEnd::LaunchFailed)
    );
    assert!(attempts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("refused by the test"));
}

#[tokio::test]
async fn a_cancelled_run_stops_what_runs_and_starts_nothing_more() {
    let test = Test::new(CHAIN, 1);
    let stop = test.options.stop.cancel.clone();
    // The test never ends `a`: the cancel does.
    let kept = &std::sync::Mutex::new(None);
    let run = test
        .run(|mut driver| async move {
            let a = driver.next().await;
            assert_eq!(a.step(), "a");
            kept.lock().unwrap().replace(a);
            stop.cancel();
        })
        .await;
    assert_eq!(run.status, RunStatus::Cancelled);
    let statuses = test.statuses(&run);
    assert!(
        statuses.iter().all(|(_, s)| *s == TaskStatus::Cancelled),
        "{statuses:?}"
    );
    assert_eq!(
        test.events_of(&run, "a"),
        ["attempt.started", "attempt.finished", "task.cancelled"]
    );
    assert_eq!(test.events_of(&run, "b"), ["task.cancelled"]);
}

#[tokio::test]
async fn a_large_product_is_hashed_off_the_loop_and_then_released() {
    let big = crate::run::attempts::HASH_INLINE_BYTES as usize + 1;
    let test = Test::new(CHAIN, 4);
    let run = test
        .run(|mut driver| async move {
            let mut first = driver.turn().await.into_iter();
            let (a, c) = (first.next().unwrap(), first.next().unwrap());
            a.succeed_with("big.bin", big);
            // b starts once a's product is hashed; c meanwhile is still running.
            let b = driver.next().await;
            assert_eq!(b.step(), "b");
            c.succeed("c.txt");
            b.succeed("b.txt");
        })
        .await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let tasks = test.store.tasks_of(run.id).unwrap();
    let a = &tasks[0];
    let product = test
        .store
        .product(&a.products[0].to_string_lossy())
        .unwrap()
        .unwrap();
    assert_eq!(product.size, big as u64);
    assert_eq!(
        product.hash,
        crate::scan::hash_file(&a.products[0]).unwrap()
    );
    assert_eq!(
        tasks[1].inputs[0].hash, product.hash,
        "b consumed the hashed product"
    );
}
