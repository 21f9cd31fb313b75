//! The SLURM executor against a real SLURM cluster: the one-node cluster that
//! `tests/slurm/cluster.sh` brings up on this machine. Every test first runs that script; when
//! the cluster cannot come up, the test fails with the script's output (it never skips).
//!
//! Submissions are counted by an `sbatch` on `PATH` ahead of the real one that logs each call,
//! so "nothing was submitted twice" is checked against what SLURM was actually asked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{http, repo_root, Env, Run};

/// Brings the test cluster up (idempotent, fast when it is up), or fails the test saying why.
fn cluster() {
    let script = repo_root().join("tests/slurm/cluster.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "the SLURM test cluster did not come up ({}):\n{}{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A temp dir with an `sbatch` that counts submissions, and a runner for the engine with it.
struct Slurm {
    env: Env,
    bin: PathBuf,
}

impl Slurm {
    fn new() -> Slurm {
        cluster();
        let env = Env::new();
        let bin = env.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let real = find_on_path("sbatch").expect("sbatch is on PATH once the cluster is up");
        let log = env.path().join("submissions.log");
        let wrapper = bin.join("sbatch");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n\
                 echo \"$*\" >> '{log}'\n\
                 if [ -e '{kill}' ]; then\n\
                   # Submit, then kill the engine before it can read the job id.\n\
                   '{real}' \"$@\" > /dev/null && rm '{kill}' && kill -9 \"$PPID\"\n\
                   exit 1\n\
                 fi\n\
                 if [ -e '{slow}' ]; then\n\
                   # A controller slow to answer.\n\
                   sleep \"$(cat '{slow}')\"\n\
                   date +%s%N >> '{answered}'\n\
                 fi\n\
                 exec '{real}' \"$@\"\n",
                log = log.display(),
                real = real.display(),
                kill = env.path().join("kill-engine-on-submit").display(),
                slow = env.path().join("slow-sbatch").display(),
                answered = env.path().join("sbatch-answered").display(),
            ),
        )
        .unwrap();
        make_executable(&wrapper);
        Slurm { env, bin }
    }

    fn path_var(&self) -> String {
        let path = std::env::var("PATH").unwrap_or_default();
        format!("{}:{path}", self.bin.display())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_engine"));
        command
            .args(args)
            .current_dir(self.env.path())
            .env("NO_COLOR", "1")
            .env("PATH", self.path_var());
        command
    }

    /// Runs `engine ARGS`, polling SLURM often (`run`, `resume` and the like take the option).
    fn engine(&self, args: &[&str]) -> Run {
        let output: Output = self.command(args).output().expect("the engine runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the engine starts")
    }

    /// How many times `sbatch` was called.
    fn submissions(&self) -> usize {
        std::fs::read_to_string(self.env.path().join("submissions.log"))
            .map(|log| log.lines().count())
            .unwrap_or(0)
    }

    fn show(&self, run: u64) -> Value {
        let shown = self.engine(&["show", &run.to_string(), "--json"]);
        assert_eq!(shown.code, 0, "{}", shown.stderr);
        serde_json::from_str(&shown.stdout).unwrap()
    }

    /// The SLURM job ids the store records for `run`'s attempts.
    fn job_ids(&self, run: u64) -> Vec<String> {
        let shown = self.engine(&["show", &run.to_string(), "--json"]);
        let Ok(shown) = serde_json::from_str::<Value>(&shown.stdout) else {
            return Vec::new();
        };
        attempts(&shown)
            .iter()
            .filter_map(|a| a["slurm"]["job_id"].as_str().map(str::to_string))
            .collect()
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn attempts(shown: &Value) -> Vec<Value> {
    shown["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["attempts_detail"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn task<'a>(shown: &'a Value, step: &str, group: Option<&str>) -> &'a Value {
    shown["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["step"] == step && t["group"].as_str() == group)
        .unwrap_or_else(|| panic!("no task {step} {group:?} in {shown:#}"))
}

/// The jobs among `ids` that SLURM still has pending or running.
fn in_queue(ids: &[String]) -> Vec<String> {
    if ids.is_empty() {
        return Vec::new();
    }
    let output = Command::new("squeue")
        .args([
            "--noheader",
            "--format=%i %T",
            &format!("--jobs={}", ids.join(",")),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, state)| !matches!(*state, "COMPLETED" | "CANCELLED" | "FAILED" | "TIMEOUT"))
        .map(|(id, _)| id.to_string())
        .collect()
}

fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

const POLL: &str = "--slurm-poll=200ms";

/// Three samples: a local step prepares each, SLURM counts its words, a local step totals them.
const MIXED: &str = r#"
pipeline mixed {
  source texts {
    root "data"
    glob "*.txt"
    group sample by regex "^(?P<sample>[^/]+)[.]txt$"
  }
  step upper each sample {
    input texts
    run "tr a-z A-Z < {inputs} > {out}/upper.txt"
  }
  step count each sample {
    input upper
    executor slurm { options "--nice=0" }
    resources {
      cpus 1
      memory 64MB
      time 5m
    }
    run "echo {group} $(wc -w < {inputs}) job=$SLURM_JOB_ID > {out}/count.txt"
  }
  step total {
    input count
    run "sort {inputs} > {out}/total.txt"
  }
}
"#;

fn write_samples(env: &Env) {
    env.write("data/a.txt", "one two three\n");
    env.write("data/b.txt", "four five\n");
    env.write("data/c.txt", "six\n");
}

#[test]
fn a_pipeline_mixing_local_and_slurm_steps_runs_with_products_and_lineage() {
    let slurm = Slurm::new();
    slurm.env.write("mixed.pipe", MIXED);
    write_samples(&slurm.env);

    let run = slurm.engine(&["run", "mixed.pipe", POLL]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(slurm.submissions(), 3, "one submission per SLURM task");

    let total = slurm.env.read("out/mixed/total/_all/total.txt");
    let lines: Vec<&str> = total.lines().collect();
    assert_eq!(lines.len(), 3, "{total}");
    for (line, expected) in lines.iter().zip(["a 3 job=", "b 2 job=", "c 1 job="]) {
        assert!(line.starts_with(expected), "{total}");
        // The command ran inside a SLURM job.
        assert!(line.len() > expected.len(), "no SLURM_JOB_ID in {total}");
    }

    let shown = slurm.show(1);
    for group in ["a", "b", "c"] {
        let count = task(&shown, "count", Some(group));
        assert_eq!(count["status"], "succeeded");
        let attempt = &count["attempts_detail"][0];
        assert_eq!(attempt["slurm"]["state"], "COMPLETED", "{attempt:#}");
        assert!(attempt["slurm"]["job_id"].as_str().is_some(), "{attempt:#}");
        assert_eq!(attempt["exit_code"], 0);
        assert!(attempt["pid"].is_null());
        let upper = task(&shown, "upper", Some(group));
        assert!(upper["attempts_detail"][0]["slurm"].is_null());
        assert!(upper["attempts_detail"][0]["pid"].is_number());
    }

    // Lineage goes from the total through the SLURM step back to the source files.
    let lineage = slurm.engine(&["lineage", "out/mixed/total/_all/total.txt"]);
    assert_eq!(lineage.code, 0, "{}", lineage.stderr);
    for expected in [
        "step `count` [a]",
        "step `upper` [b]",
        "data/c.txt (source `texts`",
    ] {
        assert!(lineage.stdout.contains(expected), "{}", lineage.stdout);
    }

    // Nothing changed: everything is cached and nothing is submitted.
    let again = slurm.engine(&["run", "mixed.pipe", POLL]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(slurm.submissions(), 3);
}

#[test]
fn a_failing_slurm_task_is_retried_then_fails_with_its_log() {
    let slurm = Slurm::new();
    slurm.env.write(
        "fail.pipe",
        r#"
pipeline fail {
  step broken {
    executor slurm
    retries 1
    backoff fixed 100ms
    run "echo attempt $ENGINE_ATTEMPT on $SLURM_JOB_ID; echo something broke >&2; exit 3"
  }
}
"#,
    );
    let run = slurm.engine(&["run", "fail.pipe", POLL]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(slurm.submissions(), 2, "the first attempt and one retry");

    let shown = slurm.show(1);
    let broken = task(&shown, "broken", None);
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["attempts"], 2);
    for attempt in broken["attempts_detail"].as_array().unwrap() {
        assert_eq!(attempt["end"], "failed", "{attempt:#}");
        assert_eq!(attempt["exit_code"], 3, "{attempt:#}");
        assert_eq!(attempt["slurm"]["state"], "FAILED", "{attempt:#}");
    }

    let logs = slurm.engine(&["logs", "1", "broken"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(logs.stdout.contains("something broke"), "{}", logs.stdout);
    assert!(logs.stdout.contains("attempt "), "{}", logs.stdout);
}

#[test]
fn the_engine_timeout_cancels_the_job_and_is_a_timeout() {
    let slurm = Slurm::new();
    slurm.env.write(
        "slow.pipe",
        r#"
pipeline slow {
  step sleepy {
    executor slurm
    timeout 2s
    run "sleep 300"
  }
}
"#,
    );
    let started = Instant::now();
    let run = slurm.engine(&["run", "slow.pipe", POLL]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let shown = slurm.show(1);
    let attempt = &task(&shown, "sleepy", None)["attempts_detail"][0];
    assert_eq!(attempt["end"], "timed_out", "{attempt:#}");
    let ids = slurm.job_ids(1);
    assert_eq!(ids.len(), 1);
    assert!(
        in_queue(&ids).is_empty(),
        "job {ids:?} is still in the queue"
    );
}

#[test]
fn slurms_own_time_limit_is_a_timeout() {
    let slurm = Slurm::new();
    slurm.env.write(
        "limit.pipe",
        r#"
pipeline limit {
  step sleepy {
    executor slurm
    resources { time 1m }
    run "sleep 600"
  }
}
"#,
    );
    let run = slurm.engine(&["run", "limit.pipe", POLL]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let shown = slurm.show(1);
    let attempt = &task(&shown, "sleepy", None)["attempts_detail"][0];
    assert_eq!(attempt["end"], "timed_out", "{attempt:#}");
    assert_eq!(attempt["slurm"]["state"], "TIMEOUT", "{attempt:#}");
}

/// Three SLURM tasks that take a while: on a two-core node, two run and one waits.
const SLEEPERS: &str = r#"
pipeline sleepers {
  source texts {
    root "data"
    glob "*.txt"
    group sample by regex "^(?P<sample>[^/]+)[.]txt$"
  }
  step nap each sample {
    input texts
    executor slurm
    run "echo {group} >> ledger.txt; sleep 4; cp {inputs} {out}/copy.txt"
  }
  step gather {
    input nap
    run "cat {inputs} > {out}/all.txt; echo gather >> ledger.txt"
  }
}
"#;

#[test]
fn cancel_removes_the_jobs_from_the_queue() {
    let slurm = Slurm::new();
    slurm
        .env
        .write("sleepers.pipe", &SLEEPERS.replace("sleep 4", "sleep 300"));
    write_samples(&slurm.env);
    let mut engine = slurm.spawn(&["run", "sleepers.pipe", POLL]);
    assert!(
        wait_for(Duration::from_secs(60), || slurm.job_ids(1).len() == 3),
        "three jobs were not submitted"
    );
    let ids = slurm.job_ids(1);
    assert_eq!(in_queue(&ids).len(), 3, "{ids:?}");
    // While they are in the queue, the store says what SLURM says of each.
    let live_states = || -> Vec<String> {
        attempts(&slurm.show(1))
            .iter()
            .map(|a| a["slurm"]["state"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(30), || {
            let states = live_states();
            states.iter().all(|s| s == "PENDING" || s == "RUNNING")
                && states.iter().any(|s| s == "RUNNING")
        }),
        "{:?}",
        live_states()
    );
    let shown = slurm.engine(&["show", "1"]);
    assert!(shown.stdout.contains("SLURM JOB"), "{}", shown.stdout);
    assert!(shown.stdout.contains("RUNNING"), "{}", shown.stdout);

    let cancel = slurm.engine(&["cancel", "1"]);
    assert_eq!(cancel.code, 0, "{}{}", cancel.stdout, cancel.stderr);
    let status = engine.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        in_queue(&ids).is_empty(),
        "still queued: {:?}",
        in_queue(&ids)
    );

    let shown = slurm.show(1);
    assert_eq!(shown["run"]["status"], "cancelled");
    for group in ["a", "b", "c"] {
        assert_eq!(task(&shown, "nap", Some(group))["status"], "cancelled");
    }
    assert_eq!(slurm.submissions(), 3);
}

#[test]
fn a_killed_engine_reattaches_to_its_jobs_and_submits_none_twice() {
    let slurm = Slurm::new();
    slurm.env.write("sleepers.pipe", SLEEPERS);
    write_samples(&slurm.env);
    let mut engine = slurm.spawn(&["run", "sleepers.pipe", POLL]);
    assert!(
        wait_for(Duration::from_secs(60), || slurm.job_ids(1).len() == 3),
        "three jobs were not submitted"
    );
    let ids = slurm.job_ids(1);
    assert!(!in_queue(&ids).is_empty(), "the jobs ended too soon");
    engine.kill().unwrap(); // SIGKILL
    engine.wait().unwrap();
    assert!(
        !in_queue(&ids).is_empty(),
        "the jobs should outlive the engine"
    );

    let resume = slurm.engine(&["resume", "1", POLL]);
    assert_eq!(resume.code, 0, "{}{}", resume.stdout, resume.stderr);
    assert_eq!(slurm.submissions(), 3, "a job was submitted twice");

    // Every task ran exactly once.
    let ledger = slurm.env.read("ledger.txt");
    let mut lines: Vec<&str> = ledger.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["a", "b", "c", "gather"], "{ledger}");
    assert_eq!(
        slurm.env.read("out/sleepers/gather/_all/all.txt"),
        "one two three\nfour five\nsix\n"
    );
    let first = slurm.show(1);
    assert_eq!(first["run"]["status"], "interrupted");
    for group in ["a", "b", "c"] {
        let nap = task(&first, "nap", Some(group));
        assert_eq!(nap["status"], "succeeded", "{nap:#}");
        assert_eq!(nap["attempts_detail"][0]["slurm"]["state"], "COMPLETED");
    }
    let second = slurm.show(2);
    for group in ["a", "b", "c"] {
        assert_eq!(task(&second, "nap", Some(group))["status"], "cached");
    }
    assert_eq!(task(&second, "gather", None)["status"], "succeeded");
}

#[test]
fn a_bad_options_setting_fails_the_attempt_with_a_clear_error() {
    let slurm = Slurm::new();
    slurm.env.write(
        "bad.pipe",
        r#"
pipeline bad {
  step odd {
    executor slurm { options "--comment='unclosed" }
    run "true"
  }
}
"#,
    );
    let run = slurm.engine(&["run", "bad.pipe", POLL]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("cannot split the executor's options")
            || run.stderr.contains("cannot split the executor's options"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(slurm.submissions(), 0);
}

#[test]
fn a_task_over_its_memory_request_is_killed_and_its_log_says_why() {
    let slurm = Slurm::new();
    // `tail` keeps a line in memory until its end: 400 MiB of zeros without a new line.
    slurm.env.write(
        "hungry.pipe",
        r#"
pipeline hungry {
  step eat {
    executor slurm
    resources { memory 50MB }
    run "head -c 400M /dev/zero | tail > /dev/null"
  }
}
"#,
    );
    let run = slurm.engine(&["run", "hungry.pipe", POLL]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let shown = slurm.show(1);
    let attempt = &task(&shown, "eat", None)["attempts_detail"][0];
    assert_eq!(attempt["end"], "failed", "{attempt:#}");
    // This cluster enforces memory by accounting (no cgroups): SLURM kills the job with
    // SIGKILL and calls it FAILED; with cgroups it would be OUT_OF_MEMORY.
    let state = attempt["slurm"]["state"].as_str().unwrap_or_default();
    assert!(matches!(state, "FAILED" | "OUT_OF_MEMORY"), "{attempt:#}");
    let logs = slurm.engine(&["logs", "1", "eat"]);
    assert!(logs.stdout.contains("memory limit"), "{}", logs.stdout);
}

#[test]
fn cancelling_a_run_whose_engine_was_killed_cancels_its_jobs() {
    let slurm = Slurm::new();
    slurm
        .env
        .write("sleepers.pipe", &SLEEPERS.replace("sleep 4", "sleep 300"));
    write_samples(&slurm.env);
    let mut engine = slurm.spawn(&["run", "sleepers.pipe", POLL]);
    assert!(
        wait_for(Duration::from_secs(60), || slurm.job_ids(1).len() == 3),
        "three jobs were not submitted"
    );
    engine.kill().unwrap(); // SIGKILL: the jobs stay in the queue
    engine.wait().unwrap();
    let ids = slurm.job_ids(1);
    assert_eq!(in_queue(&ids).len(), 3, "{ids:?}");

    let cancel = slurm.engine(&["cancel", "1"]);
    assert_eq!(cancel.code, 0, "{}{}", cancel.stdout, cancel.stderr);
    assert!(
        in_queue(&ids).is_empty(),
        "still queued: {:?}",
        in_queue(&ids)
    );
    let shown = slurm.show(1);
    assert_eq!(shown["run"]["status"], "cancelled");
    assert_eq!(slurm.submissions(), 3);
}

#[test]
fn a_job_submitted_just_before_the_engine_died_is_found_by_its_comment() {
    let slurm = Slurm::new();
    slurm.env.write(
        "once.pipe",
        r#"
pipeline once {
  step only {
    executor slurm
    run "echo ran >> ledger.txt; sleep 2; echo done > {out}/done.txt"
  }
}
"#,
    );
    slurm.env.write("kill-engine-on-submit", "");
    let mut engine = slurm.spawn(&["run", "once.pipe", POLL]);
    let status = engine.wait().unwrap();
    assert_eq!(
        status.code(),
        None,
        "the engine was killed by the sbatch wrapper"
    );
    assert_eq!(slurm.submissions(), 1);
    // The store never heard of the job.
    assert!(slurm.job_ids(1).is_empty());

    let resume = slurm.engine(&["resume", "1", POLL]);
    assert_eq!(resume.code, 0, "{}{}", resume.stdout, resume.stderr);
    assert_eq!(slurm.submissions(), 1, "the job was submitted again");
    assert_eq!(slurm.env.read("ledger.txt"), "ran\n");
    assert_eq!(slurm.env.read("out/once/only/_all/done.txt"), "done\n");
    let first = slurm.show(1);
    let only = task(&first, "only", None);
    assert_eq!(only["status"], "succeeded", "{only:#}");
    assert_eq!(
        only["attempts_detail"][0]["slurm"]["state"], "COMPLETED",
        "{only:#}"
    );
    assert_eq!(task(&slurm.show(2), "only", None)["status"], "cached");
}

#[test]
fn the_daemon_sends_slurm_steps_to_the_cluster_with_its_slurm_options() {
    let slurm = Slurm::new();
    slurm.env.write("mixed.pipe", MIXED);
    write_samples(&slurm.env);
    let log = slurm.env.path().join("daemon.log");
    let mut daemon = slurm
        .command(&[
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--grace",
            "2",
            POLL,
            "--slurm-queue-size",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the daemon starts");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(10), || read_log()
            .contains("pipeline loaded")),
        "{}",
        read_log()
    );
    let text = read_log();
    let start = text
        .find("listen=")
        .expect("the start line names the address")
        + 7;
    let address = text[start..].split_whitespace().next().unwrap().to_string();
    let token = slurm.env.read(".engine/api-token");

    let (status, body) = http(
        &address,
        "POST",
        "/pipelines/mixed/trigger",
        Some(token.trim()),
        "{}",
    );
    assert_eq!(status, 201, "{body}");
    assert!(
        wait_for(Duration::from_secs(60), || {
            let (_, body) = http(&address, "GET", "/runs/1", Some(token.trim()), "");
            serde_json::from_str::<Value>(&body)
                .is_ok_and(|shown| shown["run"]["status"] == "succeeded")
        }),
        "{}",
        read_log()
    );
    let _ = daemon.kill();
    let _ = daemon.wait();

    assert_eq!(slurm.submissions(), 3, "one submission per SLURM task");
    assert_eq!(
        slurm
            .env
            .read("out/mixed/total/_all/total.txt")
            .lines()
            .count(),
        3
    );
    // `--slurm-queue-size 1` reached the daemon's run: its jobs never overlapped.
    let shown = slurm.show(1);
    let mut jobs: Vec<(u64, u64)> = attempts(&shown)
        .iter()
        .filter(|a| a["slurm"]["job_id"].is_string())
        .map(|a| {
            (
                a["started_ms"].as_u64().unwrap(),
                a["finished_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    jobs.sort();
    assert_eq!(jobs.len(), 3, "{shown:#}");
    for pair in jobs.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "jobs overlapped: {jobs:?}");
    }
}

#[test]
fn local_tasks_keep_starting_while_sbatch_is_slow_to_answer() {
    let slurm = Slurm::new();
    std::fs::write(slurm.env.path().join("slow-sbatch"), "2").unwrap();
    slurm.env.write(
        "mixed.pipe",
        r#"
pipeline mixed {
  step remote {
    executor slurm
    priority 10
    run "echo remote > {out}/r.txt"
  }
  step a { run "date +%s%N > {out}/t" }
  step b { run "date +%s%N > {out}/t" }
  step c { run "date +%s%N > {out}/t" }
}
"#,
    );
    let run = slurm.engine(&["run", "mixed.pipe", "--jobs", "2", POLL]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let answered: u128 = std::fs::read_to_string(slurm.env.path().join("sbatch-answered"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The SLURM step starts first (its priority), and its `sbatch` takes 2 s to answer; the
    // local steps ran meanwhile, every one of them, two at a time.
    for step in ["a", "b", "c"] {
        let done: u128 = slurm
            .env
            .read(&format!("out/mixed/{step}/_all/t"))
            .trim()
            .parse()
            .unwrap();
        assert!(done < answered, "local step {step} waited for sbatch");
    }
    assert_eq!(slurm.env.read("out/mixed/remote/_all/r.txt"), "remote\n");
}
