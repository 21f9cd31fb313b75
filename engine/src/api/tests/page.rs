//! `GET /` and `GET /assets/{file}`: the embedded web page, open without a token, with headers
//! that keep it to its own origin, and revalidated by its ETag.

use hyper::Method;

use super::TestServer;

#[tokio::test]
async fn the_page_and_its_files_are_served_without_a_token() {
    let server = TestServer::start().await;
    let reply = server.request(Method::GET, "/", None, &[], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "text/html; charset=utf-8");
    assert!(reply
        .body
        .contains("<script type=\"module\" src=\"/assets/app.js\">"));
    let csp = reply.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");

    for (name, kind) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let reply = server
            .request(Method::GET, &format!("/assets/{name}"), None, &[], None)
            .await;
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.headers["content-type"], kind);
        assert!(!reply.body.is_empty());
    }
    let reply = server
        .request(Method::GET, "/assets/nope.js", None, &[], None)
        .await;
    assert_eq!(reply.error(404), "the page has no file `nope.js`");
    server.post("/", "").await.error(405);
}

#[tokio::test]
async fn a_current_copy_is_304() {
    let server = TestServer::start().await;
    let reply = server
        .request(Method::GET, "/assets/app.js", None, &[], None)
        .await;
    let etag = reply.headers["etag"].to_str().unwrap().to_string();
    let header = [("if-none-match", etag.as_str())];
    let reply = server
        .request(Method::GET, "/assets/app.js", None, &header, None)
        .await;
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    let stale = [("if-none-match", "\"old\"")];
    let reply = server
        .request(Method::GET, "/assets/app.js", None, &stale, None)
        .await;
    assert_eq!(reply.status, 200);
}
