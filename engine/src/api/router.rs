//! The routes: one table of method, path pattern, access and handler (the same paths
//! `docs/openapi.json` documents), the axum [`Router`] built from it, and answering a request
//! through that router.
//!
//! The router answers as the API always has: a path no route has is the JSON 404, a method its
//! path is not served with (`HEAD` too, which axum would otherwise hand to a `GET` handler) the
//! JSON 405 naming the allowed ones, and one trailing slash is ignored (`/runs/` is `/runs`).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Router};
use hyper::body::Incoming;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::auth::Access::{Open, Read, Write};
use super::auth::{self, Access};
use super::error::ApiError;
use super::response::{json, Response};
use super::state::ApiState;
use super::{
    actions, failed, graph, hosts, lineage, logs, metrics, openapi, page, pipelines, queue, runs,
};

/// A route's handler, as the axum method router that serves it with the method it is given
/// (`|m| on(m, runs::get)`).
type Handler = fn(MethodFilter) -> MethodRouter<Arc<ApiState>>;

const GET: Method = Method::GET;
const POST: Method = Method::POST;

pub struct Route {
    pub method: Method,
    /// Segments in braces (`{id}`) match any one segment and are handed to the handler.
    pub path: &'static str,
    pub access: Access,
    handler: Handler,
}

