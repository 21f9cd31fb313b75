//! The server: accepts connections on a listener and serves each over HTTP/1.1 (hyper, with the
//! axum router answering each request) until the shutdown token is cancelled; then it stops
//! accepting, lets requests in flight finish (for at most [`SHUTDOWN_GRACE`]) and returns.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::router::{respond, router};
use super::state::ApiState;

/// Connections served at once; further ones wait in the listener's backlog.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in flight may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves the API on `listener` until `shutdown` is cancelled.
///
/// Errors accepting a connection (too many open files, a connection reset before it was
/// accepted) are logged and the server goes on; it never fails as a whole.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>, shutdown: CancellationToken) {
    let router = router(state, shutdown.clone());
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // The connections being served; waited for at shutdown.
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // The semaphore is never closed.
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                connections.spawn(connection(stream, router.clone(), shutdown.clone(), permit));
            }
            Err(error) => {
                tracing::warn!("api: cannot accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
        tracing::warn!("api: closing connections still busy after {SHUTDOWN_GRACE:?}");
        connections.shutdown().await;
    }
}

/// Serves one connection; at shutdown it finishes the request in flight and closes.
async fn connection(
    stream: TcpStream,
    router: Router,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let service = {
        let shutdown = shutdown.clone();
        service_fn(move |request| {
            let (router, shutdown) = (router.clone(), shutdown.clone());
            async move { Ok::<_, Infallible>(respond(router, &shutdown, request).await) }
        })
    };
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        tracing::debug!("api: connection ended: {error}");
    }
}
