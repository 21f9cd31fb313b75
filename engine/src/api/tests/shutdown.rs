//! Shutdown: the server stops accepting, ends followed logs, and returns.

use std::time::Duration;

use hyper::Method;

use super::client::open;
use super::fixtures::{add_attempt, add_run, add_task};
use super::{TestServer, TOKEN};
use crate::store::{RunStatus, TaskStatus};

#[tokio::test]
async fn shutdown_ends_streams_and_the_server_returns() {
    let mut server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Running, "manual", 1);
    let task = add_task(&server.store, run.id, "count", TaskStatus::Running);
    add_attempt(
        &server.store,
        task.id,
        1,
        &server.dir.path().join("logs"),
        None,
    );
    let path = format!("/runs/{}/tasks/{}/logs?follow=1", run.id, task.id);
    let response = open(server.addr, Method::GET, &path, Some(TOKEN), &[], None).await;
    assert_eq!(response.status(), 200);

    server.shutdown.cancel();
    let handle = server.handle.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("the server returns promptly")
        .unwrap();
    let body = tokio::time::timeout(
        Duration::from_secs(5),
        http_body_util::BodyExt::collect(response.into_body()),
    )
    .await
    .expect("the stream ends");
    // The stream ends cleanly or is cut with its connection; either way it is over.
    drop(body);
    let refused = tokio::net::TcpStream::connect(server.addr).await;
    assert!(refused.is_err(), "the listener is closed");
}