const fn route(method: Method, path: &'static str, access: Access, handler: Handler) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every route the API serves.
pub const ROUTES: &[Route] = &[
    route(GET, "/", Open, |m| on(m, page::index)),
    route(GET, "/assets/{file}", Open, |m| on(m, page::asset)),
    route(GET, "/healthz", Open, |m| on(m, health)),
    route(GET, "/auth", Open, |m| on(m, auth::session)),
    route(GET, "/openapi.json", Open, |m| on(m, openapi::document)),
    route(GET, "/metrics", Read, |m| on(m, metrics::get)),
    route(GET, "/pipelines", Read, |m| on(m, pipelines::list)),
    route(GET, "/pipelines/{name}", Read, |m| on(m, pipelines::get)),
    route(GET, "/pipelines/{name}/graph", Read, |m| {
        on(m, graph::pipeline)
    }),
    route(GET, "/pipelines/{name}/gap", Read, |m| {
        on(m, pipelines::gap)
    }),
    route(POST, "/pipelines/{name}/trigger", Write, |m| {
        on(m, pipelines::trigger)
    }),
    route(GET, "/runs", Read, |m| on(m, runs::list)),
    route(GET, "/runs/{id}", Read, |m| on(m, runs::get)),
    route(GET, "/runs/{id}/graph", Read, |m| on(m, graph::run)),
    route(POST, "/runs/{id}/cancel", Write, |m| on(m, actions::cancel)),
    route(POST, "/runs/{id}/resume", Write, |m| on(m, actions::resume)),
    route(POST, "/runs/{id}/rerun", Write, |m| on(m, actions::rerun)),
    route(POST, "/runs/{id}/retry", Write, |m| on(m, actions::retry)),
    route(GET, "/runs/{id}/tasks/{task}/logs", Read, |m| {
        on(m, logs::get)
    }),
    route(GET, "/tasks/failed", Read, |m| on(m, failed::list)),
    route(GET, "/queue", Read, |m| on(m, queue::get)),
    route(POST, "/queue/pause", Write, |m| on(m, queue::pause)),
    route(POST, "/queue/resume", Write, |m| on(m, queue::resume)),
    route(GET, "/lineage", Read, |m| on(m, lineage::get)),
];

/// The router of [`ROUTES`], each handler behind the check of its route's [`Access`].
/// `shutdown` reaches the handlers as an extension: long responses (followed logs) end with it.
pub fn router(state: Arc<ApiState>, shutdown: CancellationToken) -> Router {
    let mut router = Router::new();
    for (i, route) in ROUTES.iter().enumerate() {
        // A path is routed once, with every method it is served with.
        if ROUTES[..i].iter().all(|r| r.path != route.path) {
            router = router.route(route.path, endpoint(route.path, &state));
        }
    }
    router
        .fallback(no_route)
        .layer(from_fn_with_state(state.clone(), hosts::check))
        .layer(Extension(shutdown))
        .with_state(state)
}

/// The methods `path` is served with, each behind its access check; any other is a 405.
fn endpoint(path: &str, state: &Arc<ApiState>) -> MethodRouter<Arc<ApiState>> {
    let routes = ROUTES.iter().filter(|r| r.path == path);
    let allowed: Vec<Method> = routes.clone().map(|r| r.method.clone()).collect();
    let mut endpoint = MethodRouter::new();
    for route in routes {
        let Ok(filter) = MethodFilter::try_from(route.method.clone()) else {
            unreachable!("the routes' methods are GET and POST");
        };
        let access = from_fn_with_state((state.clone(), route.access), auth::require);
        endpoint = endpoint.merge((route.handler)(filter).route_layer(access));
    }
    let not_allowed = move |method: Method| {
        let allowed = allowed.clone();
        async move { ApiError::MethodNotAllowed { method, allowed } }
    };
    endpoint
        .on(MethodFilter::HEAD, not_allowed.clone())
        .fallback(not_allowed)
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route {}", uri.path()))
}

async fn health() -> Response {
    json(
        StatusCode::OK,
        &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
    )
}

/// Answers one request through `router`; every failure becomes its JSON error response.
pub async fn respond(
    router: Router,
    shutdown: &CancellationToken,
    request: Request<Incoming>,
) -> Response {
    let mut response = if shutdown.is_cancelled() {
        ApiError::ShuttingDown.into_response()
    } else {
        let (method, path) = (request.method().clone(), request.uri().path().to_string());
        let response = dispatch(router, request).await;
        tracing::debug!("api: {method} {path} {}", response.status().as_u16());
        response
    };
    // Every answer is what its Content-Type says: a browser must not guess otherwise.
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}

async fn dispatch(router: Router, mut request: Request<Incoming>) -> Response {
    trim_trailing_slash(request.uri_mut());
    let path = request.uri().path();
    // axum's `{...}` matches an empty segment too; no route has one.
    if path != "/" && path.split('/').skip(1).any(str::is_empty) {
        return ApiError::NotFound(format!("no route {path}")).into_response();
    }
    // A task of its own, so that a panicking handler is a 500 rather than a dropped connection.
    match tokio::spawn(router.oneshot(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(error) => {
            ApiError::Internal(format!("a request handler failed: {error}")).into_response()
        }
    }
}

/// Drops one trailing slash from the path, unless it is the root: `/runs/?limit=1` is
/// `/runs?limit=1`, `/runs//` is `/runs/` (a path no route has).
fn trim_trailing_slash(uri: &mut Uri) {
    let Some(path) = uri.path().strip_suffix('/').filter(|p| !p.is_empty()) else {
        return;
    };
    let trimmed = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    let Ok(path_and_query) = trimmed.parse() else {
        return;
    };
    parts.path_and_query = Some(path_and_query);
    if let Ok(trimmed) = Uri::from_parts(parts) {
        *uri = trimmed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_slash_goes_but_not_the_root() {
        let trimmed = |text: &str| {
            let mut uri: Uri = text.parse().unwrap();
            trim_trailing_slash(&mut uri);
            uri.to_string()
        };
        assert_eq!(
            trimmed("/pipelines/my%20pipe/trigger/"),
            "/pipelines/my%20pipe/trigger"
        );
        assert_eq!(trimmed("/runs/?limit=1"), "/runs?limit=1");
        assert_eq!(trimmed("/runs//"), "/runs/");
        assert_eq!(trimmed("/runs"), "/runs");
        assert_eq!(trimmed("/"), "/");
    }

    #[test]
    fn every_write_is_a_post_and_needs_the_token() {
        for route in ROUTES {
            assert_eq!(
                route.method == Method::POST,
                route.access == Access::Write,
                "{}",
                route.path
            );
        }
    }
}
