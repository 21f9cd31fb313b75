//! Who may do what: requests that change state need `Authorization: Bearer TOKEN`, and so do
//! reads unless they are public. Without a token a request is 401; with a wrong one, 403.
//! The check is a middleware the router puts in front of every route, with the route's
//! [`Access`]. `GET /auth` tells a client (the web page) what its token, if any, allows.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use serde_json::json;

use super::error::ApiError;
use super::response::{json, Response};
use super::state::ApiState;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the health check, the API's own description).
    Open,
    /// A token, unless reads are public.
    Read,
    /// A token, always.
    Write,
}

/// The middleware: the request goes on to its handler only if its token allows `access`.
pub async fn require(
    State((state, access)): State<(Arc<ApiState>, Access)>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    authorize(&state, access, request.headers())?;
    Ok(next.run(request).await)
}

/// Checks the request's token against what `access` needs.
fn authorize(state: &ApiState, access: Access, headers: &HeaderMap) -> Result<(), ApiError> {
    match access {
        Access::Open => return Ok(()),
        Access::Read if state.public_reads => return Ok(()),
        Access::Read | Access::Write => {}
    }
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()))
        .ok_or(ApiError::Unauthorized)?;
    if state.token.matches(presented) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// `GET /auth`: `{"public_reads": B, "token": T}`, where `T` is `none` (no token was sent),
/// `valid` or `invalid`. Always 200, so a client can ask before it has a token.
pub async fn session(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let token = match headers
        .get(AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()))
    {
        None => "none",
        Some(presented) if state.token.matches(presented) => "valid",
        Some(_) => "invalid",
    };
    json(
        StatusCode::OK,
        &json!({ "public_reads": state.public_reads, "token": token }),
    )
}

/// The token of a `Bearer TOKEN` credential (the scheme is case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value[7..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_bearer_scheme_only() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }
}
