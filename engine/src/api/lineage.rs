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
    // The store records products by their canonical path; a path through a symlink finds them
    // too. What the path resolves to is never told: for a path that is no product, the answer
    // is the same whether a file is there or not, and names the path as asked.
    let asked = path.to_string();
    let resolved = std::fs::canonicalize(path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| asked.clone());
    let node = state
        .blocking(move |state| {
            lineage(&state.store, &resolved)?.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "`{asked}` is not a product the engine knows (products are files in a task's output directory)"
                ))
            })
        })
        .await?;
    Ok(json(StatusCode::OK, &node))
}
