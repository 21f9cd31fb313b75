//! `engine daemon`: standing pipelines fired by new data and by cron, run by the real binary in
//! the background on temp dirs, watched through the store (`engine runs --json`) and its log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{http, Env};

mod api;
mod backups;
mod policies;
mod queue;

/// A daemon running in the background on an `Env`; SIGKILLed if the test ends without stopping it.
struct Daemon {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(env: &Env, extra: &[&str]) -> Daemon {
        Daemon::start_with(env, extra, &[])
    }

    /// A daemon with `vars` in its environment.
    fn start_with(env: &Env, extra: &[&str], vars: &[(&str, &str)]) -> Daemon {
        let log = env.path().join("daemon.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_engine"))
            .args(["daemon", "--listen", "127.0.0.1:0", "--grace", "2"])
            .args(extra)
            .envs(vars.iter().copied())
            .current_dir(env.path())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let daemon = Daemon {
            child: Some(child),
            log,
        };
        daemon.wait_log("daemon started", Duration::from_secs(10));
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, text: &str, timeout: Duration) {
        let found = wait_for(timeout, || self.log().contains(text));
        assert!(found, "`{text}` not in the daemon's log:\n{}", self.log());
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    fn stop(mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        signal(child.id(), "TERM");
        let status = child.wait().unwrap();
        status.code().unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) {
    Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
}

fn wait_for(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ready()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The runs in the store, newest first.
fn runs(env: &Env) -> Vec<serde_json::Value> {
    let listed = env.engine(&["runs", "--json"]);
    if listed.code != 0 {
        return Vec::new(); // no store yet
    }
    serde_json::from_str::<Vec<serde_json::Value>>(&listed.stdout).unwrap()
}

fn finished_runs(env: &Env) -> Vec<serde_json::Value> {
    runs(env)
        .into_iter()
        .filter(|r| r["status"] != "running" && r["status"] != "queued")
        .collect()
}

/// Per-file counting, continuous with a cooldown.
fn watch_pipe(cooldown: &str, command: &str) -> String {
    format!(
        r#"pipeline watch {{
  trigger continuous cooldown {cooldown} poll 30s

  source files {{
    root "in"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }}

  step count each file {{
    input files
    run "{command}"
  }}
}}
"#
    )
}

fn mtime_ms(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_landed_file_is_processed_after_the_cooldown_and_not_before() {
    let env = Env::new();
    env.write("watch.pipe", &watch_pipe("1s", "cat {inputs} > {out}/copy"));
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);

    let landed = env.write("in/a.txt", "alpha\n");
    std::thread::sleep(Duration::from_millis(500));
    assert!(runs(&env).is_empty(), "a run started within the cooldown");

    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 1));
    let run = &runs(&env)[0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["trigger"], "continuous");
    let started = run["created_ms"].as_u64().unwrap();
    assert!(
        started >= mtime_ms(&landed) + 1000,
        "the run started {} ms after the file landed",
        started - mtime_ms(&landed)
    );
    assert_eq!(env.read("out/watch/count/a/copy"), "alpha\n");
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn a_file_still_growing_is_processed_only_once_it_stops() {
    let env = Env::new();
    env.write("watch.pipe", &watch_pipe("1s", "cat {inputs} > {out}/copy"));
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);

    let path = env.path().join("in/big.txt");
    let mut text = String::new();
    for n in 0..8 {
        text.push_str(&format!("line {n}\n"));
        std::fs::write(&path, &text).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(runs(&env).is_empty(), "a run started while the file grew");
    }
    let last_write = mtime_ms(&path);
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 1));
    let run = &runs(&env)[0];
    assert!(run["created_ms"].as_u64().unwrap() >= last_write + 1000);
    assert_eq!(
        env.read("out/watch/count/big/copy"),
        text,
        "processed whole"
    );
    drop(daemon);
}

