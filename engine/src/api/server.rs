//! The server: accepts connections on a listener and serves each over HTTP/1.1 (hyper, with the
//! axum router answering each request) until the shutdown token is cancelled; then it stops
//! accepting, lets requests in flight finish (for at most [`SHUTDOWN_GRACE`]) and returns.
//!
//! A connection costs a task, a socket and small buffers, not a scarce slot: the server holds
//! as many as the process's file descriptors allow ([`Budget`]), at most a quarter of them for
//! one client address, and drops a client that takes longer than [`HEADER_TIMEOUT`] to send a
//! request's headers. So neither slow clients (slowloris) nor thousands of log followers keep
//! anyone else, `/healthz` and the page included, from being answered.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::router::{respond, router};
use super::state::ApiState;

/// File descriptors kept for everything else the daemon opens (the store, logs, the commands'
/// pipes) when the connection budget is taken from the limit.
pub const RESERVED_FDS: usize = 512;
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long requests in flight may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How many connections the server holds, in all and from one client address.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    per_client: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    all: usize,
    by_client: HashMap<IpAddr, usize>,
}

impl Budget {
    pub fn new(total: usize, per_client: usize) -> Budget {
        Budget {
            total,
            per_client,
            held: Mutex::default(),
        }
    }

    /// What the process's open-file limit allows: the limit less [`RESERVED_FDS`], a quarter
    /// of that for one client.
    pub fn of_fd_limit() -> Budget {
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft);
        let total = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(RESERVED_FDS)
            .clamp(64, 1 << 20);
        Budget::new(total, (total / 4).max(16))
    }

    /// Takes a connection from `client`, if the budget has room for it; it is given back when
    /// the permit is dropped.
    fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Permit> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let of_client = held.by_client.get(&client).copied().unwrap_or(0);
        if held.all >= self.total || of_client >= self.per_client {
            return None;
        }
        held.all += 1;
        held.by_client.insert(client, of_client + 1);
        Some(Permit {
            budget: self.clone(),
            client,
        })
    }
}

/// One connection's place in the [`Budget`].
struct Permit {
    budget: Arc<Budget>,
    client: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut held = self.budget.held.lock().unwrap_or_else(|e| e.into_inner());
        held.all -= 1;
        if let Some(count) = held.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.by_client.remove(&self.client);
            }
        }
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled.
///
/// Errors accepting a connection (too many open files, a connection reset before it was
/// accepted) are logged and the server goes on; it never fails as a whole. A connection over
/// the budget is closed at once.
pub async fn serve(listener: TcpListener, state: Arc<ApiState>, shutdown: CancellationToken) {
    let budget = Arc::new(Budget::of_fd_limit());
    tracing::debug!(?budget, "api: connection budget");
    serve_with(listener, state, shutdown, budget).await;
}

/// [`serve`] with a budget of its own.
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<ApiState>,
    shutdown: CancellationToken,
    budget: Arc<Budget>,
) {
    let router = router(state, shutdown.clone());
    // The connections being served; waited for at shutdown.
    let mut connections = JoinSet::new();
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => match budget.admit(peer.ip()) {
                Some(permit) => {
                    connections.spawn(connection(stream, router.clone(), shutdown.clone(), permit));
                }
                None => {
                    refused += 1;
                    if refused.is_power_of_two() {
                        tracing::warn!(client = %peer.ip(), refused, "api: connection budget full: closing new connections");
                    }
                    drop(stream);
                }
            },
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
    _permit: Permit,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_all_connections_and_each_clients() {
        let budget = Arc::new(Budget::new(3, 2));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        let first = budget.admit(a).unwrap();
        let second = budget.admit(a).unwrap();
        assert!(budget.admit(a).is_none(), "a third of one client's");
        let third = budget.admit(b).unwrap();
        assert!(budget.admit(c).is_none(), "the whole budget is held");
        drop(first);
        assert!(
            budget.admit(c).is_some(),
            "a dropped connection gives its place back"
        );
        drop((second, third));
        assert_eq!(budget.held.lock().unwrap().by_client.len(), 0);
    }
}
