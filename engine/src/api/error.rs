//! Every way a request can fail, each with its status code, answered as a JSON body
//! `{"error": "...", "details": ...}`.

use axum::http::header::{HeaderValue, ALLOW, WWW_AUTHENTICATE};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::control::{ControlError, ParamProblem};
use super::response::{json, Response};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed JSON, a bad query parameter, a path segment that is not a number.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no `Authorization: Bearer TOKEN` header.
    #[error("this request needs an `Authorization: Bearer TOKEN` header")]
    Unauthorized,
    /// 403: a token that is not the daemon's.
    #[error("the token is not the daemon's")]
    Forbidden,
    /// 403: a `Host` name the daemon does not answer to (see `hosts`).
    #[error("the host name `{0}` is not one this daemon answers to (a defence against DNS rebinding): use its address, or start the daemon with `--allow-host NAME`")]
    HostNotAllowed(String),
    /// 404: an unknown route, run, task, pipeline, step or product.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, not with this method.
    #[error("{method} is not allowed here (allowed: {})", join(allowed))]
    MethodNotAllowed {
        method: Method,
        allowed: Vec<Method>,
    },
    /// 409: the action conflicts with the run's state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the request body is larger than the limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 422: params that do not fit their declarations, each with what was expected.
    #[error("invalid params: {}", problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
    InvalidParams { problems: Vec<ParamProblem> },
    /// 503: the daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// 500: a failure of the engine itself (the store, a handler).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::HostNotAllowed(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidParams { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Structured detail beside the message: the bad params, the allowed methods, the limit.
    fn details(&self) -> serde_json::Value {
        match self {
            ApiError::InvalidParams { problems } => json!(problems),
            ApiError::MethodNotAllowed { allowed, .. } => {
                json!({ "allowed": allowed.iter().map(Method::as_str).collect::<Vec<_>>() })
            }
            ApiError::PayloadTooLarge { limit } => json!({ "limit": limit }),
            _ => serde_json::Value::Null,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(message) = &self {
            tracing::error!("api: internal error: {message}");
        }
        let body = json!({ "error": self.to_string(), "details": self.details() });
        let mut response = json(self.status(), &body);
        let headers = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                if let Ok(value) = HeaderValue::from_str(&join(allowed)) {
                    headers.insert(ALLOW, value);
                }
            }
            _ => {}
        }
        response
    }
}

fn join(methods: &[Method]) -> String {
    let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    names.join(", ")
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> ApiError {
        match error {
            ControlError::UnknownPipeline(_)
            | ControlError::UnknownRun(_)
            | ControlError::UnknownStep { .. } => ApiError::NotFound(error.to_string()),
            ControlError::InvalidParams(problems) => ApiError::InvalidParams { problems },
            ControlError::Conflict(message) => ApiError::Conflict(message),
            ControlError::ShuttingDown => ApiError::ShuttingDown,
            ControlError::Internal(message) => ApiError::Internal(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NoRun(_) | StoreError::NoTask(_) => ApiError::NotFound(error.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_errors_map_to_their_documented_statuses() {
        let cases = [
            (ControlError::UnknownPipeline("p".into()), 404),
            (ControlError::UnknownRun(3), 404),
            (
                ControlError::UnknownStep {
                    pipeline: "p".into(),
                    step: "s".into(),
                },
                404,
            ),
            (ControlError::InvalidParams(vec![]), 422),
            (ControlError::Conflict("done".into()), 409),
            (ControlError::ShuttingDown, 503),
            (ControlError::Internal("disk".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).status().as_u16(), status);
        }
    }

    #[test]
    fn store_lookups_that_find_nothing_are_404() {
        assert_eq!(ApiError::from(StoreError::NoRun(9)).status().as_u16(), 404);
        assert_eq!(ApiError::from(StoreError::NoTask(9)).status().as_u16(), 404);
    }

    #[test]
    fn errors_name_what_is_allowed() {
        let error = ApiError::MethodNotAllowed {
            method: Method::DELETE,
            allowed: vec![Method::GET],
        };
        assert_eq!(
            error.to_string(),
            "DELETE is not allowed here (allowed: GET)"
        );
        let response = error.into_response();
        assert_eq!(response.status().as_u16(), 405);
        assert_eq!(response.headers()[ALLOW], "GET");
        let response = ApiError::Unauthorized.into_response();
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    }
}
