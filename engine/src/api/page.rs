//! `GET /` and `GET /assets/{file}`: the web page and its files, from [`crate::web`]. Open to
//! everyone: the page holds no data, and asks for the token itself.

use axum::http::header::{HeaderName, HeaderValue, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, StatusCode};

use super::error::ApiError;
use super::request::Segments;
use super::response::{with_type, Response};
use crate::web::{self, Asset};

pub async fn index(headers: HeaderMap) -> Response {
    serve(&headers, &web::INDEX)
}

pub async fn asset(
    Segments(name): Segments<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asset = web::asset(&name)
        .ok_or_else(|| ApiError::NotFound(format!("the page has no file `{name}`")))?;
    Ok(serve(&headers, asset))
}

/// The file, or 304 when the client's copy (by `If-None-Match`) is current.
fn serve(headers: &HeaderMap, asset: &'static Asset) -> Response {
    let etag = asset.etag();
    let current = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if current {
        let mut response = with_type(StatusCode::NOT_MODIFIED, asset.content_type, "");
        response.headers_mut().remove(CONTENT_TYPE);
        response
    } else {
        with_type(StatusCode::OK, asset.content_type, asset.body)
    };
    let headers = response.headers_mut();
    for (name, value) in web::HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    response
}
