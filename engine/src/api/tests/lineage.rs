//! `GET /lineage` over products a real run made, and a real run's detail and logs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::TestServer;
use crate::run::progress::Progress;
use crate::run::{run_pipeline, Force, RunOptions, RunRequest};
use crate::store::{RunStatus, Store};

const PIPE: &str = r#"
pipeline words {
  source texts {
    root "texts"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }
  step count each file {
    input texts
    run "echo counting {group}; wc -w < {inputs} > {out}/count.txt"
  }
  step total {
    input count
    run "cat {inputs} > {out}/total.txt"
    output "total.txt"
  }
}
"#;

/// Runs the `words` pipeline in `dir` with the library's own run machinery.
async fn run_words(store: Arc<Store>, dir: &Path) -> u64 {
    std::fs::create_dir_all(dir.join("texts")).unwrap();
    std::fs::write(dir.join("texts/a.txt"), "one two three\n").unwrap();
    std::fs::write(dir.join("texts/b.txt"), "four\n").unwrap();
    let file = dir.join("words.pipe");
    std::fs::write(&file, PIPE).unwrap();
    let loaded = dsl::load_file(&file).unwrap();
    assert!(loaded.is_valid(), "{:?}", loaded.diagnostics);
    let pipeline = loaded.pipeline("words").unwrap().clone();
    let options = RunOptions {
        jobs: 2,
        force: Force::None,
        state_dir: dir.join("state"),
        out_root: dir.join("out"),
        kill_grace: Duration::from_secs(1),
        only: None,
        slurm: Default::default(),
        stop: Default::default(),
        claims: None,
        hold_failed: false,
    };
    let request = RunRequest {
        file,
        params: Default::default(),
        trigger: "manual".into(),
        parent: None,
    };
    let run = run_pipeline(
        store,
        &pipeline,
        request,
        &options,
        &mut Progress::new(true),
    )
    .await
    .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    run.id
}

#[tokio::test]
async fn traces_a_product_back_through_the_tasks_that_made_it() {
    let server = TestServer::start().await;
    let dir = server.dir.path().to_path_buf();
    let run = run_words(server.store.clone(), &dir).await;

    let detail = crate::inspect::run_detail(&server.store, run).unwrap();
    let task = detail
        .tasks
        .iter()
        .find(|t| t.task.step == "total")
        .unwrap();
    let total = task.task.products[0].clone();
    assert!(total.ends_with("total.txt"), "{}", total.display());
    let path = total.to_string_lossy().replace(' ', "%20");
    let reply = server.get(&format!("/lineage?path={path}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    let expected = crate::inspect::lineage(&server.store, &total.to_string_lossy())
        .unwrap()
        .unwrap();
    assert_eq!(json, serde_json::to_value(&expected).unwrap());
    assert_eq!(json["task"]["step"], "total");
    assert_eq!(json["task"]["run"], run);
    let steps: Vec<&str> = json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["task"]["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["count", "count"]);
    assert_eq!(json["inputs"][0]["task"]["inputs"][0]["from"], "texts");

    let reply = server.get("/lineage?path=/no/such/product").await;
    assert!(reply
        .error(404)
        .starts_with("`/no/such/product` is not a product"));
    // Issue 16.2: the answer for a path that is no product is the same whether or not a file is
    // there, and never shows where the path leads (it was a file-existence oracle).
    let cwd = std::env::current_dir().unwrap().display().to_string();
    for asked in ["/etc/../etc/passwd", "/proc/self/cwd", "/no/../such/file"] {
        let error = server
            .get(&format!("/lineage?path={asked}"))
            .await
            .error(404);
        assert_eq!(
            error,
            format!("`{asked}` is not a product the engine knows (products are files in a task's output directory)")
        );
        assert!(!error.contains(&cwd) || cwd == "/", "{error}");
    }
    assert_eq!(
        server.get("/lineage?path=relative.txt").await.error(400),
        "query parameter `path`: `relative.txt` is not an absolute path"
    );
    assert_eq!(
        server.get("/lineage").await.error(400),
        "query parameter `path` is missing"
    );
}

#[tokio::test]
async fn a_real_run_shows_its_tasks_and_serves_their_logs() {
    let server = TestServer::start().await;
    let dir = server.dir.path().to_path_buf();
    let run = run_words(server.store.clone(), &dir).await;
    let json = server.get(&format!("/runs/{run}")).await.json();
    assert_eq!(json["run"]["status"], "succeeded");
    let tasks = json["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    let count = tasks
        .iter()
        .find(|t| t["step"] == "count" && t["group"] == "a")
        .unwrap();
    let task = count["id"].as_u64().unwrap();
    let reply = server.get(&format!("/runs/{run}/tasks/{task}/logs")).await;
    assert_eq!(reply.body, "counting a\n");
    let reply = server
        .get(&format!("/runs/{run}/tasks/{task}/logs?follow=1"))
        .await;
    assert_eq!(
        reply.body,
        "event: attempt\ndata: {\"attempt\":1}\n\nid: 1:11\ndata: counting a\n\n\
         event: end\ndata: {\"attempt\":1,\"status\":\"succeeded\"}\n\n"
    );
}
