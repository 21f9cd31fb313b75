//! Durability: cancelling a run from another process, and killing the engine with SIGKILL at
//! random moments while work is left, then resuming, with a ledger that proves no task completes twice and no
//! partial output is ever visible.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Env;

fn spawn_engine(env: &Env, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(args)
        .current_dir(env.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the engine starts")
}

fn show(env: &Env, run: u64) -> Option<serde_json::Value> {
    let shown = env.engine(&["show", &run.to_string(), "--json"]);
    (shown.code == 0)
        .then(|| serde_json::from_str(&shown.stdout).ok())
        .flatten()
}

/// Waits until `check` holds, for at most `limit`.
fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Whether any live (not zombie) process is in this process group. Zombies are ignored: an
/// orphan's zombie waits for PID 1 to reap it, which in a container may be never.
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

/// The live attempt supervisors (`engine --attempt-supervisor`) of the state directory under
/// `dir`.
fn supervisors(dir: &Path) -> Vec<u32> {
    let wanted = format!("ENGINE_STATE_DIR={}", dir.join(".engine").display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let supervises = cmdline
                .split(|b| *b == 0)
                .any(|a| a == b"--attempt-supervisor");
            let ours = environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes());
            (supervises && ours).then_some(pid)
        })
        .collect()
}

#[test]
fn cancel_from_another_process_stops_the_run_and_its_processes() {
    let env = Env::new();
    env.write(
        "slow.pipe",
        r#"pipeline slow {
  source items {
    root "data"
    glob "*"
    group item by regex "^(?P<item>.+)$"
  }
  step wait each item {
    input items
    run "sleep 60 & sleep 60; echo never > {out}/x"
  }
}
"#,
    );
    for i in 0..4 {
        env.write(&format!("data/{i}"), "x");
    }
    let mut engine = spawn_engine(&env, &["run", "slow.pipe", "--jobs", "2"]);
    let mut pgids = Vec::new();
    let running = wait_for(Duration::from_secs(20), || {
        let Some(shown) = show(&env, 1) else {
            return false;
        };
        pgids = shown["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"] == "running")
            .filter_map(|t| {
                t["attempts_detail"]
                    .as_array()
                    .and_then(|a| a.last())
                    .and_then(|a| a["pgid"].as_i64())
            })
            .map(|p| p as i32)
            .collect();
        pgids.len() == 2
    });
    assert!(running, "two tasks should be running");

    let started = Instant::now();
    let cancel = env.engine(&["cancel", "1"]);
    assert_eq!(cancel.code, 0, "{}", cancel.stderr);
    assert!(
        cancel.stdout.contains("run 1 cancelled"),
        "{}",
        cancel.stdout
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancel took {:?}",
        started.elapsed()
    );
    let status = engine.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a cancelled run exits with 1");
    for pgid in pgids {
        assert!(
            !group_alive(pgid),
            "process group {pgid} survived the cancel"
        );
    }
    let shown = show(&env, 1).unwrap();
    assert_eq!(shown["run"]["status"], "cancelled");
    assert!(
        shown["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "cancelled"),
        "{shown}"
    );
    let again = env.engine(&["cancel", "1"]);
    assert_eq!(again.code, 2, "cancelling a finished run is an input error");
}

/// What `/proc/PID/stat` says of a live (not zombie) process: its session; `None` once it is
/// gone (or only a zombie is left).
fn live_session(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp session ...
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    (fields.first() != Some(&"Z"))
        .then(|| fields.get(3)?.parse().ok())
        .flatten()
}

/// What a test started that must not outlive it, whatever it asserts: on drop, an engine still
/// running gets SIGTERM (which cancels its run) and the processes are SIGKILLed.
struct Strays {
    engine: Child,
    pids: Vec<u32>,
}

