//! The HTTP API of a real daemon: retry, rerun from a step and resume make the runs the CLI's
//! `retry`, `rerun --from` and `resume` make, and a running task's log is streamed as server-sent
//! events line by line, as it is written.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::{api_token, http, runs, wait_for, Daemon};
use crate::support::Env;

const PIPE: &str = r#"pipeline fix {
  param hold: string = "none"

  source files {
    root "in"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }

  # Each file must say ok. `hold` names a file to wait for, to keep a task running.
  step check each file {
    input files
    run "echo {group.file} >> ran.log; while [ {params.hold} != none ] && [ ! -e {params.hold} ]; do sleep 0.1; done; grep -q ok {inputs} && cp {inputs} {out}/"
  }

  step total {
    input check
    run "echo total >> ran.log; cat {inputs} > {out}/all.txt"
  }
}
"#;

struct Api {
    address: String,
    token: String,
}

impl Api {
    /// POSTs and returns the new run's id, asserting the status.
    fn post(&self, path: &str, body: &str, status: u16) -> serde_json::Value {
        let (code, text) = http(&self.address, "POST", path, Some(&self.token), body);
        assert_eq!(code, status, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn run(&self, id: u64) -> serde_json::Value {
        let (code, text) = http(
            &self.address,
            "GET",
            &format!("/runs/{id}"),
            Some(&self.token),
            "",
        );
        assert_eq!(code, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    fn wait_finished(&self, id: u64) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let finished = wait_for(Duration::from_secs(20), || {
            last = self.run(id);
            !matches!(last["run"]["status"].as_str(), Some("queued" | "running"))
        });
        assert!(finished, "run {id} did not finish: {last}");
        last
    }
}

/// The lines of `ran.log` since the last call.
fn ran_since(env: &Env, seen: &mut usize) -> Vec<String> {
    let text = std::fs::read_to_string(env.path().join("ran.log")).unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut new = lines[*seen..].to_vec();
    *seen = lines.len();
    new.sort();
    new
}

fn status_of(run: &serde_json::Value, step: &str, group: Option<&str>) -> String {
    run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["step"] == step && t["group"].as_str() == group)
        .map(|t| t["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no task {step} {group:?} in {run}"))
}

#[test]
fn retry_rerun_and_resume_over_http_do_what_the_cli_does() {
    let env = Env::new();
    env.write("fix.pipe", PIPE);
    env.write("in/a.txt", "ok a\n");
    env.write("in/b.txt", "not yet\n");
    let daemon = Daemon::start(&env, &["--jobs", "4"]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    let api = Api {
        address: daemon.address(),
        token: api_token(&env),
    };
    let mut seen = 0;

    // b fails, so total is blocked.
    let first = api.post("/pipelines/fix/trigger", "{}", 201)["run"]
        .as_u64()
        .unwrap();
    let run = api.wait_finished(first);
    assert_eq!(run["run"]["status"], "failed");
    assert_eq!(status_of(&run, "check", Some("b")), "failed");
    assert_eq!(ran_since(&env, &mut seen), ["a", "b"]);

    // Retry after fixing b: only b runs again, then total.
    env.write("in/b.txt", "ok b\n");
    let retried = api.post(&format!("/runs/{first}/retry"), "", 201)["run"]
        .as_u64()
        .unwrap();
    let run = api.wait_finished(retried);
    assert_eq!(run["run"]["status"], "succeeded", "{run}");
    assert_eq!(run["run"]["trigger"], format!("retry of {first}"));
    assert_eq!(ran_since(&env, &mut seen), ["b", "total"]);
    assert_eq!(env.read("out/fix/total/_all/all.txt"), "ok a\nok b\n");

    // Rerun from total: total runs again although cached; check does not.
    let rerun = api.post(
        &format!("/runs/{retried}/rerun"),
        r#"{"from": "total"}"#,
        201,
    )["run"]
        .as_u64()
        .unwrap();
    let run = api.wait_finished(rerun);
    assert_eq!(run["run"]["status"], "succeeded");
    assert_eq!(status_of(&run, "check", Some("a")), "cached");
    assert_eq!(status_of(&run, "total", None), "succeeded");
    assert_eq!(ran_since(&env, &mut seen), ["total"]);
    let (code, body) = http(
        &api.address,
        "POST",
        &format!("/runs/{rerun}/rerun"),
        Some(&api.token),
        r#"{"from": "nope"}"#,
    );
    assert_eq!(code, 404, "{body}");

    // A run cancelled while its tasks wait (`hold` is in their command, so all three run anew),
    // then resumed with the same params: the cancelled tasks run again, and total after them.
    env.write("in/c.txt", "ok c\n");
    let held = api.post(
        "/pipelines/fix/trigger",
        r#"{"params": {"hold": "release"}}"#,
        201,
    )["run"]
        .as_u64()
        .unwrap();
    let before = seen;
    assert!(wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(env.path().join("ran.log"))
            .is_ok_and(|t| t.lines().count() == before + 3)
    }));
    api.post(&format!("/runs/{held}/cancel"), "", 202);
    let run = api.wait_finished(held);
    assert_eq!(run["run"]["status"], "cancelled");
    assert_eq!(status_of(&run, "total", None), "cancelled");
    assert_eq!(ran_since(&env, &mut seen), ["a", "b", "c"]);
    env.write("release", "");
    let resumed = api.post(&format!("/runs/{held}/resume"), "", 201)["run"]
        .as_u64()
        .unwrap();
    let run = api.wait_finished(resumed);
    assert_eq!(run["run"]["status"], "succeeded", "{run}");
    assert_eq!(
        run["run"]["params"]["hold"]["value"], "release",
        "a resumed run keeps its params: {run}"
    );
    assert_eq!(ran_since(&env, &mut seen), ["a", "b", "c", "total"]);
    assert_eq!(env.read("out/fix/total/_all/all.txt"), "ok a\nok b\nok c\n");
    assert_eq!(runs(&env).len(), 5);
    drop(daemon);
}

#[test]
fn a_running_tasks_log_streams_line_by_line_as_it_is_written() {
    let env = Env::new();
    env.write(
        "talk.pipe",
        r#"pipeline talk {
  step speak {
    run "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second"
  }
}
"#,
    );
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    let address = daemon.address();
    let token = api_token(&env);
    let (code, body) = http(
        &address,
        "POST",
        "/pipelines/talk/trigger",
        Some(&token),
        "{}",
    );
    assert_eq!(code, 201, "{body}");
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    let run = run["run"].as_u64().unwrap();
    let mut task = None;
    assert!(wait_for(Duration::from_secs(10), || {
        let (_, body) = http(&address, "GET", &format!("/runs/{run}"), Some(&token), "");
        let shown: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        task = shown["tasks"][0]["id"].as_u64();
        shown["tasks"][0]["status"] == "running"
    }));

    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /runs/{run}/tasks/{}/logs HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
        task.unwrap()
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = String::new();
    let mut read_until = |text: &str, received: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buffer = [0u8; 4096];
        while !received.contains(text) && Instant::now() < deadline {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => received.push_str(&String::from_utf8_lossy(&buffer[..n])),
                Err(_) => break,
            }
        }
        assert!(received.contains(text), "no `{text}` in:\n{received}");
    };
    // The first line comes while the task is still running: it waits for `go`.
    read_until("data: first", &mut received);
    assert!(received.contains("text/event-stream"), "{received}");
    assert!(!received.contains("second"));
    env.write("go", "");
    read_until("data: second", &mut received);
    read_until("event: end", &mut received);
    assert!(received.contains(r#""status":"succeeded""#), "{received}");
    drop(daemon);
}

/// Issue 15.0: clients that leave before their answers are written (a closed browser tab) made
/// the daemon die of SIGPIPE after some 100 connections.
#[test]
fn clients_that_hang_up_mid_answer_do_not_kill_the_daemon() {
    let env = Env::new();
    std::fs::create_dir_all(env.path().join("in")).unwrap();
    let mut daemon = Daemon::start(&env, &[]);
    let address = daemon.address();
    let pipelined = "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20);
    let unauthorised =
        "POST /runs/1/cancel HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".repeat(20);
    for round in 0..300 {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let requests = if round % 2 == 0 {
            &pipelined
        } else {
            &unauthorised
        };
        // The daemon may close first when it has answered: that is fine too.
        let _ = stream.write_all(requests.as_bytes());
        drop(stream);
    }
    let alive = daemon.child.as_mut().unwrap().try_wait().unwrap().is_none();
    assert!(alive, "the daemon died:\n{}", daemon.log());
    let reply = http(&address, "GET", "/healthz", None, "");
    assert_eq!(reply.0, 200, "{}", daemon.log());
    assert_eq!(daemon.stop(), 0);
}

/// Issue 16.1: the server held 256 connections and kept a slow client for 30 s: 300 slowloris
/// connections made a `GET /healthz` wait 28.5 s, and 2,000 log followers left most clients
/// unable to connect. With 1,000 slow clients and 2,000 followers held open, `/healthz` and the
/// page still answer at once.
#[test]
fn slow_clients_and_thousands_of_followers_do_not_starve_anyone() {
    use std::net::TcpStream;
    let env = Env::new();
    env.write(
        "long.pipe",
        "pipeline long {\n  step wait { run \"echo started; sleep 120\" }\n}\n",
    );
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    let (address, token) = (daemon.address(), api_token(&env));
    let (code, body) = http(
        &address,
        "POST",
        "/pipelines/long/trigger",
        Some(&token),
        "",
    );
    assert_eq!(code, 201, "{body}");
    assert!(wait_for(Duration::from_secs(20), || runs(&env)
        .first()
        .is_some_and(|r| r["status"] == "running")));

    // Slow clients: a request line and never the end of the headers.
    let mut held = Vec::new();
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .write_all(b"GET /runs HTTP/1.1\r\nHost: localhost\r\n")
            .unwrap();
        held.push(stream);
    }
    // Followers of the running task's log, each once its stream has begun.
    let request = format!(
        "GET /runs/1/tasks/1/logs?follow=1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    for n in 0..2000 {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut first = [0u8; 12];
        stream
            .read_exact(&mut first)
            .unwrap_or_else(|e| panic!("follower {n} got no answer: {e}"));
        assert_eq!(&first, b"HTTP/1.1 200", "follower {n}");
        held.push(stream);
    }

    for path in ["/healthz", "/", "/healthz"] {
        let asked = Instant::now();
        let (code, _) = http(&address, "GET", path, None, "");
        let took = asked.elapsed();
        assert_eq!(code, 200, "{path}");
        assert!(took < Duration::from_secs(2), "{path} took {took:?}");
    }
    drop(held);
    let _ = http(&address, "POST", "/runs/1/cancel", Some(&token), "");
    drop(daemon);
}
