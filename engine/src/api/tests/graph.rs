//! `GET /pipelines/{name}/graph` and `GET /runs/{id}/graph`.

use super::fixtures::{add_run, add_task, set_task_status};
use super::TestServer;
use crate::store::{InputRef, RunStatus, TaskStatus};

#[tokio::test]
async fn a_pipeline_graph_lists_nodes_and_edges() {
    let server = TestServer::start().await;
    let reply = server.get("/pipelines/hello/graph").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    let names: Vec<&str> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["texts", "count", "total"]);
    assert_eq!(json["nodes"][1]["each"], "file");
    assert_eq!(json["edges"][1]["from"], "count");
    assert_eq!(json["edges"][1]["to"], "total");
    assert_eq!(
        server.get("/pipelines/nope/graph").await.error(404),
        "no pipeline named `nope`"
    );
}

#[tokio::test]
async fn a_run_graph_counts_each_steps_tasks_and_sums_up_its_state() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Running, "manual", 1);
    add_task(&server.store, run.id, "count", TaskStatus::Succeeded);
    add_task(&server.store, run.id, "count", TaskStatus::Running);
    add_task(&server.store, run.id, "total", TaskStatus::Pending);
    // A step the definition no longer has.
    add_task(&server.store, run.id, "old", TaskStatus::Cached);

    let reply = server.get(&format!("/runs/{}/graph", run.id)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["drawn_from"], "definition");
    let nodes = json["nodes"].as_array().unwrap();
    let node = |name: &str| nodes.iter().find(|n| n["name"] == name).unwrap().clone();
    assert_eq!(node("texts")["state"], serde_json::Value::Null);
    assert_eq!(node("count")["state"], "running");
    assert_eq!(node("count")["tasks"]["succeeded"], 1);
    assert_eq!(node("count")["tasks"]["running"], 1);
    assert_eq!(node("total")["state"], "pending");
    assert_eq!(node("old")["state"], "cached");
    assert_eq!(json["edges"].as_array().unwrap().len(), 2);

    assert_eq!(server.get("/runs/99/graph").await.error(404), "no run 99");
    server.get("/runs/x/graph").await.error(400);
}

#[tokio::test]
async fn the_graph_of_a_pipeline_no_longer_loaded_comes_from_its_tasks() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "gone", RunStatus::Failed, "manual", 1);
    let first = add_task(&server.store, run.id, "fetch", TaskStatus::Succeeded);
    let second = add_task(&server.store, run.id, "sum", TaskStatus::Failed);
    let input = |from: &str, task: Option<u64>| InputRef {
        from: from.into(),
        name: "x".into(),
        path: "/w/x".into(),
        hash: "h".into(),
        task,
    };
    server
        .store
        .write(|tx| {
            let mut record = tx.task(first.id)?;
            record.inputs = vec![input("raw", None)];
            tx.put_task_same_status(&record)?;
            let mut record = tx.task(second.id)?;
            record.inputs = vec![
                input("fetch", Some(first.id)),
                input("fetch", Some(first.id)),
            ];
            tx.put_task_same_status(&record)
        })
        .unwrap();
    set_task_status(&server.store, second.id, TaskStatus::Failed);
    let json = server.get(&format!("/runs/{}/graph", run.id)).await.json();
    assert_eq!(json["drawn_from"], "tasks");
    let kinds: Vec<(&str, &str)> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("raw", "source"), ("fetch", "step"), ("sum", "step")]
    );
    let edges: Vec<(&str, &str)> = json["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap()))
        .collect();
    assert_eq!(edges, [("raw", "fetch"), ("fetch", "sum")]);
    assert_eq!(json["nodes"][2]["state"], "failed");
}