#[test]
fn the_trigger_cooldown_waits_for_the_whole_gap_so_a_burst_is_one_run() {
    let env = Env::new();
    env.write("watch.pipe", &watch_pipe("2s", "cat {inputs} > {out}/copy"));
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));

    // Four bursts a second apart, one group per file: each burst's groups settle on their own
    // before the last burst lands, but the gap does not.
    let mut last = None;
    for burst in 0..4 {
        for n in 0..5 {
            last = Some(env.write(&format!("in/b{burst}f{n}.txt"), &format!("{burst}.{n}\n")));
        }
        std::thread::sleep(Duration::from_millis(1000));
        assert!(
            runs(&env).is_empty(),
            "a run started while files kept arriving"
        );
    }
    let last = mtime_ms(&last.unwrap());
    assert!(wait_for(Duration::from_secs(15), || finished_runs(&env)
        .len()
        == 1));
    std::thread::sleep(Duration::from_millis(1000));
    let all = runs(&env);
    assert_eq!(all.len(), 1, "one run for the burst: {all:?}");
    let started = all[0]["created_ms"].as_u64().unwrap();
    assert!(
        started >= last + 2000,
        "the run started {} ms after the last file",
        started as i64 - last as i64
    );
    let shown = env.engine(&["show", "1", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["tasks"].as_array().unwrap().len(), 20);
    drop(daemon);
}

#[test]
fn the_max_wait_processes_data_that_keeps_arriving() {
    let env = Env::new();
    env.write(
        "watch.pipe",
        &watch_pipe("1s max 3s", "cat {inputs} > {out}/copy"),
    );
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));

    // A file every 400 ms for 8 s: the gap never settles.
    let began = now_ms();
    let mut first_run_at = None;
    for n in 0..20 {
        env.write(&format!("in/f{n:02}.txt"), &format!("{n}\n"));
        std::thread::sleep(Duration::from_millis(400));
        if first_run_at.is_none() && !runs(&env).is_empty() {
            first_run_at = Some(now_ms());
        }
    }
    let first_run_at = first_run_at.expect("no run while data kept arriving");
    assert!(
        first_run_at >= began + 3000,
        "a run started {} ms in, before the max wait",
        first_run_at - began
    );
    // Once the data stops, the rest settles and is processed: every file once.
    assert!(wait_for(Duration::from_secs(15), || {
        (0..20).all(|n| {
            env.path()
                .join(format!("out/watch/count/f{n:02}/copy"))
                .exists()
        }) && runs(&env).iter().all(|r| r["status"] == "succeeded")
    }));
    assert!(daemon.log().contains("max wait"), "{}", daemon.log());
    drop(daemon);
}

#[test]
fn files_that_arrive_during_a_run_go_to_the_next_run() {
    let env = Env::new();
    env.write(
        "watch.pipe",
        &watch_pipe("0s", "sleep 1; cat {inputs} > {out}/copy"),
    );
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);

    env.write("in/a.txt", "a\n");
    assert!(wait_for(Duration::from_secs(10), || runs(&env).len() == 1));
    env.write("in/b.txt", "b\n");
    env.write("in/c.txt", "c\n");
    assert!(wait_for(Duration::from_secs(20), || finished_runs(&env)
        .len()
        == 2));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(runs(&env).len(), 2, "one more run, not one per file");
    for name in ["a", "b", "c"] {
        assert_eq!(
            env.read(&format!("out/watch/count/{name}/copy")),
            format!("{name}\n")
        );
    }
    drop(daemon);
}

