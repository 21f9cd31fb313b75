//! Recovery of hand-built store states: every combination of run, task and attempt a crash can
//! leave, with the files the attempts left (the run's decided and ended logs, the temporary
//! output directory, a product already renamed into place).

use std::path::PathBuf;

use super::*;
use crate::exec::files::{attempt_files, DecidedLog};
use crate::lifecycle::Event;
use crate::store::{AttemptRecord, RunRecord, RunStatus, TaskRecord, TaskStatus};

/// A store and state directory, as an engine that died left them.
struct Crashed {
    dir: tempfile::TempDir,
    store: Store,
    run: RunRecord,
}

/// The pid of a process that has exited (and been reaped): an engine that is gone.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

impl Crashed {
    /// A run, `running` and owned by `owner` (a dead pid unless given).
    fn new(owner: Option<u32>) -> Crashed {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let run = store
            .write(|tx| tx.create_run(RunRecord::queued("p")))
            .unwrap();
        let owner = owner.unwrap_or_else(dead_pid);
        let run = store
            .write(|tx| {
                tx.run_event(run.id, &Event::RunStarted { tasks: 1 }, |run| {
                    run.owner_pid = Some(owner)
                })
            })
            .unwrap();
        Crashed { dir, store, run }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            jobs: 1,
            force: crate::plan::Force::None,
            state_dir: self.state(),
            out_root: self.dir.path().join("out"),
            kill_grace: Duration::from_millis(100),
            only: None,
            slurm: Default::default(),
            stop: Default::default(),
            claims: None,
            hold_failed: false,
        }
    }

    /// A pending task of step `step`, keyed as a decided task is, publishing to `out/STEP`.
    fn task(&self, step: &str) -> TaskRecord {
        let mut task = TaskRecord::pending(self.run.id, step);
        task.out_dir = self.dir.path().join("out").join(step);
        let mut task = self.store.write(|tx| tx.create_task(task.clone())).unwrap();
        task.key = format!("key-{step}");
        task.command = format!("make {step}");
        task
    }

    /// Task `task` with its first attempt started and committed, as the scheduler leaves it.
    fn running(&self, mut task: TaskRecord) -> (TaskRecord, AttemptRecord) {
        task.attempts = 1;
        let attempt = AttemptRecord::new(task.id, 1, attempt_files(&self.state(), &task, 1));
        let started = Event::AttemptStarted {
            number: 1,
            executor: "pid 1".to_string(),
        };
        task.apply(&started).unwrap();
        self.store
            .write(|tx| {
                tx.put_attempt(&attempt)?;
                tx.task_event(&task, &started)
            })
            .unwrap();
        (task, attempt)
    }

    /// The task as the scheduler decided it for attempt `number`, in the run's decided log (its
    /// start may never have been committed).
    fn decided(&self, task: &TaskRecord, number: u32) {
        let mut log = DecidedLog::new(&self.state(), self.run.id);
        assert!(log.keep(&AttemptTag::new(task.id, number).to_string(), task));
    }

    /// What the supervisor appends when attempt `number` of `task` ends: `exit`, or killed.
    fn ended(&self, task: &TaskRecord, number: u32, exit: Option<i32>) {
        use std::io::Write;
        let line = crate::exec::supervisor::protocol::EndedLine {
            attempt: AttemptTag::new(task.id, number).to_string(),
            exit,
            signal: exit.is_none().then_some(9),
        };
        let path = ended_log(&self.state(), self.run.id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(file, "{}", serde_json::to_string(&line).unwrap()).unwrap();
    }

    /// Writes `name` into attempt `number`'s temporary output directory, as its command did.
    fn output(&self, task: &TaskRecord, number: u32, name: &str) {
        let tmp = attempt_files(&self.state(), task, number).tmp_dir;
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join(name), "made\n").unwrap();
    }

    fn recover(&self) -> Vec<u64> {
        recover(&self.store, &self.options(), Scope::Run(self.run.id)).unwrap()
    }

    fn status(&self, task: &TaskRecord) -> TaskStatus {
        self.store.task(task.id).unwrap().status
    }

    fn last_attempt(&self, task: &TaskRecord) -> AttemptRecord {
        self.store.attempts_of(task.id).unwrap().pop().unwrap()
    }

    fn events(&self) -> Vec<String> {
        let run = Some(self.run.id);
        let events = self.store.events().unwrap();
        events
            .into_iter()
            .filter(|e| e.run == run)
            .map(|e| e.kind)
            .collect()
    }
}

