//! The API served for real on 127.0.0.1:0 over a temp store, with a [`FakeControl`] standing in
//! for the daemon: real HTTP requests, their status codes, headers and bodies.

mod client;
mod control;
mod fixtures;

mod actions;
mod auth;
mod errors;
mod failed;
mod graph;
mod lineage;
mod logs;
mod metrics;
mod page;
mod pipelines;
mod queue;
mod routes;
mod runs;
mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::Method;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{serve, ApiState, Token};
use crate::store::Store;
pub use client::Reply;
pub use control::FakeControl;

pub const TOKEN: &str = "test-token";

/// A server on a free loopback port, over a store in a temp dir; shut down when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub control: Arc<FakeControl>,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with(false).await
    }

    /// A server whose reads need no token.
    pub async fn public_reads() -> TestServer {
        TestServer::with(true).await
    }

    async fn with(public_reads: bool) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let store = Arc::new(Store::open(&state_dir).unwrap());
        let control = Arc::new(FakeControl::new(store.clone()));
        let state = Arc::new(ApiState {
            store: store.clone(),
            control: control.clone(),
            token: Token::new(TOKEN, "the test").unwrap(),
            public_reads,
            hosts: crate::api::hosts::AllowedHosts::new(["trusted.example".to_string()]),
            state_dir,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(serve(listener, state, shutdown.clone()));
        TestServer {
            addr,
            dir,
            store,
            control,
            shutdown,
            handle: Some(handle),
        }
    }

    /// `GET path` with the token.
    pub async fn get(&self, path: &str) -> Reply {
        client::request(self.addr, Method::GET, path, Some(TOKEN), &[], None).await
    }

    /// `POST path` with the token and a body (none when empty).
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        let body = (!body.is_empty()).then(|| body.as_bytes().to_vec());
        client::request(self.addr, Method::POST, path, Some(TOKEN), &[], body).await
    }

    /// Any request, with or without a token.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        client::request(self.addr, method, path, token, headers, body).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
