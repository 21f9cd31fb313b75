//! Matching requests to routes: decoded segments, a trailing slash ignored, empty segments and
//! unknown paths 404, other methods (`HEAD` too) 405 before any token is asked for, and every
//! route in the table served with its own method.

use hyper::Method;

use super::{TestServer, TOKEN};
use crate::api::router::ROUTES;

#[tokio::test]
async fn segments_are_decoded_and_one_trailing_slash_is_ignored() {
    let server = TestServer::start().await;
    let reply = server.post("/pipelines/my%20pipe/trigger/", "").await;
    assert_eq!(reply.error(404), "no pipeline named `my pipe`");
    assert_eq!(server.control.calls(), ["trigger my pipe "]);
    let reply = server.get("/runs/12/tasks/3/logs").await;
    assert_eq!(reply.error(404), "no run 12");
    assert_eq!(server.get("/runs/?limit=1").await.status, 200);
    assert_eq!(server.get("/tasks/failed").await.status, 200);
    assert_eq!(server.get("/").await.status, 200);
    assert_eq!(server.get("/assets/app.js").await.status, 200);
}

#[tokio::test]
async fn empty_segments_and_unknown_paths_are_404() {
    let server = TestServer::start().await;
    let reply = server.post("/runs//cancel", "").await;
    assert_eq!(reply.error(404), "no route /runs//cancel");
    let reply = server.get("/runs/1/tasks//logs").await;
    assert_eq!(reply.error(404), "no route /runs/1/tasks//logs");
    assert_eq!(server.get("/runs//").await.error(404), "no route /runs/");
    assert_eq!(server.get("/nope/").await.error(404), "no route /nope");
    assert!(server.control.calls().is_empty());
}

#[tokio::test]
async fn other_methods_are_405_before_the_token_is_checked() {
    let server = TestServer::start().await;
    let reply = server.get("/runs/1/cancel").await;
    assert_eq!(reply.error(405), "GET is not allowed here (allowed: POST)");
    let reply = server
        .request(Method::DELETE, "/runs/1", None, &[], None)
        .await;
    assert_eq!(
        reply.error(405),
        "DELETE is not allowed here (allowed: GET)"
    );
    let reply = server
        .request(Method::HEAD, "/runs/1", None, &[], None)
        .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers["allow"], "GET");
    let reply = server
        .request(Method::HEAD, "/healthz", Some(TOKEN), &[], None)
        .await;
    assert_eq!(reply.status, 405);
}

#[tokio::test]
async fn every_route_is_served_with_its_own_method() {
    let server = TestServer::start().await;
    for route in ROUTES {
        let path = route
            .path
            .replace("{file}", "app.js")
            .replace("{name}", "hello")
            .replace("{id}", "1")
            .replace("{task}", "1");
        let reply = server
            .request(route.method.clone(), &path, Some(TOKEN), &[], None)
            .await;
        let status = reply.status.as_u16();
        assert_ne!(status, 405, "{} {path}: {}", route.method, reply.body);
        if status == 404 {
            let message = reply.error(404);
            assert!(!message.starts_with("no route"), "{} {path}", route.method);
        }
    }
}
