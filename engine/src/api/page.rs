//! `GET /` and `GET /assets/{file}`: the web page and its files, from [`crate::web`]. Open to
//! everyone: the page holds no data, and asks for the token itself.

use hyper::header::{HeaderName, HeaderValue, ETAG, IF_NONE_MATCH};
use hyper::StatusCode;

use super::error::ApiError;
use super::response::{with_type, Response};
use super::router::Call;
use crate::web::{self, Asset};

pub async fn index(call: Call) -> Result<Response, ApiError> {
    Ok(serve(&call, &web::INDEX))
}

pub async fn asset(call: Call) -> Result<Response, ApiError> {
    let name = call.capture(0);
    let asset = web::asset(name)
        .ok_or_else(|| ApiError::NotFound(format!("the page has no file `{name}`")))?;
    Ok(serve(&call, asset))
}

/// The file, or 304 when the client's copy (by `If-None-Match`) is current.
fn serve(call: &Call, asset: &'static Asset) -> Response {
    let etag = asset.etag();
    let current = call
        .headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if current {
        let mut response = with_type(StatusCode::NOT_MODIFIED, asset.content_type, "");
        response.headers_mut().remove(hyper::header::CONTENT_TYPE);
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
