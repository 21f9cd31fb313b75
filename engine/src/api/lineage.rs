//! `GET /lineage?path=P`: what made a product, as `engine lineage --json` prints it.

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::request::QueryParams;
use super::response::{json, Response};
use super::state::ApiState;
use crate::inspect::lineage;

pub async fn get(
    State(state): State<Arc<ApiState>>,
    query: QueryParams,
) -> Result<Response, ApiError> {
    let path = query
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::BadRequest("query parameter `path` is missing".into()))?;
    if !Path::new(path).is_absolute() {
        return Err(ApiError::BadRequest(format!(
            "query parameter `path`: `{path}` is not an absolute path"
        )));
    }
    // The store records products by their canonical path; a path through a symlink finds them too.
    let path = std::fs::canonicalize(path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string());
    let node = state
        .blocking(move |state| {
            lineage(&state.store, &path)?.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "`{path}` is not a product the engine knows (products are files in a task's output directory)"
                ))
            })
        })
        .await?;
    Ok(json(StatusCode::OK, &node))
}
