//! `GET /runs` and `GET /runs/{id}`.

use super::fixtures::{add_attempt, add_run, add_task};
use super::TestServer;
use crate::store::{RunStatus, TaskStatus};

fn ids(json: &serde_json::Value) -> Vec<u64> {
    json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn lists_runs_newest_first_filtered_and_paged() {
    let server = TestServer::start().await;
    for (i, (pipeline, status, trigger)) in [
        ("hello", RunStatus::Succeeded, "manual"),
        ("hello", RunStatus::Failed, "cron"),
        ("other", RunStatus::Succeeded, "continuous"),
        ("hello", RunStatus::Running, "cron"),
    ]
    .into_iter()
    .enumerate()
    {
        add_run(
            &server.store,
            pipeline,
            status,
            trigger,
            1000 * (i as u64 + 1),
        );
    }
    let json = server.get("/runs").await.json();
    assert_eq!(ids(&json), [4, 3, 2, 1]);
    assert_eq!(
        (json["total"].as_u64(), json["limit"].as_u64()),
        (Some(4), Some(50))
    );
    assert_eq!(json["runs"][0]["pipeline"], "hello");
    assert_eq!(json["runs"][0]["status"], "running");

    let json = server.get("/runs?pipeline=hello&label=cron").await.json();
    assert_eq!(ids(&json), [4, 2]);
    let json = server.get("/runs?status=succeeded").await.json();
    assert_eq!(ids(&json), [3, 1]);
    let json = server.get("/runs?since=2000&until=4000").await.json();
    assert_eq!(ids(&json), [3, 2]);

    let first = server.get("/runs?limit=3").await.json();
    assert_eq!(
        (ids(&first), first["next_before"].as_u64()),
        (vec![4, 3, 2], Some(2))
    );
    let next = server.get("/runs?limit=3&before=2").await.json();
    assert_eq!((ids(&next), next["next_before"].as_u64()), (vec![1], None));
    assert_eq!(next["total"], 4);
    let json = server.get("/runs?limit=2&offset=1").await.json();
    assert_eq!(ids(&json), [3, 2]);
}

#[tokio::test]
async fn bad_run_queries_are_400() {
    let server = TestServer::start().await;
    let reply = server.get("/runs?status=finished").await;
    assert!(reply
        .error(400)
        .starts_with("query parameter `status`: no status `finished`"));
    let reply = server.get("/runs?limit=1000").await;
    assert_eq!(
        reply.error(400),
        "query parameter `limit`: 1000 is not between 1 and 500"
    );
    server.get("/runs?since=now").await.error(400);
}

#[tokio::test]
async fn a_run_comes_with_its_tasks_and_attempts_as_show_prints_them() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Failed, "manual", 1);
    let task = add_task(&server.store, run.id, "count", TaskStatus::Failed);
    let logs = server.dir.path().join("logs");
    add_attempt(&server.store, task.id, 1, &logs, Some(1500));
    add_attempt(&server.store, task.id, 2, &logs, Some(700));
    let reply = server.get(&format!("/runs/{}", run.id)).await;
    assert_eq!(reply.status, 200);
    let json = reply.json();
    let expected = crate::inspect::run_detail(&server.store, run.id).unwrap();
    assert_eq!(json, serde_json::to_value(&expected).unwrap());
    assert_eq!(json["run"]["id"], run.id);
    assert_eq!(json["tasks"][0]["step"], "count");
    assert_eq!(json["tasks"][0]["attempts"], 2);
    assert_eq!(json["tasks"][0]["attempts_detail"][1]["wall_ms"], 700);
    assert_eq!(server.get("/runs/99").await.error(404), "no run 99");
}
