//! `POST /runs/{id}/cancel`, `/resume`, `/rerun` and `/retry`: actions on a run, carried out by
//! the daemon through [`Control`](super::control::Control).

use hyper::header::{HeaderValue, LOCATION};
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::request::read_json;
use super::response::{json, Response};
use super::router::Call;

/// Asks the run to stop: 202 once the request is stored (the run stops soon after).
pub async fn cancel(call: Call) -> Result<Response, ApiError> {
    let run = call.id(0, "run")?;
    call.state
        .blocking(move |state| Ok(state.control.cancel(run)?))
        .await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({ "run": run, "cancel_requested": true }),
    ))
}

/// A new run that goes on with the run: 201 with `{"run": NEW}`.
pub async fn resume(call: Call) -> Result<Response, ApiError> {
    let run = call.id(0, "run")?;
    let new = call
        .state
        .blocking(move |state| Ok(state.control.resume(run)?))
        .await?;
    Ok(created(new))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RerunBody {
    /// Rerun this step and everything downstream of it; every step if absent.
    from: Option<String>,
}

/// A new run that ignores the cache (from a step on, if given): 201 with `{"run": NEW}`.
pub async fn rerun(call: Call) -> Result<Response, ApiError> {
    let run = call.id(0, "run")?;
    let body: RerunBody = read_json(&call.headers, call.body)
        .await?
        .unwrap_or_default();
    let new = call
        .state
        .blocking(move |state| Ok(state.control.rerun(run, body.from.as_deref())?))
        .await?;
    Ok(created(new))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    /// Retry only this step's failed tasks.
    step: Option<String>,
}

/// A new run of the run's failed tasks (of one step, if given): 201 with `{"run": NEW}`.
pub async fn retry(call: Call) -> Result<Response, ApiError> {
    let run = call.id(0, "run")?;
    let body: RetryBody = read_json(&call.headers, call.body)
        .await?
        .unwrap_or_default();
    let new = call
        .state
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
