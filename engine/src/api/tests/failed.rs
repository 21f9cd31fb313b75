//! `GET /tasks/failed`: failed tasks not taken over since, with the last lines of their logs.

use super::fixtures::{add_attempt, add_run, add_task, append};
use super::TestServer;
use crate::store::{RunStatus, TaskStatus};

#[tokio::test]
async fn lists_failures_newest_first_with_their_log_tails() {
    let server = TestServer::start().await;
    let logs = server.dir.path().join("logs");
    let first = add_run(&server.store, "hello", RunStatus::Failed, "manual", 1);
    let old = add_task(&server.store, first.id, "count", TaskStatus::Failed);
    let other = add_run(&server.store, "other", RunStatus::Failed, "manual", 2);
    let failed = add_task(&server.store, other.id, "count", TaskStatus::Failed);
    let attempt = add_attempt(&server.store, failed.id, 1, &logs, None);
    append(&attempt.stderr, "reading\nno such file: a.txt\n");
    append(&attempt.stdout, "started\n");

    let json = server.get("/tasks/failed?lines=1").await.json();
    assert_eq!(json["total"], 2);
    let tasks = json["tasks"].as_array().unwrap();
    assert_eq!(tasks[0]["task"]["id"], failed.id);
    assert_eq!(tasks[0]["pipeline"], "other");
    assert_eq!(tasks[0]["run_status"], "failed");
    assert_eq!(tasks[0]["attempt"]["number"], 1);
    assert_eq!(
        tasks[0]["stderr_tail"],
        serde_json::json!(["no such file: a.txt"])
    );
    assert_eq!(tasks[0]["stdout_tail"], serde_json::json!(["started"]));
    assert_eq!(tasks[1]["task"]["id"], old.id);
    assert_eq!(tasks[1]["attempt"], serde_json::Value::Null);

    // A retry that succeeds takes the failure over.
    let retry = add_run(
        &server.store,
        "hello",
        RunStatus::Succeeded,
        "retry of 1",
        3,
    );
    add_task(&server.store, retry.id, "count", TaskStatus::Succeeded);
    let json = server.get("/tasks/failed").await.json();
    assert_eq!(json["total"], 1);
    let json = server.get("/tasks/failed?pipeline=hello").await.json();
    assert_eq!(json["total"], 0);
    let json = server
        .get("/tasks/failed?limit=1&pipeline=other")
        .await
        .json();
    assert_eq!(
        (json["total"].as_u64(), json["limit"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn bad_limits_are_400() {
    let server = TestServer::start().await;
    for query in ["limit=0", "limit=501", "lines=201", "lines=x"] {
        server
            .get(&format!("/tasks/failed?{query}"))
            .await
            .error(400);
    }
}
