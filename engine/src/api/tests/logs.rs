//! `GET /runs/{id}/tasks/{task}/logs`: whole as text, or followed as server-sent events while
//! the log grows.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Method;

use super::client::open;
use super::fixtures::{
    add_attempt, add_run, add_task, append, finish_attempt, set_run_status, set_task_status,
};
use super::{TestServer, TOKEN};
use crate::store::{RunStatus, TaskStatus};

#[tokio::test]
async fn the_whole_log_as_text() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Failed, "manual", 1);
    let task = add_task(&server.store, run.id, "count", TaskStatus::Failed);
    let logs = server.dir.path().join("logs");
    let first = add_attempt(&server.store, task.id, 1, &logs, Some(10));
    let second = add_attempt(&server.store, task.id, 2, &logs, Some(10));
    append(&first.stdout, "first try\n");
    append(&second.stdout, "second try\nno newline");
    append(&second.stderr, "oops\n");
    let base = format!("/runs/{}/tasks/{}/logs", run.id, task.id);

    let reply = server.get(&base).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(reply.body, "second try\nno newline");
    assert_eq!(
        server.get(&format!("{base}?stream=stderr")).await.body,
        "oops\n"
    );
    assert_eq!(
        server.get(&format!("{base}?attempt=1")).await.body,
        "first try\n"
    );

    let reply = server.get(&format!("{base}?stream=both")).await;
    assert_eq!(
        reply.error(400),
        "query parameter `stream`: `both` is neither `stdout` nor `stderr`"
    );
    let reply = server.get(&format!("{base}?attempt=3")).await;
    assert_eq!(
        reply.error(404),
        format!("task {} has no attempt 3", task.id)
    );
    let other = add_run(&server.store, "hello", RunStatus::Failed, "manual", 2);
    let reply = server
        .get(&format!("/runs/{}/tasks/{}/logs", other.id, task.id))
        .await;
    assert_eq!(
        reply.error(404),
        format!("run {} has no task {}", other.id, task.id)
    );
    server
        .get(&format!("/runs/{}/tasks/999/logs", run.id))
        .await
        .error(404);
    std::fs::remove_file(&first.stdout).unwrap();
    let reply = server.get(&format!("{base}?attempt=1")).await;
    assert!(reply.error(404).contains("log of task"));
}

#[tokio::test]
async fn a_task_not_started_has_an_empty_log() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Running, "manual", 1);
    let task = add_task(&server.store, run.id, "count", TaskStatus::Pending);
    let reply = server
        .get(&format!("/runs/{}/tasks/{}/logs", run.id, task.id))
        .await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, ""));
}

/// The events of a stream, read as they arrive.
struct Events {
    body: Incoming,
    buffer: String,
}