#[test]
fn what_arrived_while_the_daemon_was_down_is_one_run() {
    let env = Env::new();
    env.write("watch.pipe", &watch_pipe("0s", "cat {inputs} > {out}/copy"));
    for n in 0..100 {
        env.write(&format!("in/f{n:03}.txt"), &format!("{n}\n"));
    }
    let daemon = Daemon::start(&env, &[]);
    assert!(wait_for(Duration::from_secs(30), || finished_runs(&env)
        .len()
        == 1));
    std::thread::sleep(Duration::from_millis(500));
    let all = runs(&env);
    assert_eq!(all.len(), 1, "exactly one run");
    let shown = env.engine(&["show", "1", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    let tasks = shown["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 100);
    assert!(tasks.iter().all(|t| t["status"] == "succeeded"));
    drop(daemon);
}

#[test]
fn a_per_second_cron_fires_on_schedule() {
    let env = Env::new();
    env.write(
        "tick.pipe",
        r#"pipeline tick {
  trigger cron "* * * * * *"

  step stamp {
    run "date +%s%N > {out}/at"
  }
}
"#,
    );
    let daemon = Daemon::start(&env, &[]);
    let started = now_ms();
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        >= 3));
    let elapsed = now_ms() - started;
    assert!(elapsed < 6000, "3 fires took {elapsed} ms");
    let all = runs(&env);
    assert!(all.iter().all(|r| r["trigger"] == "cron"));
    // One fire a second. A fire can be handled late on a busy machine, so two runs may start
    // closer than a second apart, but n runs never span less than n - 2 seconds.
    let mut created: Vec<u64> = all
        .iter()
        .map(|r| r["created_ms"].as_u64().unwrap())
        .collect();
    created.sort();
    let span = created[created.len() - 1] - created[0];
    let floor = (created.len() as u64 - 2) * 1000;
    assert!(
        span >= floor,
        "{} runs within {span} ms: fired more than once a second",
        created.len()
    );
    drop(daemon);
}

#[test]
fn an_edited_file_changes_the_next_run_and_a_broken_one_keeps_the_last_good_version() {
    let env = Env::new();
    env.write("watch.pipe", &watch_pipe("0s", "echo one > {out}/v"));
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);
    env.write("in/a.txt", "a\n");
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 1));
    assert_eq!(env.read("out/watch/count/a/v"), "one\n");

    env.write("watch.pipe", &watch_pipe("0s", "echo two > {out}/v"));
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    assert!(
        wait_for(Duration::from_secs(10), || {
            std::fs::read_to_string(env.path().join("out/watch/count/a/v"))
                .is_ok_and(|v| v == "two\n")
        }),
        "the changed command reran the task:\n{}",
        daemon.log()
    );

    let broken = watch_pipe("0s", "echo three > {out}/v").replace("  step count", "  step count {");
    env.write("watch.pipe", &broken);
    daemon.wait_log("does not load", Duration::from_secs(10));
    assert!(daemon.log().contains("watch.pipe:"), "{}", daemon.log());
    let before = finished_runs(&env).len();
    env.write("in/b.txt", "b\n");
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        > before));
    assert_eq!(
        env.read("out/watch/count/b/v"),
        "two\n",
        "the last good version ran"
    );
    drop(daemon);
}

#[test]
fn sigterm_lets_the_daemon_stop_its_runs_within_the_grace() {
    let env = Env::new();
    env.write("watch.pipe", &watch_pipe("0s", "sleep 60"));
    env.write("in/a.txt", "a\n");
    let daemon = Daemon::start(&env, &[]);
    assert!(wait_for(Duration::from_secs(10), || {
        runs(&env).first().is_some_and(|r| r["status"] == "running")
    }));
    std::thread::sleep(Duration::from_millis(300));
    let stopped = Instant::now();
    assert_eq!(daemon.stop(), 0);
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "took {:?}",
        stopped.elapsed()
    );
    let run = &runs(&env)[0];
    assert_eq!(run["status"], "cancelled");
    let survivors = Command::new("pgrep")
        .args(["-f", "sleep 60"])
        .output()
        .unwrap();
    let left = String::from_utf8_lossy(&survivors.stdout).to_string();
    // Other tests may run `sleep 60` too; none of ours may be left in this env's process tree.
    for pid in left.split_whitespace() {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let state = format!("ENGINE_STATE_DIR={}", env.path().join(".engine").display());
        assert!(
            !String::from_utf8_lossy(&environ).contains(&state),
            "process {pid} of the run survived"
        );
    }
}

