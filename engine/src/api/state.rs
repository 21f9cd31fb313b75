//! What every request handler shares: the store, the daemon's [`Control`], the token and whether
//! reads are public.

use std::path::PathBuf;
use std::sync::Arc;

use super::control::Control;
use super::error::ApiError;
use super::token::Token;
use crate::store::Store;

/// The API's view of the daemon, built once by the daemon and shared by every connection.
pub struct ApiState {
    /// Runs, tasks, attempts, products: read directly, never written by the API.
    pub store: Arc<Store>,
    /// Everything that needs the daemon's live state: pipelines, triggers, cancel, resume, ...
    pub control: Arc<dyn Control>,
    /// The bearer token every request that changes state must present.
    pub token: Token,
    /// When set, reads (GET) need no token; writes always do.
    pub public_reads: bool,
    /// The `Host` names answered beside addresses and `localhost`.
    pub hosts: super::hosts::AllowedHosts,
    /// The daemon's state directory (the store, logs and temporary outputs are under it).
    pub state_dir: PathBuf,
}

impl ApiState {
    /// Runs `f` on a blocking thread: store reads and [`Control`] calls may touch the disk, and
    /// must not stall the connections served on the runtime's threads. A panic in `f` is a 500.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&ApiState) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|error| ApiError::Internal(format!("a request handler failed: {error}")))?
    }
}