#[test]
fn a_run_whose_engine_is_gone_is_interrupted_and_its_logs_removed() {
    let crashed = Crashed::new(None);
    crashed.decided(&crashed.task("a"), 1);
    assert_eq!(crashed.recover(), [crashed.run.id]);
    let run = crashed.store.run(crashed.run.id).unwrap();
    assert_eq!((run.status, run.owner_pid), (RunStatus::Interrupted, None));
    assert!(run.finished_ms.is_some());
    assert!(!decided_log(&crashed.state(), run.id).exists());
    assert_eq!(crashed.recover(), Vec::<u64>::new(), "settled once");
}

#[test]
fn a_run_whose_engine_lives_is_left_alone() {
    // Pid 1 always lives.
    let crashed = Crashed::new(Some(1));
    let task = crashed.task("a");
    assert!(crashed.recover().is_empty());
    assert_eq!(
        crashed.store.run(crashed.run.id).unwrap().status,
        RunStatus::Running
    );
    assert_eq!(crashed.status(&task), TaskStatus::Pending);
}

#[test]
fn a_queued_run_with_no_task_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let mut queued = RunRecord::queued("p");
    queued.owner_pid = Some(dead_pid());
    let run = store.write(|tx| tx.create_run(queued)).unwrap();
    let crashed = Crashed { dir, store, run };
    assert_eq!(crashed.recover(), [crashed.run.id]);
    let status = crashed.store.run(crashed.run.id).unwrap().status;
    assert_eq!(status, RunStatus::Interrupted);
}

#[test]
fn a_running_task_whose_command_succeeded_is_published_and_never_runs_again() {
    let crashed = Crashed::new(None);
    let (task, _) = crashed.running(crashed.task("a"));
    crashed.output(&task, 1, "x.txt");
    crashed.ended(&task, 1, Some(0));
    crashed.recover();
    assert_eq!(crashed.status(&task), TaskStatus::Succeeded);
    assert_eq!(crashed.last_attempt(&task).end, Some(AttemptEnd::Succeeded));
    assert_eq!(
        std::fs::read_to_string(task.out_dir.join("x.txt")).unwrap(),
        "made\n"
    );
    let cached = crashed.store.cached(&task.key, "p", "a", None).unwrap();
    assert!(matches!(cached, crate::store::Found::Cached(t, Some(_)) if t.id == task.id));
    assert!(crashed.events().contains(&"task.recovered".to_string()));
}

#[test]
fn a_task_published_before_its_commit_is_collected_where_it_is() {
    let crashed = Crashed::new(None);
    let (task, _) = crashed.running(crashed.task("a"));
    // The rename into place happened; the engine died before committing it.
    std::fs::create_dir_all(&task.out_dir).unwrap();
    std::fs::write(task.out_dir.join("x.txt"), "made\n").unwrap();
    crashed.ended(&task, 1, Some(0));
    crashed.recover();
    let recovered = crashed.store.task(task.id).unwrap();
    assert_eq!(recovered.status, TaskStatus::Succeeded);
    assert_eq!(recovered.products, [task.out_dir.join("x.txt")]);
}

