//! The daemon-wide pause of new task starts, over the real daemon's API: a running task goes
//! on, nothing new starts until starts resume, and `/queue` and `/metrics` say so.

use std::time::Duration;

use super::{api_token, http, wait_for, Daemon};
use crate::support::Env;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn a_paused_daemon_lets_running_tasks_finish_and_starts_nothing_until_resumed() {
    let env = Env::new();
    env.write(
        "paced.pipe",
        r#"pipeline paced {
  step slow {
    run "sleep 1; echo slow > {out}/slow"
  }

  step next {
    after slow
    run "echo next > {out}/next"
  }
}
"#,
    );
    let daemon = Daemon::start(&env, &[]);
    daemon.wait_log("pipeline loaded", Duration::from_secs(10));
    let address = daemon.address();
    let token = api_token(&env);
    let token = token.as_str();
    let get = |path: &str| {
        let (status, body) = http(&address, "GET", path, Some(token), "");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    };
    let post = |path: &str| {
        let (status, body) = http(&address, "POST", path, Some(token), "");
        assert!((200..300).contains(&status), "POST {path}: {status} {body}");
        json(&body)
    };
    // The status of the run's task of `step`; empty before the run has planned its tasks.
    let task_status = |run: u64, step: &str| {
        let shown = json(&get(&format!("/runs/{run}")));
        shown["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["step"] == step)
            .and_then(|t| t["status"].as_str())
            .unwrap_or("")
            .to_string()
    };

    let (status, _) = http(&address, "POST", "/queue/pause", None, "");
    assert_eq!(status, 401, "pausing needs the token");

    let run = post("/pipelines/paced/trigger")["run"].as_u64().unwrap();
    assert!(wait_for(Duration::from_secs(10), || task_status(
        run, "slow"
    ) == "running"));
    assert_eq!(
        post("/queue/pause"),
        serde_json::json!({"paused": true, "changed": true})
    );
    assert!(get("/metrics")
        .lines()
        .any(|l| l == "engine_queue_paused 1"));
    let queue = json(&get("/queue"));
    assert_eq!(queue["paused"], true);
    assert_eq!(queue["running"][0]["step"], "slow", "{queue}");
    assert_eq!(queue["waiting"][0]["step"], "next", "{queue}");

    // The running task goes on; the next one does not start.
    assert!(wait_for(Duration::from_secs(10), || task_status(
        run, "slow"
    ) == "succeeded"));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(task_status(run, "next"), "pending");
    assert_eq!(
        json(&get(&format!("/runs/{run}")))["run"]["status"],
        "running"
    );

    assert_eq!(post("/queue/resume")["changed"], true);
    assert!(wait_for(Duration::from_secs(10), || {
        json(&get(&format!("/runs/{run}")))["run"]["status"] == "succeeded"
    }));
    assert_eq!(task_status(run, "next"), "succeeded");
    assert!(get("/metrics")
        .lines()
        .any(|l| l == "engine_queue_paused 0"));
    assert_eq!(json(&get("/queue"))["paused"], false);
    drop(daemon);
}
