//! The daemon's per-pipeline settings, end to end: `overlap` (skip, allow; queue is the default
//! the other daemon tests run with), `missed` for cron, and `notify` webhooks delivered to a
//! real HTTP receiver.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{finished_runs, runs, wait_for, Daemon};
use crate::support::Env;

/// Per-file copies, continuous with no cooldown; each task appends its group to `ran.log`.
fn overlap_pipe(overlap: &str, seconds: f64) -> String {
    format!(
        r#"pipeline watch {{
  trigger continuous cooldown 0s poll 1h
  overlap {overlap}

  source files {{
    root "in"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }}

  step copy each file {{
    input files
    run "sleep {seconds}; echo {{group.file}} >> ran.log; cp {{inputs}} {{out}}/"
  }}
}}
"#
    )
}

/// The groups that ran, one line per task that ran.
fn ran(env: &Env) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(env.path().join("ran.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn overlap_skip_drops_a_fire_that_finds_a_run_going() {
    let env = Env::new();
    env.write("watch.pipe", &overlap_pipe("skip", 1.5));
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));

    env.write("in/a.txt", "a\n");
    assert!(wait_for(Duration::from_secs(10), || runs(&env).len() == 1));
    env.write("in/b.txt", "b\n");
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 1));
    // With `queue` the fire for b would start a run now; with `skip` it is gone.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&env).len(), 1, "{}", daemon.log());
    assert!(daemon.log().contains("overlap skip"), "{}", daemon.log());

    // The next fire covers the whole gap: b, which was skipped, and c.
    env.write("in/c.txt", "c\n");
    assert!(wait_for(Duration::from_secs(15), || finished_runs(&env)
        .len()
        == 2));
    assert_eq!(ran(&env), ["a", "b", "c"]);
    assert!(runs(&env).iter().all(|r| r["status"] == "succeeded"));
    drop(daemon);
}

#[test]
fn overlap_allow_starts_a_run_at_once_and_runs_each_task_once() {
    let env = Env::new();
    env.write("watch.pipe", &overlap_pipe("allow", 2.0));
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));

    env.write("in/a.txt", "a\n");
    assert!(wait_for(Duration::from_secs(10), || {
        runs(&env).first().is_some_and(|r| r["status"] == "running")
    }));
    env.write("in/b.txt", "b\n");
    // A second run starts while the first is still going.
    assert!(
        wait_for(Duration::from_secs(10), || runs(&env).len() >= 2),
        "{}",
        daemon.log()
    );
    assert!(
        runs(&env)
            .iter()
            .any(|r| r["id"] == 1 && r["status"] == "running"),
        "the runs did not overlap: {:?}\n{}",
        runs(&env),
        daemon.log()
    );
    assert!(
        wait_for(Duration::from_secs(20), || {
            let all = runs(&env);
            all.len() >= 2 && all.iter().all(|r| r["status"] == "succeeded")
        }),
        "the runs did not both succeed: {:?}\n{}",
        runs(&env),
        daemon.log()
    );
    // a was being produced by run 1 when run 2 reached it: run 2 waited, then reused it.
    assert_eq!(ran(&env), ["a", "b"], "{}", daemon.log());
    let shown = env.engine(&["show", "2", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    let status_of = |group: &str| {
        shown["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["group"] == group)
            .map(|t| t["status"].clone())
    };
    assert_eq!(status_of("a"), Some("cached".into()));
    assert_eq!(status_of("b"), Some("succeeded".into()));
    assert_eq!(env.read("out/watch/copy/a/a.txt"), "a\n");
    assert_eq!(env.read("out/watch/copy/b/b.txt"), "b\n");
    drop(daemon);
}

#[test]
fn overlap_allow_leaves_a_going_runs_pending_tasks_to_it_and_waits_for_new_data_to_settle() {
    let env = Env::new();
    env.write(
        "watch.pipe",
        &overlap_pipe("allow", 1.0).replace("cooldown 0s", "cooldown 1s"),
    );
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &["--jobs", "1"]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));

    for name in ["a", "b", "c"] {
        env.write(&format!("in/{name}.txt"), &format!("{name}\n"));
    }
    assert!(wait_for(Duration::from_secs(10), || runs(&env).len() == 1));
    // Run 1 does a, then b and c, one at a time; d lands meanwhile.
    let landed = super::mtime_ms(&env.write("in/d.txt", "d\n"));
    assert!(
        wait_for(Duration::from_secs(20), || {
            let all = runs(&env);
            all.len() == 2 && all.iter().all(|r| r["status"] == "succeeded")
        }),
        "{:?}\n{}",
        runs(&env),
        daemon.log()
    );
    let second = runs(&env).into_iter().find(|r| r["id"] == 2).unwrap();
    assert!(
        second["created_ms"].as_u64().unwrap() >= landed + 1000,
        "run 2 fired within d's cooldown"
    );
    assert_eq!(ran(&env), ["a", "b", "c", "d"], "{}", daemon.log());
    let statuses = |run: &str| -> Vec<(String, String)> {
        let shown = env.engine(&["show", run, "--json"]);
        let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
        let mut tasks: Vec<(String, String)> = shown["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["group"].as_str().unwrap().to_string(),
                    t["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        tasks.sort();
        tasks
    };
    // Run 1 did what it planned; run 2 took none of it.
    let one = statuses("1");
    assert!(
        one.iter().all(|(_, status)| status == "succeeded"),
        "run 1: {one:?}"
    );
    let two = statuses("2");
    assert!(
        two.iter()
            .all(|(group, status)| (group == "d") == (status == "succeeded")),
        "run 2: {two:?}"
    );
    drop(daemon);
}

fn cron_pipe(missed: &str) -> String {
    format!(
        r#"pipeline tick {{
  trigger cron "* * * * * *" missed {missed}

  step stamp {{
    run "date +%s%N > {{out}}/at"
  }}
}}
"#
    )
}