#[test]
fn a_daemon_killed_during_a_run_goes_on_after_a_restart_and_runs_each_task_once() {
    let env = Env::new();
    env.write(
        "watch.pipe",
        &watch_pipe(
            "0s",
            "echo {group} >> ledger.txt; sleep 0.1; cat {inputs} > {out}/copy",
        ),
    );
    for n in 0..60 {
        env.write(&format!("in/f{n:02}.txt"), &format!("{n}\n"));
    }
    let daemon = Daemon::start(&env, &["--jobs", "2"]);
    assert!(wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(env.path().join("ledger.txt"))
            .is_ok_and(|l| l.lines().count() >= 15)
    }));
    drop(daemon); // SIGKILL, in the middle of the run

    let daemon = Daemon::start(&env, &["--jobs", "2"]);
    let all_done = || {
        (0..60).all(|n| {
            env.path()
                .join(format!("out/watch/count/f{n:02}/copy"))
                .exists()
        })
    };
    assert!(
        wait_for(Duration::from_secs(60), all_done),
        "{}",
        daemon.log()
    );
    assert!(wait_for(Duration::from_secs(10), || {
        runs(&env).iter().all(|r| r["status"] != "running")
    }));
    let ledger = env.read("ledger.txt");
    for n in 0..60 {
        let group = format!("f{n:02}");
        let times = ledger.lines().filter(|l| *l == group).count();
        assert_eq!(times, 1, "task {group} ran {times} times:\n{ledger}");
        assert_eq!(
            env.read(&format!("out/watch/count/{group}/copy")),
            format!("{n}\n")
        );
    }
    let interrupted = runs(&env)
        .iter()
        .filter(|r| r["status"] == "interrupted")
        .count();
    assert_eq!(interrupted, 1, "the killed run is settled as interrupted");
    drop(daemon);
}

/// Issue 16.5: a daemon restarted after a crash waited for the tasks the dead one left running
/// before it loaded its pipelines: `GET /pipelines` listed none until they ended.
#[test]
fn a_restarted_daemon_serves_its_pipelines_while_it_waits_for_the_dead_ones_tasks() {
    let env = Env::new();
    env.write(
        "slow.pipe",
        "pipeline slow {\n  trigger continuous cooldown 0s poll 1h\n  source files {\n    root \"in\"\n    glob \"*.txt\"\n  }\n  step wait {\n    input files\n    run \"sleep 8; cat {inputs} > {out}/copy\"\n  }\n}\n",
    );
    env.write("in/a.txt", "a\n");
    let daemon = Daemon::start(&env, &[]);
    assert!(wait_for(Duration::from_secs(20), || runs(&env)
        .first()
        .is_some_and(|r| r["status"] == "running")));
    std::thread::sleep(Duration::from_millis(300));
    drop(daemon); // SIGKILL, with the task running under its supervisor

    let started = Instant::now();
    let daemon = Daemon::start(&env, &[]);
    let token = api_token(&env);
    let listed = || {
        let (code, body) = http(&daemon.address(), "GET", "/pipelines", Some(&token), "");
        code == 200 && body.contains("\"slow\"")
    };
    assert!(wait_for(Duration::from_secs(3), listed), "{}", daemon.log());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "listed only after {:?}",
        started.elapsed()
    );
    // The dead daemon's task still ends, and its run is settled from it.
    assert!(
        wait_for(Duration::from_secs(20), || env
            .path()
            .join("out/slow/wait/_all/copy")
            .exists()
            || runs(&env).iter().any(|r| r["status"] == "interrupted")),
        "{}",
        daemon.log()
    );
    drop(daemon);
}

