//! `POST /runs/{id}/cancel`, `/resume`, `/rerun` and `/retry`: actions on a run, carried out by
//! the daemon through [`Control`](super::control::Control).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{HeaderValue, LOCATION};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::request::{present, JsonBody, RunId};
use super::response::{json, Response};
use super::state::ApiState;

/// Asks the run to stop: 202 once the request is stored (the run stops soon after).
pub async fn cancel(
    State(state): State<Arc<ApiState>>,
    RunId(run): RunId,
) -> Result<Response, ApiError> {
    state
        .blocking(move |state| Ok(state.control.cancel(run)?))
        .await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({ "run": run, "cancel_requested": true }),
    ))
}

/// A new run that goes on with the run: 201 with `{"run": NEW}`.
pub async fn resume(
    State(state): State<Arc<ApiState>>,
    RunId(run): RunId,
) -> Result<Response, ApiError> {
    let new = state
        .blocking(move |state| Ok(state.control.resume(run)?))
        .await?;
    Ok(created(new))
}

/// The body of a rerun, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerunBody {
    /// Rerun this step and everything downstream of it; every step if absent.
    #[serde(default, deserialize_with = "present")]
    from: Option<String>,
}

/// A new run that ignores the cache (from a step on, if given): 201 with `{"run": NEW}`.
pub async fn rerun(
    State(state): State<Arc<ApiState>>,
    RunId(run): RunId,
    JsonBody(body): JsonBody<RerunBody>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let new = state
        .blocking(move |state| Ok(state.control.rerun(run, body.from.as_deref())?))
        .await?;
    Ok(created(new))
}

/// The body of a retry, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBody {
    /// Retry only this step's failed tasks.
    #[serde(default, deserialize_with = "present")]
    step: Option<String>,
}

/// A new run of the run's failed tasks (of one step, if given): 201 with `{"run": NEW}`.
pub async fn retry(
    State(state): State<Arc<ApiState>>,
    RunId(run): RunId,
    JsonBody(body): JsonBody<RetryBody>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let new = state
        .blocking(move |state| Ok(state.control.retry(run, body.step.as_deref())?))
        .await?;
    Ok(created(new))
}

/// 201 with the new run's id and its `Location`.
pub fn created(run: u64) -> Response {
    let mut response = json(StatusCode::CREATED, &json!({ "run": run }));
    if let Ok(location) = HeaderValue::from_str(&format!("/runs/{run}")) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}