#[test]
fn a_missed_cron_fire_runs_once_at_start_up_or_is_skipped() {
    let env = Env::new();
    env.write("tick.pipe", &cron_pipe("once"));
    let daemon = Daemon::start(&env, &[]);
    assert!(wait_for(Duration::from_secs(10), || !finished_runs(&env).is_empty()));
    assert_eq!(daemon.stop(), 0);

    // Down for more than a second: at least one fire was missed.
    std::thread::sleep(Duration::from_millis(1500));
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("running it once now", Duration::from_secs(10));
    assert_eq!(daemon.stop(), 0);

    env.write("tick.pipe", &cron_pipe("skip"));
    std::thread::sleep(Duration::from_millis(1500));
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("skipped (`missed skip`)", Duration::from_secs(10));
    assert!(!daemon.log().contains("running it once now"));
    drop(daemon);
}

/// A cron pipeline that fires at two seconds of each minute, the first `first` seconds from now
/// and the second `second` seconds from now; its one step takes `sleep` seconds.
fn cron_at(first: u64, second: u64, sleep: &str) -> String {
    let now = super::now_ms() / 1000;
    let (a, b) = ((now + first) % 60, (now + second) % 60);
    format!(
        r#"pipeline tick {{
  trigger cron "{a},{b} * * * * *"

  step stamp {{
    run "sleep {sleep}; date +%s%N > {{out}}/at"
  }}
}}
"#
    )
}

#[test]
fn each_cron_fire_is_one_run_through_reloads_and_restarts() {
    let env = Env::new();
    let fired_at = super::now_ms();
    env.write("tick.pipe", &cron_at(3, 8, "2"));
    let daemon = Daemon::start(&env, &[]);
    // The first fire, and an edit of its file while its run is going: the reload looks at the
    // pipeline, which is no fire.
    assert!(wait_for(Duration::from_secs(10), || runs(&env).len() == 1));
    let edited = std::fs::read_to_string(env.path().join("tick.pipe"))
        .unwrap()
        .replace("sleep 2;", "sleep 2.1;");
    env.write("tick.pipe", &edited);
    assert!(wait_for(Duration::from_secs(5), || daemon
        .log()
        .matches("pipeline loaded")
        .count()
        == 2));
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 1));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&env).len(), 1, "{}", daemon.log());
    assert_eq!(daemon.stop(), 0);

    // Down over the second fire: it is run once at start-up, and once only.
    let missed = fired_at + 8000 + 500;
    std::thread::sleep(Duration::from_millis(
        missed.saturating_sub(super::now_ms()),
    ));
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("running it once now", Duration::from_secs(10));
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 2));
    std::thread::sleep(Duration::from_millis(1500));
    let all = runs(&env);
    assert_eq!(all.len(), 2, "{all:?}\n{}", daemon.log());
    assert!(all.iter().all(|r| r["trigger"] == "cron"));
    drop(daemon);
}

/// What a webhook receiver was sent: (path, JSON body).
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// One HTTP request as a webhook receiver reads it.
struct Request {
    path: String,
    /// By lower-case name.
    headers: std::collections::HashMap<String, String>,
    body: Vec<u8>,
}

