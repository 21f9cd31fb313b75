//! `GET /metrics`: the Prometheus text format, from the store and the daemon.

use super::fixtures::{add_attempt, add_run, add_task};
use super::TestServer;
use crate::store::{RunStatus, TaskStatus};

#[tokio::test]
async fn counts_runs_and_tasks_and_times_attempts() {
    let server = TestServer::start().await;
    let logs = server.dir.path().join("logs");
    let ok = add_run(&server.store, "hello", RunStatus::Succeeded, "manual", 5000);
    add_run(&server.store, "hello", RunStatus::Failed, "cron", 6000);
    add_run(
        &server.store,
        "say \"hi\"",
        RunStatus::Running,
        "manual",
        7000,
    );
    let done = add_task(&server.store, ok.id, "count", TaskStatus::Succeeded);
    add_task(&server.store, ok.id, "total", TaskStatus::Cached);
    add_attempt(&server.store, done.id, 1, &logs, Some(300));
    add_attempt(&server.store, done.id, 2, &logs, Some(2500));
    add_attempt(&server.store, done.id, 3, &logs, None);

    let reply = server.get("/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = reply.body;
    for line in [
        "# TYPE engine_runs gauge",
        "engine_runs{pipeline=\"hello\",status=\"succeeded\"} 1",
        "engine_runs{pipeline=\"hello\",status=\"failed\"} 1",
        "engine_runs{pipeline=\"hello\",status=\"queued\"} 0",
        "engine_runs{pipeline=\"say \\\"hi\\\"\",status=\"running\"} 1",
        "engine_tasks{pipeline=\"hello\",status=\"succeeded\"} 1",
        "engine_tasks{pipeline=\"hello\",status=\"cached\"} 1",
        "engine_queue_depth 3",
        "# TYPE engine_task_duration_seconds histogram",
        "engine_task_duration_seconds_bucket{pipeline=\"hello\",le=\"0.1\"} 0",
        "engine_task_duration_seconds_bucket{pipeline=\"hello\",le=\"0.5\"} 1",
        "engine_task_duration_seconds_bucket{pipeline=\"hello\",le=\"5\"} 2",
        "engine_task_duration_seconds_bucket{pipeline=\"hello\",le=\"+Inf\"} 2",
        "engine_task_duration_seconds_sum{pipeline=\"hello\"} 2.8",
        "engine_task_duration_seconds_count{pipeline=\"hello\"} 2",
        "engine_gap_tasks{pipeline=\"hello\",step=\"count\"} 2",
        "engine_gap_tasks{pipeline=\"hello\",step=\"total\"} 1",
        "engine_last_success_timestamp_seconds{pipeline=\"hello\"} 5.5",
        "engine_load_errors 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line `{line}` in:\n{text}"
        );
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
    }
}
