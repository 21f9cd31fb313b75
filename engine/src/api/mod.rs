//! The HTTP API that `engine daemon` serves: JSON over HTTP/1.1, routed by axum on hyper,
//! documented in `docs/openapi.json` (served at `/openapi.json`) and `docs/api.md`.
//!
//! The daemon builds an [`ApiState`] (the store, its [`Control`], the token from
//! [`load_or_create_token`]) and runs [`serve`] on a bound listener until shutdown. Reads come
//! straight from the store; actions go through [`Control`]. Requests that change state need the
//! bearer token, and so do reads unless they are public.
//!
//! Wiring it into the daemon:
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! use engine::api::hosts::AllowedHosts;
//! use engine::api::{load_or_create_token, serve, ApiState, Control};
//! use engine::store::Store;
//! use tokio_util::sync::CancellationToken;
//!
//! async fn start(
//!     store: Arc<Store>,
//!     control: Arc<dyn Control>,
//!     state_dir: &Path,
//!     shutdown: CancellationToken,
//! ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
//!     let (token, created) = load_or_create_token(state_dir, None)?;
//!     if created {
//!         println!("API token (in {}): {}", state_dir.join("api-token").display(), token.as_str());
//!     }
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//!     let state = Arc::new(ApiState {
//!         store,
//!         control,
//!         token,
//!         public_reads: false,
//!         hosts: AllowedHosts::new([]),
//!         state_dir: state_dir.to_path_buf(),
//!     });
//!     // Returns once `shutdown` is cancelled and the requests in flight are done.
//!     Ok(tokio::spawn(serve(listener, state, shutdown)))
//! }
//! ```

mod actions;
mod auth;
pub mod control;
mod error;
mod failed;
mod graph;
pub mod hosts;
mod lineage;
mod logs;
mod metrics;
mod openapi;
mod page;
mod pipelines;
mod queue;
mod request;
mod response;
mod router;
mod runs;
mod server;
mod sse;
mod state;
mod token;

#[cfg(test)]
mod tests;

pub use control::{Control, ControlError};
pub use error::ApiError;
pub use openapi::DOCUMENT as OPENAPI_DOCUMENT;
pub use request::BODY_LIMIT;
pub use server::serve;
pub use state::ApiState;
pub use token::{load_or_create_token, Token, TokenError, TOKEN_ENV, TOKEN_FILE};