/// Reads one request from `stream`; `None` if the client went away before its request line.
fn read_request(stream: &std::net::TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = std::collections::HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length = headers
        .get("content-length")
        .map_or(0, |l| l.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Some(Request {
        path,
        headers,
        body,
    })
}

/// An HTTP receiver on a free port that answers 500 to the first request and 200 after.
fn receiver() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let seen = received.clone();
    std::thread::spawn(move || {
        let mut answered = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(request) = read_request(&stream) else {
                continue;
            };
            answered += 1;
            let status = if answered == 1 {
                "500 Internal Server Error"
            } else {
                let body = serde_json::from_slice(&request.body).unwrap();
                seen.lock().unwrap().push((request.path, body));
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, received)
}

#[test]
fn webhooks_tell_of_success_and_failure_and_a_dead_receiver_delays_nothing() {
    let env = Env::new();
    let (port, received) = receiver();
    // A receiver that accepts connections and never answers.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    env.write(
        "hooks.pipe",
        &format!(
            r#"pipeline hooks {{
  trigger continuous cooldown 0s poll 1h
  notify "http://127.0.0.1:{dead_port}/never" on failure
  notify "http://127.0.0.1:{port}/failures" on failure
  notify "http://127.0.0.1:{port}/all"

  source files {{
    root "in"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }}

  step check each file {{
    input files
    run "grep -q ok {{inputs}} && cp {{inputs}} {{out}}/"
  }}
}}
"#
        ),
    );
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(
        &env,
        &[
            "--webhook-backoff",
            "0.2",
            "--webhook-timeout",
            "1",
            "--webhook-attempts",
            "3",
        ],
    );
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));

    env.write("in/good.txt", "ok\n");
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 1));
    env.write("in/bad.txt", "no\n");
    // The second run is not held up by the dead receiver of the first.
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 2));

    assert!(
        wait_for(Duration::from_secs(10), || received.lock().unwrap().len()
            == 3),
        "{:?}\n{}",
        received.lock().unwrap(),
        daemon.log()
    );
    let received = received.lock().unwrap().clone();
    let by_run = |path: &str, run: u64| {
        received
            .iter()
            .find(|(p, body)| p == path && body["run"] == run)
            .map(|(_, body)| body.clone())
    };
    let success = by_run("/all", 1).expect("run 1 told to /all");
    assert_eq!(success["status"], "succeeded");
    assert_eq!(success["pipeline"], "hooks");
    assert_eq!(success["failed_tasks"], serde_json::json!([]));
    assert!(by_run("/failures", 1).is_none(), "a success is no failure");

    let failure = by_run("/failures", 2).expect("run 2 told to /failures");
    assert_eq!(failure["status"], "failed");
    let failed = &failure["failed_tasks"][0];
    assert_eq!(failed["step"], "check");
    assert_eq!(failed["group"], "bad");
    assert_eq!(failed["exit_code"], 1);
    let link = failure["link"].as_str().unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:") && link.ends_with("/runs/2"),
        "{link}"
    );
    assert!(failed["logs"].as_str().unwrap().contains("/runs/2/tasks/"));
    assert_eq!(by_run("/all", 2).unwrap()["status"], "failed");

    // The first request got a 500 and was retried; the dead receiver was given up on.
    daemon.wait_log("webhook not delivered; retrying", Duration::from_secs(1));
    daemon.wait_log("giving up", Duration::from_secs(10));
    // A webhook URL's path may hold a secret: the log names the receiver by its host only.
    assert!(!daemon.log().contains("/never"), "{}", daemon.log());
    drop(dead);
    drop(daemon);
}

/// One request a webhook receiver got: the delivery's id, the attempt's number, when.
#[derive(Debug, Clone)]
struct Attempt {
    delivery: String,
    number: u32,
    at: std::time::Instant,
    taken: bool,
}

