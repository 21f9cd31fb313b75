//! Tokens: writes always need one, reads unless public; none is 401, a wrong one 403.

use hyper::Method;

use super::{TestServer, TOKEN};

#[tokio::test]
async fn writes_need_the_token() {
    let server = TestServer::start().await;
    let path = "/pipelines/hello/trigger";
    let reply = server.request(Method::POST, path, None, &[], None).await;
    assert_eq!(
        reply.error(401),
        "this request needs an `Authorization: Bearer TOKEN` header"
    );
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    let reply = server
        .request(Method::POST, path, Some("wrong"), &[], None)
        .await;
    assert_eq!(reply.error(403), "the token is not the daemon's");
    let basic = [("authorization", "Basic dXNlcjpwYXNz")];
    let reply = server.request(Method::POST, path, None, &basic, None).await;
    reply.error(401);
    assert!(
        server.control.calls().is_empty(),
        "nothing reached the daemon"
    );
    let reply = server
        .request(Method::POST, path, Some(TOKEN), &[], None)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn reads_need_the_token_unless_public() {
    let server = TestServer::start().await;
    for path in ["/runs", "/pipelines", "/metrics", "/lineage?path=/x"] {
        let reply = server.request(Method::GET, path, None, &[], None).await;
        reply.error(401);
        let reply = server
            .request(Method::GET, path, Some("nope"), &[], None)
            .await;
        reply.error(403);
    }
    let public = TestServer::public_reads().await;
    let reply = public.request(Method::GET, "/runs", None, &[], None).await;
    assert_eq!(reply.status, 200);
    let reply = public
        .request(Method::POST, "/runs/1/cancel", None, &[], None)
        .await;
    reply.error(401);
}

#[tokio::test]
async fn health_and_the_description_are_open() {
    let server = TestServer::start().await;
    let reply = server
        .request(Method::GET, "/healthz", None, &[], None)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
    let reply = server
        .request(Method::GET, "/openapi.json", None, &[], None)
        .await;
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    let paths = doc["paths"].as_object().unwrap();
    for route in crate::api::router::ROUTES {
        assert!(
            paths.contains_key(route.path),
            "{} is not documented",
            route.path
        );
    }
}

#[tokio::test]
async fn auth_says_what_a_token_allows() {
    let server = TestServer::start().await;
    let reply = server.request(Method::GET, "/auth", None, &[], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        serde_json::json!({"public_reads": false, "token": "none"})
    );
    let reply = server
        .request(Method::GET, "/auth", Some("nope"), &[], None)
        .await;
    assert_eq!(reply.json()["token"], "invalid");
    assert_eq!(server.get("/auth").await.json()["token"], "valid");
    let public = TestServer::public_reads().await;
    let reply = public.request(Method::GET, "/auth", None, &[], None).await;
    assert_eq!(reply.json()["public_reads"], true);
}

/// Issue 16.3: with `--public-reads` any `Host` was served, so another web site could read runs,
/// commands and logs through a name of its own pointed at the daemon (DNS rebinding).
#[tokio::test]
async fn only_addresses_localhost_and_allowed_names_are_answered() {
    let public = TestServer::public_reads().await;
    for host in ["rebind.attacker.example:7878", "127.0.0.1.nip.io"] {
        let reply = public
            .request(Method::GET, "/runs", None, &[("host", host)], None)
            .await;
        assert_eq!(
            reply.error(403),
            format!("the host name `{host}` is not one this daemon answers to (a defence against DNS rebinding): use its address, or start the daemon with `--allow-host NAME`")
        );
    }
    let page = public
        .request(
            Method::GET,
            "/",
            None,
            &[("host", "rebind.attacker.example")],
            None,
        )
        .await;
    assert_eq!(page.status, 403);
    for host in [
        "localhost:7878",
        "trusted.example",
        "[::1]:7878",
        "10.0.0.7",
    ] {
        let reply = public
            .request(Method::GET, "/runs", None, &[("host", host)], None)
            .await;
        assert_eq!(reply.status, 200, "{host}: {}", reply.body);
    }
}
