//! Bad requests get a 4xx with a JSON body: unknown routes, wrong methods, malformed JSON,
//! bodies too large; a failing handler is a 500, never a dropped connection.

use hyper::Method;

use super::client::raw;
use super::{TestServer, TOKEN};
use crate::api::BODY_LIMIT;

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let server = TestServer::start().await;
    assert_eq!(
        server.get("/nothing/here").await.error(404),
        "no route /nothing/here"
    );
    let reply = server
        .request(Method::DELETE, "/runs/1", Some(TOKEN), &[], None)
        .await;
    assert_eq!(
        reply.error(405),
        "DELETE is not allowed here (allowed: GET)"
    );
    assert_eq!(reply.headers["allow"], "GET");
    assert_eq!(reply.json()["details"]["allowed"][0], "GET");
    let reply = server.get("/pipelines/hello/trigger").await;
    reply.error(405);
    assert_eq!(reply.headers["allow"], "POST");
}

#[tokio::test]
async fn malformed_json_and_unknown_fields_are_400() {
    let server = TestServer::start().await;
    let reply = server
        .post("/pipelines/hello/trigger", "{\"params\": ")
        .await;
    assert!(reply
        .error(400)
        .starts_with("the body is not valid JSON here"));
    let reply = server
        .post("/pipelines/hello/trigger", "{\"parms\": {}}")
        .await;
    assert!(reply.error(400).contains("unknown field `parms`"));
    let reply = server.post("/runs/1/rerun", "[1, 2]").await;
    reply.error(400);
    assert!(server.control.calls().is_empty());
}

#[tokio::test]
async fn ids_that_are_not_numbers_are_400() {
    let server = TestServer::start().await;
    assert_eq!(
        server.get("/runs/abc").await.error(400),
        "`abc` is not a run number"
    );
    assert_eq!(
        server.get("/runs/1/tasks/x/logs").await.error(400),
        "`x` is not a task number"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_by_its_declared_length() {
    let server = TestServer::start().await;
    let head = format!(
        "POST /pipelines/hello/trigger HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        BODY_LIMIT + 1
    );
    let (status, body) = raw(server.addr, head, vec![b' '; BODY_LIMIT + 1]).await;
    assert_eq!(status, 413, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["details"]["limit"], BODY_LIMIT);
    assert!(server.control.calls().is_empty());
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413_while_it_is_read() {
    let server = TestServer::start().await;
    let head = format!(
        "POST /runs/1/rerun HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {TOKEN}\r\n\
         transfer-encoding: chunked\r\n\r\n"
    );
    let mut body = Vec::new();
    for _ in 0..(BODY_LIMIT / (64 * 1024) + 2) {
        body.extend(format!("{:x}\r\n", 64 * 1024).as_bytes());
        body.extend(vec![b' '; 64 * 1024]);
        body.extend(b"\r\n");
    }
    body.extend(b"0\r\n\r\n");
    let (status, body) = raw(server.addr, head, body).await;
    assert_eq!(status, 413, "{body}");
    assert!(server.control.calls().is_empty());
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_and_the_server_goes_on() {
    let server = TestServer::start().await;
    let reply = server.post("/pipelines/boom/trigger", "").await;
    assert!(reply
        .error(500)
        .starts_with("internal error: a request handler failed"));
    assert_eq!(server.get("/healthz").await.status, 200);
}

/// Issue 16.4: what the schema forbids the code refuses: an array for an object body, `null`
/// for an optional string, a flag that is neither true nor false, a time past int64, attempt 0.
#[tokio::test]
async fn what_the_schema_forbids_is_a_400() {
    let server = TestServer::start().await;
    assert_eq!(
        server
            .post("/pipelines/hello/trigger", "[{}]")
            .await
            .error(400),
        "the body must be a JSON object (`{...}`)"
    );
    assert_eq!(
        server
            .post("/pipelines/hello/trigger", "  \"x\"")
            .await
            .error(400),
        "the body must be a JSON object (`{...}`)"
    );
    for (path, field) in [("/runs/1/rerun", "from"), ("/runs/1/retry", "step")] {
        let error = server
            .post(path, &format!("{{\"{field}\": null}}"))
            .await
            .error(400);
        assert!(error.contains("invalid type: null"), "{path}: {error}");
    }
    assert_eq!(
        server.get("/runs/1/tasks/1/logs?follow=junk").await.error(400),
        "query parameter `follow`: `junk` is neither true (`1`, `true`, `yes`) nor false (`0`, `false`, `no`)"
    );
    assert_eq!(
        server
            .get("/runs/1/tasks/1/logs?attempt=0")
            .await
            .error(400),
        "query parameter `attempt`: attempts are numbered from 1"
    );
    assert_eq!(
        server
            .get("/runs?until=9223372036854775808")
            .await
            .error(400),
        "query parameter `until`: `9223372036854775808` is larger than 9223372036854775807"
    );
    assert_eq!(
        server.get("/runs?until=9223372036854775807").await.status,
        200
    );
    assert_eq!(
        server.get("/runs/9223372036854775808").await.error(400),
        "`9223372036854775808` is not a run number"
    );
    assert!(
        server.control.calls().is_empty(),
        "{:?}",
        server.control.calls()
    );
}

/// Issue 16.4: no answer may be sniffed as another type than it says.
#[tokio::test]
async fn every_answer_says_nosniff() {
    let server = TestServer::start().await;
    for path in ["/healthz", "/", "/runs", "/nothing/here"] {
        let reply = server.get(path).await;
        assert_eq!(
            reply
                .headers
                .get("x-content-type-options")
                .map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{path}"
        );
    }
}
