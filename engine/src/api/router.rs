//! The routes: one table of method, path pattern, access and endpoint (the same paths
//! `docs/openapi.json` documents), matching a request to one, and dispatch to its handler.

use std::sync::Arc;

use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::auth::{authorize, Access};
use super::error::ApiError;
use super::request::{decode, Query};
use super::response::{json, Response};
use super::state::ApiState;
use super::{
    actions, auth, failed, graph, lineage, logs, metrics, openapi, page, pipelines, queue, runs,
};

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Page,
    Asset,
    Health,
    OpenApi,
    Auth,
    Metrics,
    Pipelines,
    Pipeline,
    PipelineGraph,
    Gap,
    Trigger,
    Runs,
    Run,
    RunGraph,
    Cancel,
    Resume,
    Rerun,
    Retry,
    TaskLogs,
    FailedTasks,
    Queue,
    PauseStarts,
    ResumeStarts,
    Lineage,
}

#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// Segments in braces (`{id}`) match any one segment and are handed to the handler.
    pub path: &'static str,
    pub access: Access,
    pub endpoint: Endpoint,
}

const fn route(method: Method, path: &'static str, access: Access, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        access,
        endpoint,
    }
}

/// Every route the API serves.
pub const ROUTES: &[Route] = &[
    route(Method::GET, "/", Access::Open, Endpoint::Page),
    route(Method::GET, "/assets/{file}", Access::Open, Endpoint::Asset),
    route(Method::GET, "/healthz", Access::Open, Endpoint::Health),
    route(Method::GET, "/auth", Access::Open, Endpoint::Auth),
    route(
        Method::GET,
        "/openapi.json",
        Access::Open,
        Endpoint::OpenApi,
    ),
    route(Method::GET, "/metrics", Access::Read, Endpoint::Metrics),
    route(Method::GET, "/pipelines", Access::Read, Endpoint::Pipelines),
    route(
        Method::GET,
        "/pipelines/{name}",
        Access::Read,
        Endpoint::Pipeline,
    ),
    route(
        Method::GET,
        "/pipelines/{name}/graph",
        Access::Read,
        Endpoint::PipelineGraph,
    ),
    route(
        Method::GET,
        "/pipelines/{name}/gap",
        Access::Read,
        Endpoint::Gap,
    ),
    route(
        Method::POST,
        "/pipelines/{name}/trigger",
        Access::Write,
        Endpoint::Trigger,
    ),
    route(Method::GET, "/runs", Access::Read, Endpoint::Runs),
    route(Method::GET, "/runs/{id}", Access::Read, Endpoint::Run),
    route(
        Method::GET,
        "/runs/{id}/graph",
        Access::Read,
        Endpoint::RunGraph,
    ),
    route(
        Method::POST,
        "/runs/{id}/cancel",
        Access::Write,
        Endpoint::Cancel,
    ),
    route(
        Method::POST,
        "/runs/{id}/resume",
        Access::Write,
        Endpoint::Resume,
    ),
    route(
        Method::POST,
        "/runs/{id}/rerun",
        Access::Write,
        Endpoint::Rerun,
    ),
    route(
        Method::POST,
        "/runs/{id}/retry",
        Access::Write,
        Endpoint::Retry,
    ),
    route(
        Method::GET,
        "/runs/{id}/tasks/{task}/logs",
        Access::Read,
        Endpoint::TaskLogs,
    ),
    route(
        Method::GET,
        "/tasks/failed",
        Access::Read,
        Endpoint::FailedTasks,
    ),
    route(Method::GET, "/queue", Access::Read, Endpoint::Queue),
    route(
        Method::POST,
        "/queue/pause",
        Access::Write,
        Endpoint::PauseStarts,
    ),
    route(
        Method::POST,
        "/queue/resume",
        Access::Write,
        Endpoint::ResumeStarts,
    ),
    route(Method::GET, "/lineage", Access::Read, Endpoint::Lineage),
];

/// One request, matched to its route, as a handler receives it.
pub struct Call {
    pub state: Arc<ApiState>,
    /// The values of the route's `{...}` segments, in order, percent-decoded.
    pub captures: Vec<String>,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Incoming,
    /// Cancelled when the server shuts down: long responses (followed logs) end.
    pub shutdown: CancellationToken,
}

impl Call {
    /// The `n`th `{...}` segment as a number: a run or task id.
    pub fn id(&self, n: usize, what: &str) -> Result<u64, ApiError> {
        let text = self.captures.get(n).map(String::as_str).unwrap_or("");
        text.parse()
            .map_err(|_| ApiError::BadRequest(format!("`{text}` is not a {what} number")))
    }

    pub fn capture(&self, n: usize) -> &str {
        self.captures.get(n).map(String::as_str).unwrap_or("")
    }
}

