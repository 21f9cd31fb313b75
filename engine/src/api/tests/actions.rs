//! `POST /runs/{id}/cancel`, `/resume`, `/rerun`, `/retry`: through the daemon, with its refusals
//! as 404, 409 and 503.

use std::sync::atomic::Ordering;

use super::fixtures::add_run;
use super::TestServer;
use crate::store::RunStatus;

#[tokio::test]
async fn cancel_is_accepted_for_a_live_run_and_a_conflict_for_a_finished_one() {
    let server = TestServer::start().await;
    let live = add_run(&server.store, "hello", RunStatus::Running, "manual", 1);
    let done = add_run(&server.store, "hello", RunStatus::Succeeded, "manual", 2);
    let reply = server.post(&format!("/runs/{}/cancel", live.id), "").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json()["cancel_requested"], true);
    let reply = server.post(&format!("/runs/{}/cancel", done.id), "").await;
    assert_eq!(reply.error(409), format!("run {} has finished", done.id));
    assert_eq!(
        server.post("/runs/77/cancel", "").await.error(404),
        "no run 77"
    );
}

#[tokio::test]
async fn resume_rerun_and_retry_make_new_runs() {
    let server = TestServer::start().await;
    let failed = add_run(&server.store, "hello", RunStatus::Failed, "manual", 1);
    let id = failed.id;
    let reply = server.post(&format!("/runs/{id}/resume"), "").await;
    assert_eq!(
        (reply.status.as_u16(), reply.json()["run"].as_u64()),
        (201, Some(100))
    );
    let reply = server
        .post(&format!("/runs/{id}/rerun"), r#"{"from": "total"}"#)
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.headers["location"], "/runs/101");
    let reply = server
        .post(&format!("/runs/{id}/retry"), r#"{"step": "count"}"#)
        .await;
    assert_eq!(reply.status, 201);
    let reply = server.post(&format!("/runs/{id}/retry"), "").await;
    assert_eq!(reply.status, 201);
    assert_eq!(
        server.control.calls(),
        [
            format!("resume {id}"),
            format!("rerun {id} from=total"),
            format!("retry {id} step=count"),
            format!("retry {id} step=-"),
        ]
    );
}

#[tokio::test]
async fn unknown_steps_are_404_and_live_runs_409() {
    let server = TestServer::start().await;
    let failed = add_run(&server.store, "hello", RunStatus::Failed, "manual", 1);
    let live = add_run(&server.store, "hello", RunStatus::Running, "manual", 2);
    let reply = server
        .post(&format!("/runs/{}/rerun", failed.id), r#"{"from": "nope"}"#)
        .await;
    assert_eq!(reply.error(404), "pipeline `hello` has no step `nope`");
    let reply = server
        .post(&format!("/runs/{}/retry", failed.id), r#"{"stp": "count"}"#)
        .await;
    reply.error(400);
    let reply = server.post(&format!("/runs/{}/resume", live.id), "").await;
    reply.error(409);
}

#[tokio::test]
async fn a_daemon_that_is_shutting_down_answers_503() {
    let server = TestServer::start().await;
    server.control.shutting_down.store(true, Ordering::SeqCst);
    let reply = server.post("/pipelines/hello/trigger", "").await;
    assert_eq!(reply.error(503), "the daemon is shutting down");
}