/// An HTTP receiver on a free port that answers 503 until `accept` is set, then 200.
fn switchable_receiver() -> (
    u16,
    Arc<std::sync::atomic::AtomicBool>,
    Arc<Mutex<Vec<Attempt>>>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accept = Arc::new(AtomicBool::new(false));
    let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let (accepting, seen) = (accept.clone(), attempts.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(request) = read_request(&stream) else {
                continue;
            };
            let header = |name: &str| request.headers.get(name).cloned().unwrap_or_default();
            let delivery = header("x-engine-delivery");
            let number = header("x-engine-attempt").parse().unwrap_or(0);
            let taken = accepting.load(Ordering::SeqCst);
            seen.lock().unwrap().push(Attempt {
                delivery,
                number,
                at: std::time::Instant::now(),
                taken,
            });
            let status = if taken {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, accept, attempts)
}

#[test]
fn a_webhook_pending_when_the_daemon_is_killed_is_delivered_after_it_starts_again() {
    let env = Env::new();
    let (port, accept, attempts) = switchable_receiver();
    env.write(
        "hooks.pipe",
        &format!(
            r#"pipeline hooks {{
  trigger continuous cooldown 0s poll 1h
  notify "http://127.0.0.1:{port}/failures" on failure

  source files {{
    root "in"
    glob "*.txt"
  }}

  step check {{
    input files
    run "grep -q ok {{inputs}}"
  }}
}}
"#
        ),
    );
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let flags = ["--webhook-backoff", "2", "--webhook-attempts", "4"];
    let daemon = Daemon::start(&env, &flags);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    env.write("in/bad.txt", "no\n");
    assert!(
        wait_for(Duration::from_secs(10), || !attempts
            .lock()
            .unwrap()
            .is_empty()),
        "{}",
        daemon.log()
    );
    // Killed during the backoff after the first attempt was refused.
    drop(daemon);
    accept.store(true, std::sync::atomic::Ordering::SeqCst);

    let daemon = Daemon::start(&env, &flags);
    let of_run_1 = || -> Vec<Attempt> {
        let attempts = attempts.lock().unwrap();
        attempts
            .iter()
            .filter(|a| a.delivery == "1-0")
            .cloned()
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(15), || of_run_1()
            .iter()
            .any(|a| a.taken)),
        "{:?}\n{}",
        of_run_1(),
        daemon.log()
    );
    // Time for a wrong second delivery to show up.
    std::thread::sleep(Duration::from_millis(500));
    let attempts = of_run_1();
    let numbers: Vec<(String, u32, bool)> = attempts
        .iter()
        .map(|a| (a.delivery.clone(), a.number, a.taken))
        .collect();
    // The same delivery, its attempt 1 never made again, and taken once.
    assert_eq!(
        numbers,
        [("1-0".to_string(), 1, false), ("1-0".to_string(), 2, true)],
        "{}",
        daemon.log()
    );
    // The backoff after attempt 1 was kept through the restart.
    let gap = attempts[1].at - attempts[0].at;
    assert!(gap >= Duration::from_millis(1900), "{gap:?}");
    drop(daemon);
}

/// The status of each task of `run`, by group.
fn statuses(env: &Env, run: u64) -> Vec<(String, String)> {
    let shown = env.engine(&["show", &run.to_string(), "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    let mut out: Vec<(String, String)> = shown["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let group = t["group"].as_str().unwrap_or("").to_string();
            (
                format!("{}/{group}", t["step"].as_str().unwrap()),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_failed_group_is_left_for_a_person_until_it_is_retried_or_its_inputs_change() {
    let env = Env::new();
    env.write(
        "samples.pipe",
        r#"pipeline samples {
  trigger continuous cooldown 0s poll 300ms

  source files {
    root "in"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }

  step check each file {
    input files
    retries 1
    backoff fixed 100ms
    run "grep -q ok {inputs} && cp {inputs} {out}/"
  }

  step report each file {
    input check
    run "cat {inputs} > {out}/report"
  }
}
"#,
    );
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    env.write("in/bad.txt", "no\n");
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 1));
    assert_eq!(finished_runs(&env)[0]["status"], "failed");

    // Polls come and go: the failed group is not run again.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(&env).len(), 1, "{}", daemon.log());
    // The daemon's gap and `engine plan` say why.
    let (code, body) = crate::support::http(
        &daemon.address(),
        "GET",
        "/pipelines/samples/gap",
        Some(&super::api_token(&env)),
        "",
    );
    assert_eq!(code, 200, "{body}");
    let gap: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        gap["gap"],
        serde_json::json!([
            {"step": "check", "tasks": 0, "held": 1},
            {"step": "report", "tasks": 0, "held": 1},
        ])
    );
    let planned = env.engine(&["plan", "samples.pipe"]);
    assert!(
        planned.stdout.contains("failed after its retries in run 1"),
        "{}",
        planned.stdout
    );

    // New data elsewhere runs; the failed group is held in that run, which succeeds.
    env.write("in/good.txt", "ok\n");
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 2));
    assert_eq!(finished_runs(&env)[0]["status"], "succeeded");
    assert_eq!(
        statuses(&env, 2),
        [
            ("check/bad".to_string(), "held".to_string()),
            ("check/good".to_string(), "succeeded".to_string()),
            ("report/bad".to_string(), "held".to_string()),
            ("report/good".to_string(), "succeeded".to_string()),
        ]
    );

    // Someone retries it: it runs (and fails again, the data being what it is).
    let retried = env.engine(&["retry", "1"]);
    assert_eq!(retried.code, 1, "{}", retried.stderr);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(runs(&env).len(), 3, "{}", daemon.log());
    assert_eq!(runs(&env)[0]["trigger"], "retry of 1");

    // Its input changes: the trigger runs it.
    std::thread::sleep(Duration::from_millis(20));
    env.write("in/bad.txt", "ok now\n");
    assert!(wait_for(Duration::from_secs(10), || finished_runs(&env)
        .len()
        == 4));
    assert_eq!(finished_runs(&env)[0]["status"], "succeeded");
    assert_eq!(env.read("out/samples/report/bad/report"), "ok now\n");
    drop(daemon);
}