/// Answers one request; every failure becomes its JSON error response.
pub async fn respond(
    state: Arc<ApiState>,
    shutdown: CancellationToken,
    request: Request<Incoming>,
) -> Response {
    if shutdown.is_cancelled() {
        return ApiError::ShuttingDown.into_response();
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    // A task of its own, so that a panicking handler is a 500 rather than a dropped connection.
    let response = match tokio::spawn(dispatch(state, shutdown, request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => error.into_response(),
        Err(error) => {
            ApiError::Internal(format!("a request handler failed: {error}")).into_response()
        }
    };
    tracing::debug!("api: {method} {path} {}", response.status().as_u16());
    response
}

async fn dispatch(
    state: Arc<ApiState>,
    shutdown: CancellationToken,
    request: Request<Incoming>,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let (route, captures) = find(&parts.method, parts.uri.path())?;
    authorize(&state, route.access, &parts.headers)?;
    let call = Call {
        state,
        captures,
        query: Query::parse(parts.uri.query()),
        headers: parts.headers,
        body,
        shutdown,
    };
    match route.endpoint {
        Endpoint::Page => page::index(call).await,
        Endpoint::Asset => page::asset(call).await,
        Endpoint::Auth => auth::session(call).await,
        Endpoint::Health => Ok(json(
            StatusCode::OK,
            &json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
        )),
        Endpoint::OpenApi => Ok(openapi::document()),
        Endpoint::Metrics => metrics::get(call).await,
        Endpoint::Pipelines => pipelines::list(call).await,
        Endpoint::Pipeline => pipelines::get(call).await,
        Endpoint::PipelineGraph => graph::pipeline(call).await,
        Endpoint::Gap => pipelines::gap(call).await,
        Endpoint::Trigger => pipelines::trigger(call).await,
        Endpoint::Runs => runs::list(call).await,
        Endpoint::Run => runs::get(call).await,
        Endpoint::RunGraph => graph::run(call).await,
        Endpoint::Cancel => actions::cancel(call).await,
        Endpoint::Resume => actions::resume(call).await,
        Endpoint::Rerun => actions::rerun(call).await,
        Endpoint::Retry => actions::retry(call).await,
        Endpoint::TaskLogs => logs::get(call).await,
        Endpoint::FailedTasks => failed::list(call).await,
        Endpoint::Queue => queue::get(call).await,
        Endpoint::PauseStarts => queue::pause(call).await,
        Endpoint::ResumeStarts => queue::resume(call).await,
        Endpoint::Lineage => lineage::get(call).await,
    }
}

/// The route for `method` and `path`, with its captured segments: 404 when no route has the
/// path, 405 (naming the allowed methods) when routes have it with other methods.
pub fn find(method: &Method, path: &str) -> Result<(&'static Route, Vec<String>), ApiError> {
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    let mut allowed = Vec::new();
    for route in ROUTES {
        let Some(captures) = captures(route.path, path) else {
            continue;
        };
        if route.method == *method {
            return Ok((route, captures));
        }
        allowed.push(route.method.clone());
    }
    if allowed.is_empty() {
        Err(ApiError::NotFound(format!("no route {path}")))
    } else {
        Err(ApiError::MethodNotAllowed {
            method: method.clone(),
            allowed,
        })
    }
}

fn captures(pattern: &str, path: &str) -> Option<Vec<String>> {
    let mut wanted = pattern.split('/');
    let mut given = path.split('/');
    let mut out = Vec::new();
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(out),
            (Some(w), Some(g)) if w.starts_with('{') && !g.is_empty() => out.push(decode(g)),
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_patterns_and_captures_segments() {
        let (route, captures) = find(&Method::GET, "/runs/12/tasks/3/logs").unwrap();
        assert_eq!(route.endpoint, Endpoint::TaskLogs);
        assert_eq!(captures, ["12", "3"]);
        let (route, captures) = find(&Method::POST, "/pipelines/my%20pipe/trigger/").unwrap();
        assert_eq!(route.endpoint, Endpoint::Trigger);
        assert_eq!(captures, ["my pipe"]);
        let (route, captures) = find(&Method::GET, "/").unwrap();
        assert_eq!((route.endpoint, captures.len()), (Endpoint::Page, 0));
        let (route, captures) = find(&Method::GET, "/assets/app.js").unwrap();
        assert_eq!(
            (route.endpoint, captures),
            (Endpoint::Asset, vec!["app.js".to_string()])
        );
        let (route, _) = find(&Method::GET, "/tasks/failed").unwrap();
        assert_eq!(route.endpoint, Endpoint::FailedTasks);
    }

    #[test]
    fn unknown_paths_are_404_and_other_methods_405() {
        let error = find(&Method::GET, "/nope").unwrap_err();
        assert_eq!(error.status().as_u16(), 404);
        assert_eq!(
            find(&Method::GET, "/runs//cancel")
                .unwrap_err()
                .status()
                .as_u16(),
            404
        );
        let error = find(&Method::GET, "/runs/1/cancel").unwrap_err();
        assert_eq!(error.status().as_u16(), 405);
        assert_eq!(error.to_string(), "GET is not allowed here (allowed: POST)");
        let error = find(&Method::DELETE, "/runs/1").unwrap_err();
        assert_eq!(error.status().as_u16(), 405);
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