impl Drop for Strays {
    fn drop(&mut self) {
        if self.engine.try_wait().is_ok_and(|status| status.is_none()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.engine.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.engine.wait();
        }
        for pid in &self.pids {
            if live_session(*pid).is_some() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Issue 15.10: a process that left its attempt's process group (`setsid`, or a daemon's
/// fork-setsid-fork) is stopped with the attempt: when its command ends, and when it is
/// cancelled. Another attempt's are left alone until that one ends. Each pid is written once
/// its process has left the group, and `quick` ends only then.
#[test]
fn descendants_that_left_the_group_are_stopped_when_their_attempt_ends_or_is_cancelled() {
    let env = Env::new();
    let dir = env.path().display().to_string();
    env.write(
        "escape.pipe",
        &format!(
            r#"pipeline escape {{
  step quick {{
    run "setsid sh -c 'echo $$ > {dir}/quick.pid; exec sleep 300' & while [ ! -s {dir}/quick.pid ]; do sleep 0.01; done"
  }}
  step slow {{
    run "setsid sh -c 'echo $$ > {dir}/slow.pid; exec sleep 300' & (setsid sh -c 'sleep 300 & echo $! > {dir}/daemon.pid' &); sleep 300; echo > {{out}}/x"
  }}
}}
"#
        ),
    );
    let mut strays = Strays {
        engine: spawn_engine(&env, &["run", "escape.pipe", "--jobs", "2"]),
        pids: Vec::new(),
    };
    let pid = |name: &str| -> Option<u32> {
        std::fs::read_to_string(env.path().join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let mut pids = Vec::new();
    let written = wait_for(Duration::from_secs(20), || {
        pids = ["quick.pid", "slow.pid", "daemon.pid"]
            .iter()
            .filter_map(|name| pid(name))
            .collect();
        pids.len() == 3
    });
    strays.pids.clone_from(&pids);
    assert!(written, "the commands write their escapees' pids");
    let (quick, slow, daemon) = (pids[0], pids[1], pids[2]);
    let engine_session = live_session(strays.engine.id());
    for escaped in [slow, daemon] {
        let session = live_session(escaped);
        assert!(
            session.is_some() && session != engine_session,
            "process {escaped} left the attempt's session"
        );
    }

    assert!(
        wait_for(Duration::from_secs(10), || live_session(quick).is_none()),
        "the escapee of a command that ended is stopped"
    );
    assert!(
        live_session(slow).is_some() && live_session(daemon).is_some(),
        "a running attempt's escapees are not stopped by another attempt's end"
    );

    let cancel = env.engine(&["cancel", "1"]);
    assert_eq!(cancel.code, 0, "{}", cancel.stderr);
    assert_eq!(strays.engine.wait().unwrap().code(), Some(1));
    assert!(
        wait_for(Duration::from_secs(10), || {
            live_session(slow).is_none() && live_session(daemon).is_none()
        }),
        "cancel stops the escapees of the cancelled attempt"
    );
}

/// The parent of a process, from `/proc/PID/stat`; `None` once it is reaped.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Issue 15.10: the supervisor adopts a process of an attempt whose parent died, and reaps it
/// when it ends while the attempt still runs, so no zombie is left.
#[test]
fn the_supervisor_adopts_an_orphaned_process_and_reaps_it_when_it_ends() {
    let env = Env::new();
    let dir = env.path().display().to_string();
    env.write(
        "orphan.pipe",
        &format!(
            r#"pipeline orphan {{
  step wait {{
    run "(setsid sh -c 'echo $$ > {dir}/orphan.pid; while [ ! -e {dir}/go ]; do sleep 0.01; done' &); sleep 300"
  }}
}}
"#
        ),
    );
    let mut strays = Strays {
        engine: spawn_engine(&env, &["run", "orphan.pipe"]),
        pids: Vec::new(),
    };
    let mut orphan = None;
    assert!(wait_for(Duration::from_secs(20), || {
        orphan = std::fs::read_to_string(env.path().join("orphan.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse().ok());
        orphan.is_some()
    }));
    let orphan: u32 = orphan.unwrap();
    strays.pids.push(orphan);
    let supervisor = supervisors(env.path());
    assert_eq!(supervisor.len(), 1, "one supervisor: {supervisor:?}");
    assert!(
        wait_for(Duration::from_secs(10), || parent(orphan)
            == Some(supervisor[0])),
        "the orphan is given to the supervisor, not to {:?}",
        parent(orphan)
    );
    env.write("go", "");
    assert!(
        wait_for(Duration::from_secs(10), || parent(orphan).is_none()),
        "the orphan is reaped once it ends"
    );
    assert_eq!(env.engine(&["cancel", "1"]).code, 0);
    assert_eq!(strays.engine.wait().unwrap().code(), Some(1));
}

#[test]
fn cancelling_a_run_whose_engine_was_killed_stops_its_tasks() {
    let env = Env::new();
    env.write(
        "k.pipe",
        "pipeline k {\n  step wait { run \"sleep 60; echo > {out}/x\" }\n}\n",
    );
    let mut engine = spawn_engine(&env, &["run", "k.pipe"]);
    let mut pgid = 0;
    assert!(wait_for(Duration::from_secs(20), || {
        show(&env, 1).is_some_and(|s| {
            pgid = s["tasks"][0]["attempts_detail"][0]["pgid"]
                .as_i64()
                .unwrap_or(0) as i32;
            s["tasks"][0]["status"] == "running"
        })
    }));
    engine.kill().unwrap(); // SIGKILL: the task goes on running on its own
    engine.wait().unwrap();
    assert!(group_alive(pgid), "a killed engine leaves its task running");
    let cancel = env.engine(&["cancel", "1"]);
    assert_eq!(cancel.code, 0, "{}", cancel.stderr);
    assert!(
        cancel.stdout.contains("run 1 cancelled"),
        "{}",
        cancel.stdout
    );
    assert!(!group_alive(pgid), "the orphaned task was stopped");
    assert_eq!(show(&env, 1).unwrap()["run"]["status"], "cancelled");
}

#[test]
fn recovery_tells_a_task_that_never_started_from_one_that_was_cancelled() {
    let env = Env::new();
    env.write(
        "k.pipe",
        "pipeline k {\n  step first { run \"sleep 2; echo 1 > {out}/x\" }\n  \
         step second { input first\n run \"cat {inputs} > {out}/y\" }\n}\n",
    );
    let mut engine = spawn_engine(&env, &["run", "k.pipe"]);
    assert!(wait_for(Duration::from_secs(20), || {
        show(&env, 1).is_some_and(|s| s["tasks"][0]["status"] == "running")
    }));
    engine.kill().unwrap(); // SIGKILL, while `first` runs and `second` waits for it
    engine.wait().unwrap();
    // Recovery waits for `first` to end on its own; `second` never started.
    let resumed = env.engine(&["resume", "1"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let old = show(&env, 1).unwrap();
    assert_eq!(old["run"]["status"], "interrupted");
    let statuses: Vec<(&str, &str)> = old["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["step"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [("first", "succeeded"), ("second", "not_started")]
    );
    let new = show(&env, 2).unwrap();
    assert_eq!(new["tasks"][0]["status"], "cached");
    assert_eq!(new["tasks"][1]["status"], "succeeded");
    assert_eq!(env.read("out/k/second/_all/y"), "1\n");
}

/// A task that ended, and the task it let start, both in the moments before the engine died and
/// before its journal committed them: recovery settles both from their files, and neither runs
/// again. Returns whether the kill came before the commit (the store did not know the first
/// task had ended), which is what this is about; the outcome must be right either way.
fn kill_right_after_a_task_ends() -> bool {
    let env = Env::new();
    env.write(
        "q.pipe",
        "pipeline q {\n\
         \x20 step first { run \"echo first >> ledger; echo a > {out}/a\" }\n\
         \x20 step second {\n\
         \x20   input first\n\
         \x20   run \"echo second >> ledger; touch started; sleep 1; cat {inputs} > {out}/b\"\n\
         \x20 }\n\
         }\n",
    );
    let mut engine = spawn_engine(&env, &["run", "q.pipe"]);
    let started = env.path().join("started");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !started.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    engine.kill().unwrap();
    engine.wait().unwrap();
    assert!(started.exists(), "the second task never started");
    // The killed engine's supervisor outlives it, to record how the second task ends.
    assert_eq!(supervisors(env.path()).len(), 1, "one supervisor, alive");
    let before = show(&env, 1).expect("engine show 1");
    let uncommitted = before["tasks"][0]["status"] != "succeeded";

    let resumed = env.engine(&["resume", "1"]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(
        env.read("ledger"),
        "first\nsecond\n",
        "each command ran once"
    );
    assert!(
        wait_for(Duration::from_secs(5), || supervisors(env.path())
            .is_empty()),
        "a supervisor outlives its engine and its commands"
    );
    assert_eq!(env.read("out/q/second/_all/b"), "a\n");
    let settled = show(&env, 1).expect("engine show 1");
    assert_eq!(settled["run"]["status"], "interrupted");
    for run in ["1", "2"] {
        for name in ["decided.jsonl", "ended.jsonl"] {
            let log = env.path().join(".engine/logs").join(run).join(name);
            assert!(!log.exists(), "run {run}'s {name} outlives it");
        }
    }
    for task in settled["tasks"].as_array().unwrap() {
        assert_eq!(task["status"], "succeeded", "{task}");
    }
    uncommitted
}

#[test]
fn tasks_that_ended_before_their_commit_are_settled_from_their_files() {
    // The journal commits 100 ms after the first write it holds; the kill lands within a few ms
    // of the second task's start, so all but a very busy machine land before the commit.
    let before_commit = (0..5).filter(|_| kill_right_after_a_task_ends()).count();
    assert!(
        before_commit > 0,
        "no kill landed before the journal's commit: the case is untested"
    );
}

#[test]
fn a_second_run_of_the_same_pipeline_is_refused_while_one_is_live() {
    let env = Env::new();
    env.write(
        "s.pipe",
        "pipeline s {\n  step wait { run \"sleep 30; echo > {out}/x\" }\n}\n",
    );
    let mut first = spawn_engine(&env, &["run", "s.pipe"]);
    assert!(wait_for(Duration::from_secs(20), || show(&env, 1)
        .is_some_and(|s| s["tasks"][0]["status"] == "running")));
    let second = env.engine(&["run", "s.pipe"]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stderr.contains("already being run by run 1"),
        "{}",
        second.stderr
    );
    assert_eq!(env.engine(&["cancel", "1"]).code, 0);
    first.wait().unwrap();
}

/// A deterministic pseudo-random sequence (no dependency needed for a test's jitter).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Every visible product of a `work` task must be complete: both of its lines.
fn assert_no_partial_output(out: &Path) {
    let Ok(groups) = std::fs::read_dir(out.join("crash/work")) else {
        return;
    };
    for group in groups.flatten() {
        let path = group.path().join("result.txt");
        if let Ok(text) = std::fs::read_to_string(&path) {
            assert!(
                text.starts_with("begin ") && text.ends_with("end\n"),
                "partial output visible in {}: {text:?}",
                path.display()
            );
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_runs_nothing_twice() {
    let env = Env::new();
    let tasks = 60;
    env.write(
        "crash.pipe",
        r#"pipeline crash {
  source items {
    root "data"
    glob "*.txt"
    group item by regex "^(?P<item>[^.]+)[.]txt$"
  }
  step work each item {
    input items
    run """echo "begin {group}" > {out}/result.txt; sleep 0.2; echo end >> {out}/result.txt; echo "done {group}" >> ledger"""
  }
  step gather {
    input work
    run "cat {inputs} | grep -c end > {out}/count.txt"
  }
}
"#,
    );
    for i in 0..tasks {
        env.write(&format!("data/t{i:03}.txt"), &format!("{i}\n"));
    }
    // Commands run in the directory of the .pipe file, so `ledger` is the test dir's.

    let mut random = Lcg(0x5eed);
    let mut kills = 0;
    let mut last_run = 0u64;
    let mut args: Vec<String> = vec![
        "run".into(),
        "crash.pipe".into(),
        "--jobs".into(),
        "2".into(),
    ];
    // Kills that land while work is left, until 20 have or the work is done: a kill of a run
    // with nothing left to do proves nothing. The work (60 tasks of 0.2 s, 2 at a time) takes
    // longer than 20 kills at most 0.5 s apart.
    let mut work_done = false;
    while kills < 20 && !work_done {
        let mut engine = spawn_engine(&env, &args.iter().map(String::as_str).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(100 + random.next(400)));
        let finished = engine.try_wait().unwrap().is_some();
        let _ = engine.kill(); // SIGKILL
        let _ = engine.wait();
        if !finished {
            kills += 1;
        }
        assert_no_partial_output(&env.path().join("out"));
        let runs = env.engine(&["runs", "--json", "-n", "1"]);
        let list: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap_or_default();
        if let Some(id) = list[0]["id"].as_u64() {
            last_run = id;
            work_done = list[0]["status"] == "succeeded";
            args = vec!["resume".into(), id.to_string(), "--jobs".into(), "2".into()];
        }
    }
    assert!(last_run > 0);
    eprintln!("{kills} kills landed while work was left");
    assert!(
        kills >= 10,
        "only {kills} kills landed before the work was done: make it longer"
    );
    // Finish without interruptions.
    let finish = env.engine(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let finish = if finish.code == 0 {
        finish
    } else {
        // A resume of a run that itself succeeded by the time of its kill has nothing left: run once more.
        env.engine(&["run", "crash.pipe", "--jobs", "2"])
    };
    assert_eq!(finish.code, 0, "{}", finish.stderr);
    assert_no_partial_output(&env.path().join("out"));

    let ledger = env.read("ledger");
    let mut completions = std::collections::BTreeMap::<String, usize>::new();
    for line in ledger.lines() {
        *completions.entry(line.to_string()).or_default() += 1;
    }
    assert_eq!(completions.len(), tasks, "every task completed");
    let twice: Vec<_> = completions.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        // Explain: every record of the doubled tasks, across runs.
        let mut story = String::new();
        for run in 1..=last_run + 1 {
            let Some(shown) = show(&env, run) else {
                continue;
            };
            for task in shown["tasks"].as_array().unwrap() {
                let group = task["group"].as_str().unwrap_or("");
                if twice
                    .iter()
                    .any(|(line, _)| line.ends_with(&format!(" {group}")))
                {
                    story.push_str(&format!(
                        "run {run} ({}): {task}\n",
                        shown["run"]["trigger"]
                    ));
                }
            }
        }
        panic!("tasks completed more than once: {twice:?}\n{story}");
    }
    assert_eq!(
        env.read("out/crash/gather/_all/count.txt").trim(),
        tasks.to_string()
    );

    // And now everything is cached.
    let again = env.engine(&["run", "crash.pipe"]);
    assert_eq!(again.code, 0);
    assert!(
        again
            .stderr
            .contains(&format!("{} tasks ({} cached)", tasks + 1, tasks + 1)),
        "{}",
        again.stderr
    );
}

/// Issue 16.D: after a SIGKILL of an `engine run` of pipeline y, the next `engine run y` waited
/// for the tasks of pipeline x, which another engine on the same state directory was running.
#[test]
fn recovery_waits_only_for_the_tasks_of_the_runs_it_settles() {
    let env = Env::new();
    env.write(
        "x.pipe",
        "pipeline x {\n  step long { run \"sleep 30; echo x > {out}/x\" }\n}\n",
    );
    env.write(
        "y.pipe",
        "pipeline y {\n  step short { run \"sleep 1; echo y > {out}/y\" }\n}\n",
    );
    let mut x = spawn_engine(&env, &["run", "x.pipe"]);
    let mut y = spawn_engine(&env, &["run", "y.pipe"]);
    // Both tasks running: then y's engine dies.
    assert!(wait_for(Duration::from_secs(20), || {
        [1, 2]
            .iter()
            .all(|run| show(&env, *run).is_some_and(|s| s["tasks"][0]["status"] == "running"))
    }));
    y.kill().unwrap();
    y.wait().unwrap();

    let started = Instant::now();
    let again = env.engine(&["run", "y.pipe"]);
    let took = started.elapsed();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        took < Duration::from_secs(15),
        "the run of y waited {took:?}, for x's task\n{}",
        again.stderr
    );
    assert!(x.try_wait().unwrap().is_none(), "x is still running");
    x.kill().unwrap();
    x.wait().unwrap();
    for run in ["1", "2"] {
        let _ = env.engine(&["cancel", run]);
    }
}
