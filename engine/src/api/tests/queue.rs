//! `GET /queue`, `POST /queue/pause`, `POST /queue/resume`.

use hyper::Method;

use super::fixtures::{add_attempt, add_run, add_task};
use super::TestServer;
use crate::store::{RunStatus, TaskStatus};

#[tokio::test]
async fn the_queue_lists_running_and_waiting_tasks_of_live_runs() {
    let server = TestServer::start().await;
    let logs = server.dir.path().join("logs");
    let done = add_run(&server.store, "hello", RunStatus::Succeeded, "manual", 1);
    add_task(&server.store, done.id, "count", TaskStatus::Succeeded);
    let live = add_run(&server.store, "hello", RunStatus::Running, "manual", 2);
    let running = add_task(&server.store, live.id, "count", TaskStatus::Running);
    add_attempt(&server.store, running.id, 1, &logs, None);
    let waiting = add_task(&server.store, live.id, "total", TaskStatus::Pending);
    add_task(&server.store, live.id, "count", TaskStatus::Cached);

    let json = server.get("/queue").await.json();
    assert_eq!(json["paused"], false);
    assert_eq!(json["running"].as_array().unwrap().len(), 1);
    assert_eq!(json["running"][0]["task"], running.id);
    assert_eq!(json["running"][0]["pipeline"], "hello");
    assert_eq!(json["running"][0]["attempts"], 1);
    assert!(json["running"][0]["started_ms"].as_u64().is_some());
    assert_eq!(json["waiting"].as_array().unwrap().len(), 1);
    assert_eq!(json["waiting"][0]["task"], waiting.id);
    assert_eq!(json["waiting"][0]["status"], "pending");
}

#[tokio::test]
async fn pausing_new_task_starts_is_shown_in_the_queue_and_the_metrics() {
    let server = TestServer::public_reads().await;
    let reply = server
        .request(Method::POST, "/queue/pause", None, &[], None)
        .await;
    reply.error(401);
    let reply = server.post("/queue/pause", "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        serde_json::json!({"paused": true, "changed": true})
    );
    assert_eq!(
        server.post("/queue/pause", "").await.json()["changed"],
        false
    );
    assert_eq!(server.get("/queue").await.json()["paused"], true);
    let metrics = server.get("/metrics").await.body;
    assert!(
        metrics.lines().any(|l| l == "engine_queue_paused 1"),
        "{metrics}"
    );
    let reply = server.post("/queue/resume", "").await;
    assert_eq!(
        reply.json(),
        serde_json::json!({"paused": false, "changed": true})
    );
    assert_eq!(server.get("/queue").await.json()["paused"], false);
    assert_eq!(
        server.control.calls(),
        ["paused true", "paused true", "paused false"]
    );
    server.get("/queue/pause").await.error(405);
}
