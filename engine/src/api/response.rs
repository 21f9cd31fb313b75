//! Building responses: JSON and text bodies with their content type, and a body fed chunk by
//! chunk from a channel (logs, server-sent events).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header::{HeaderValue, CONTENT_TYPE};
use axum::http::StatusCode;
use serde::Serialize;
use tokio::sync::mpsc;

pub use axum::response::Response;

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";

/// `value` as a JSON body.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            with_type(status, JSON, bytes)
        }
        // Our own types always serialize; say so rather than panic if one ever does not.
        Err(error) => with_type(
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON,
            format!("{{\"error\": \"internal error: cannot serialize the response: {error}\", \"details\": null}}\n"),
        ),
    }
}

/// A response with this status, content type and body.
pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A body whose chunks arrive on a channel; it ends when every sender is dropped. A producer
/// sees the client go away as `Sender::closed` or a failed send.
pub fn channel(capacity: usize) -> (mpsc::Sender<Bytes>, Body) {
    let (tx, mut rx) = mpsc::channel(capacity);
    let chunks = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|chunk| chunk.map(Ok::<_, Infallible>))
    });
    (tx, Body::from_stream(chunks))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_channel_body_ends_when_its_sender_is_dropped() {
        let (tx, body) = channel(4);
        tx.send(Bytes::from("a")).await.unwrap();
        tx.send(Bytes::from("b")).await.unwrap();
        drop(tx);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"ab");
    }

    #[tokio::test]
    async fn json_bodies_end_with_a_newline() {
        let response = json(StatusCode::CREATED, &serde_json::json!({"run": 1}));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[CONTENT_TYPE], JSON);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\n  \"run\": 1\n}\n");
    }
}