/// Issue 16.A, for the daemon: a lost store beside the products of a pipeline made its trigger
/// redo every task without a word. The trigger does not fire, and the log says why.
#[test]
fn a_trigger_does_not_redo_products_a_lost_store_knew_of() {
    let env = Env::new();
    env.write("watch.pipe", &watch_pipe("0s", "cat {inputs} > {out}/copy"));
    env.write("in/a.txt", "a\n");
    // What a run left before its store was lost.
    env.write("out/watch/count/a/copy", "a\n");
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("holds products of 1 task", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert!(runs(&env).is_empty(), "{}", daemon.log());
    assert!(daemon
        .log()
        .contains("its trigger does not fire until then"));
    drop(daemon);
}

impl Daemon {
    /// The address the API listens on, from the start line of the log.
    fn address(&self) -> String {
        let log = self.log();
        let start = log
            .find("listen=")
            .expect("the start line names the address")
            + 7;
        log[start..].split_whitespace().next().unwrap().to_string()
    }
}

/// The API token the daemon created in the state directory.
fn api_token(env: &Env) -> String {
    env.read(".engine/api-token").trim().to_string()
}

#[test]
fn the_api_of_a_running_daemon_triggers_validates_and_cancels() {
    let env = Env::new();
    env.write(
        "manual.pipe",
        r#"pipeline manual {
  param seconds: int = 0 in 0..120

  step wait {
    run "sleep {params.seconds}; echo done > {out}/done"
  }
}
"#,
    );
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    let address = daemon.address();
    let token = api_token(&env);
    let token = token.as_str();

    let (status, _) = http(&address, "GET", "/runs", None, "");
    assert_eq!(status, 401);
    let (status, _) = http(
        &address,
        "POST",
        "/pipelines/manual/trigger",
        Some("wrong"),
        "{}",
    );
    assert_eq!(status, 403);
    let (status, body) = http(
        &address,
        "POST",
        "/pipelines/nope/trigger",
        Some(token),
        "{}",
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = http(
        &address,
        "POST",
        "/pipelines/manual/trigger",
        Some(token),
        "{\"params\":",
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        &address,
        "POST",
        "/pipelines/manual/trigger",
        Some(token),
        r#"{"params": {"seconds": 500}}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("seconds") && body.contains("500"), "{body}");

    let (status, body) = http(
        &address,
        "POST",
        "/pipelines/manual/trigger",
        Some(token),
        r#"{"params": {"seconds": 60}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = run["run"].as_u64().unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        runs(&env).first().is_some_and(|r| r["status"] == "running")
    }));
    let (status, body) = http(
        &address,
        "POST",
        &format!("/runs/{id}/cancel"),
        Some(token),
        "",
    );
    assert_eq!(status, 202, "{body}");
    assert!(wait_for(Duration::from_secs(10), || {
        runs(&env)
            .first()
            .is_some_and(|r| r["status"] == "cancelled")
    }));
    let (status, body) = http(&address, "GET", &format!("/runs/{id}"), Some(token), "");
    assert_eq!(status, 200);
    let shown: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["tasks"][0]["status"], "cancelled");
    drop(daemon);
}

/// Issue 15.2: a run whose loop panicked stayed `running`, and its pipeline took no run again
/// until the daemon restarted. It ends failed, and the daemon goes on (this debug build panics
/// where `ENGINE_FAULT` says).
#[test]
fn a_run_that_panics_fails_and_the_daemon_goes_on() {
    let env = Env::new();
    env.write(
        "two.pipe",
        "pipeline boom {\n  step bad { run \"true\" }\n}\npipeline fine {\n  step good { run \"echo ok > {out}/ok\" }\n}\n",
    );
    let daemon = Daemon::start_with(&env, &[], &[("ENGINE_FAULT", "panic-deciding:bad")]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    let (address, token) = (daemon.address(), api_token(&env));
    for attempt in 1..=2 {
        let (status, body) = http(
            &address,
            "POST",
            "/pipelines/boom/trigger",
            Some(&token),
            "{}",
        );
        assert_eq!(status, 201, "attempt {attempt}: {body}\n{}", daemon.log());
        assert!(
            wait_for(Duration::from_secs(10), || {
                let all = runs(&env);
                all.len() == attempt && all.iter().all(|r| r["status"] == "failed")
            }),
            "{:?}\n{}",
            runs(&env),
            daemon.log()
        );
    }
    assert!(daemon.log().contains("fault injected"), "{}", daemon.log());
    let (status, body) = http(
        &address,
        "POST",
        "/pipelines/fine/trigger",
        Some(&token),
        "{}",
    );
    assert_eq!(status, 201, "{body}");
    assert!(wait_for(Duration::from_secs(10), || {
        runs(&env)
            .first()
            .is_some_and(|r| r["pipeline"] == "fine" && r["status"] == "succeeded")
    }));
    assert_eq!(daemon.stop(), 0);
}
