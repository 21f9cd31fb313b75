//! `GET /pipelines`, `GET /pipelines/{name}`, `POST /pipelines/{name}/trigger`.

use super::TestServer;

#[tokio::test]
async fn lists_pipelines_with_their_gaps_and_load_errors() {
    let server = TestServer::start().await;
    let reply = server.get("/pipelines").await;
    assert_eq!(reply.status, 200);
    let json = reply.json();
    let hello = &json["pipelines"][0];
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["trigger"], "cron");
    assert_eq!(hello["next_fire_ms"], 1_800_000_000_000u64);
    assert_eq!(hello["gap"][0]["step"], "count");
    assert_eq!(hello["gap"][0]["tasks"], 2);
    assert_eq!(hello["params"][0]["constraint"], "1..=64");
    assert_eq!(json["load_errors"][0]["file"], "/w/broken.pipe");

    let reply = server.get("/pipelines/hello").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["name"], "hello");
    assert_eq!(
        server.get("/pipelines/nope").await.error(404),
        "no pipeline named `nope`"
    );
}

#[tokio::test]
async fn trigger_converts_params_to_text_and_returns_the_run() {
    let server = TestServer::start().await;
    let body = r#"{"params": {"threads": 8, "reference": "hg38"}}"#;
    let reply = server.post("/pipelines/hello/trigger", body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.json(), serde_json::json!({ "run": 100 }));
    assert_eq!(reply.headers["location"], "/runs/100");
    let reply = server.post("/pipelines/hello/trigger", "").await;
    assert_eq!(reply.json()["run"], 101);
    assert_eq!(
        server.control.calls(),
        ["trigger hello reference=hg38 threads=8", "trigger hello "]
    );
}

#[tokio::test]
async fn invalid_params_are_422_listing_each() {
    let server = TestServer::start().await;
    let body = r#"{"params": {"threads": "many", "colour": "red"}}"#;
    let reply = server.post("/pipelines/hello/trigger", body).await;
    assert_eq!(reply.error(422), "invalid params: param `colour`: pipeline `hello` has no such param; param `threads`: `many` is not an integer");
    let details = reply.json()["details"].clone();
    assert_eq!(details[0]["param"], "colour");
    assert_eq!(details[1]["param"], "threads");
    // Values that are not scalars are refused before the daemon is asked.
    let reply = server
        .post(
            "/pipelines/hello/trigger",
            r#"{"params": {"threads": [8]}}"#,
        )
        .await;
    reply.error(422);
    assert_eq!(reply.json()["details"][0]["param"], "threads");
    assert_eq!(server.control.calls().len(), 1);
}

#[tokio::test]
async fn triggering_an_unknown_pipeline_is_404() {
    let server = TestServer::start().await;
    let reply = server.post("/pipelines/nope/trigger", "{}").await;
    assert_eq!(reply.error(404), "no pipeline named `nope`");
}

#[tokio::test]
async fn gap_scans_now_and_lists_every_step() {
    let server = TestServer::start().await;
    let reply = server.get("/pipelines/hello/gap").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "pipeline": "hello",
            "gap": [{"step": "count", "tasks": 2, "held": 0}, {"step": "total", "tasks": 0, "held": 0}]
        })
    );
    assert_eq!(server.control.calls(), ["gap hello"]);
    server.get("/pipelines/nope/gap").await.error(404);
}

#[tokio::test]
async fn params_carry_what_a_form_needs() {
    let server = TestServer::start().await;
    let json = server.get("/pipelines/hello").await.json();
    let threads = &json["params"][0];
    assert_eq!(threads["required"], false);
    assert_eq!(threads["min"], 1.0);
    assert_eq!(threads["max"], 64.0);
    assert_eq!(threads["pattern"], serde_json::Value::Null);
    assert_eq!(threads["expected"], "a whole number between 1 and 64");
}