#[test]
fn a_running_task_whose_command_failed_or_vanished_is_lost() {
    let crashed = Crashed::new(None);
    let (failed, _) = crashed.running(crashed.task("a"));
    crashed.output(&failed, 1, "half.txt");
    crashed.ended(&failed, 1, Some(3));
    let (killed, _) = crashed.running(crashed.task("b"));
    crashed.ended(&killed, 1, None);
    let (silent, _) = crashed.running(crashed.task("c"));
    crashed.recover();
    for (task, error) in [
        (&failed, "exited with status 3 while the engine was down"),
        (&killed, "the engine stopped while this attempt ran"),
        (&silent, "the engine stopped while this attempt ran"),
    ] {
        assert_eq!(crashed.status(task), TaskStatus::Failed, "{}", task.step);
        let attempt = crashed.last_attempt(task);
        assert_eq!(attempt.end, Some(AttemptEnd::Lost));
        assert_eq!(attempt.error.as_deref(), Some(error));
        assert!(!attempt.tmp_dir.exists(), "nothing half-made is kept");
    }
    assert!(
        !failed.out_dir.exists(),
        "a failed attempt publishes nothing"
    );
}

#[test]
fn a_task_started_but_not_committed_is_settled_from_the_decided_log() {
    let crashed = Crashed::new(None);
    // Decided and started, its start in the journal only; then it ran to the end.
    let task = crashed.task("a");
    crashed.decided(&task, 1);
    crashed.output(&task, 1, "x.txt");
    crashed.ended(&task, 1, Some(0));
    let other = crashed.task("b");
    crashed.decided(&other, 1);
    crashed.ended(&other, 1, Some(1));
    crashed.recover();
    let recovered = crashed.store.task(task.id).unwrap();
    assert_eq!(recovered.status, TaskStatus::Succeeded);
    assert_eq!((recovered.key.as_str(), recovered.attempts), ("key-a", 1));
    assert_eq!(recovered.command, "make a");
    assert_eq!(crashed.status(&other), TaskStatus::Failed);
    assert_eq!(crashed.last_attempt(&other).end, Some(AttemptEnd::Lost));
}

#[test]
fn a_task_that_never_ran_its_command_is_not_started() {
    let crashed = Crashed::new(None);
    // Decided, but its command never passed the gate: no end recorded.
    let decided = crashed.task("a");
    crashed.decided(&decided, 1);
    // Never decided at all: waiting for its upstream.
    let waiting = crashed.task("b");
    // Decided for attempt 1 by an earlier engine, but what ended is attempt 2's: not this one.
    let other = crashed.task("c");
    crashed.decided(&other, 1);
    crashed.ended(&other, 2, Some(0));
    crashed.recover();
    for task in [&decided, &waiting, &other] {
        assert_eq!(
            crashed.status(task),
            TaskStatus::NotStarted,
            "{}",
            task.step
        );
        assert!(crashed.store.attempts_of(task.id).unwrap().is_empty());
    }
    let kinds = crashed.events();
    assert_eq!(kinds.iter().filter(|k| *k == "task.not_started").count(), 3);
    assert_eq!(kinds.last().map(String::as_str), Some("run.interrupted"));
}

#[test]
fn tasks_that_ended_before_the_crash_are_left_as_they_are() {
    let crashed = Crashed::new(None);
    let (mut done, attempt) = crashed.running(crashed.task("a"));
    let succeeded = Event::TaskSucceeded { products: 0 };
    done.apply(&succeeded).unwrap();
    crashed
        .store
        .write(|tx| tx.task_event(&done, &succeeded))
        .unwrap();
    let mut cached = crashed.task("b");
    let event = Event::TaskCached { same_as: 1 };
    cached.apply(&event).unwrap();
    crashed
        .store
        .write(|tx| tx.task_event(&cached, &event))
        .unwrap();
    // Its end is in the ended log too: it must not be settled twice.
    crashed.ended(&done, 1, Some(0));
    crashed.recover();
    assert_eq!(crashed.status(&done), TaskStatus::Succeeded);
    assert_eq!(crashed.status(&cached), TaskStatus::Cached);
    assert_eq!(crashed.last_attempt(&done), attempt);
}