impl Events {
    async fn open(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Events {
        let response = open(server.addr, Method::GET, path, Some(TOKEN), headers, None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        Events {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next event, without comments; `None` when the stream ends.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some((event, rest)) = self.buffer.split_once("\n\n") {
                let event = event.to_string();
                self.buffer = rest.to_string();
                if event.starts_with(':') {
                    continue;
                }
                return Some(event);
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("an event in time");
            match frame {
                Some(frame) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
                None => return None,
            }
        }
    }
}

#[tokio::test]
async fn follows_the_log_line_by_line_until_the_task_finishes() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Running, "manual", 1);
    let task = add_task(&server.store, run.id, "count", TaskStatus::Running);
    let logs = server.dir.path().join("logs");
    let attempt = add_attempt(&server.store, task.id, 1, &logs, None);
    append(&attempt.stdout, "first\n");
    let path = format!("/runs/{}/tasks/{}/logs", run.id, task.id);
    let mut events = Events::open(&server, &path, &[("accept", "text/event-stream")]).await;
    assert_eq!(
        events.next().await.unwrap(),
        "event: attempt\ndata: {\"attempt\":1}"
    );
    assert_eq!(events.next().await.unwrap(), "id: 1:6\ndata: first");

    append(&attempt.stdout, "second\npart");
    assert_eq!(events.next().await.unwrap(), "id: 1:13\ndata: second");
    append(&attempt.stdout, "ial\n");
    assert_eq!(events.next().await.unwrap(), "id: 1:21\ndata: partial");

    append(&attempt.stdout, "last words");
    set_task_status(&server.store, task.id, TaskStatus::Succeeded);
    assert_eq!(events.next().await.unwrap(), "id: 1:31\ndata: last words");
    assert_eq!(
        events.next().await.unwrap(),
        "event: end\ndata: {\"attempt\":1,\"status\":\"succeeded\"}"
    );
    assert_eq!(events.next().await, None, "the stream ends with the task");
}

#[tokio::test]
async fn following_moves_on_to_a_retry_after_the_last_words_of_the_attempt_before() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Running, "manual", 1);
    let task = add_task(&server.store, run.id, "count", TaskStatus::Running);
    let logs = server.dir.path().join("logs");
    let first = add_attempt(&server.store, task.id, 1, &logs, None);
    append(&first.stderr, "trying\n");
    let path = format!(
        "/runs/{}/tasks/{}/logs?stream=stderr&follow=1",
        run.id, task.id
    );
    let mut events = Events::open(&server, &path, &[]).await;
    assert_eq!(
        events.next().await.unwrap(),
        "event: attempt\ndata: {\"attempt\":1}"
    );
    assert_eq!(events.next().await.unwrap(), "id: 1:7\ndata: trying");

    // The attempt writes its last line, fails, and a second attempt starts before the next poll.
    append(&first.stderr, "failed\n");
    finish_attempt(&server.store, first);
    let second = add_attempt(&server.store, task.id, 2, &logs, None);
    append(&second.stderr, "again\n");
    assert_eq!(events.next().await.unwrap(), "id: 1:14\ndata: failed");
    assert_eq!(
        events.next().await.unwrap(),
        "event: attempt\ndata: {\"attempt\":2}"
    );
    assert_eq!(events.next().await.unwrap(), "id: 2:6\ndata: again");

    // The run dies with the task still marked running: the stream ends all the same.
    set_run_status(&server.store, run.id, RunStatus::Interrupted);
    assert_eq!(
        events.next().await.unwrap(),
        "event: end\ndata: {\"attempt\":2,\"status\":\"running\"}"
    );
    assert_eq!(events.next().await, None);
}

#[tokio::test]
async fn a_reconnecting_client_goes_on_after_its_last_event() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Succeeded, "manual", 1);
    let task = add_task(&server.store, run.id, "count", TaskStatus::Succeeded);
    let logs = server.dir.path().join("logs");
    let attempt = add_attempt(&server.store, task.id, 1, &logs, Some(5));
    append(&attempt.stdout, "one\ntwo\nthree\n");
    let path = format!("/runs/{}/tasks/{}/logs?follow=1", run.id, task.id);
    let mut events = Events::open(&server, &path, &[("last-event-id", "1:4")]).await;
    assert_eq!(
        events.next().await.unwrap(),
        "event: attempt\ndata: {\"attempt\":1}"
    );
    assert_eq!(events.next().await.unwrap(), "id: 1:8\ndata: two");
    assert_eq!(events.next().await.unwrap(), "id: 1:14\ndata: three");
    assert!(events.next().await.unwrap().starts_with("event: end"));
    assert_eq!(events.next().await, None);
}

#[tokio::test]
async fn a_log_longer_than_one_read_arrives_whole_and_in_order() {
    let server = TestServer::start().await;
    let run = add_run(&server.store, "hello", RunStatus::Succeeded, "manual", 1);
    let task = add_task(&server.store, run.id, "count", TaskStatus::Succeeded);
    let logs = server.dir.path().join("logs");
    let attempt = add_attempt(&server.store, task.id, 1, &logs, Some(5));
    let lines: Vec<String> = (0..30_000)
        .map(|i| format!("line {i:06} {}", "x".repeat(60)))
        .collect();
    append(&attempt.stdout, &(lines.join("\n") + "\n"));
    let path = format!("/runs/{}/tasks/{}/logs?follow=1", run.id, task.id);
    let mut events = Events::open(&server, &path, &[]).await;
    assert!(events.next().await.unwrap().starts_with("event: attempt"));
    for line in &lines {
        let event = events.next().await.unwrap();
        assert_eq!(event.split_once("data: ").unwrap().1, line);
    }
    assert!(events.next().await.unwrap().starts_with("event: end"));
    assert_eq!(events.next().await, None);
}
