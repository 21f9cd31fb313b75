//! `GET /runs/{id}/tasks/{task}/logs`: a task's stdout or stderr, whole as text, or followed as
//! server-sent events (`Accept: text/event-stream` or `?follow=1`, see [`super::sse`]).
//!
//! Query: `stream=stdout|stderr` (default stdout), `attempt=N` (default the latest attempt;
//! followed, the latest moves on to a retry's new attempt when it starts).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use super::request::{QueryParams, TaskIds};
use super::response::{channel, with_type, Response, TEXT};
use super::sse::{self, Follow, Position};
use super::state::ApiState;
use crate::store::AttemptRecord;

/// Which of an attempt's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    fn from_query(value: Option<&str>) -> Result<LogStream, ApiError> {
        match value {
            None | Some("stdout") => Ok(LogStream::Stdout),
            Some("stderr") => Ok(LogStream::Stderr),
            Some(other) => Err(ApiError::BadRequest(format!(
                "query parameter `stream`: `{other}` is neither `stdout` nor `stderr`"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }

    pub fn path(self, attempt: &AttemptRecord) -> &Path {
        match self {
            LogStream::Stdout => &attempt.stdout,
            LogStream::Stderr => &attempt.stderr,
        }
    }
}

pub async fn get(
    State(state): State<Arc<ApiState>>,
    TaskIds { run, task }: TaskIds,
    query: QueryParams,
    headers: HeaderMap,
    Extension(shutdown): Extension<CancellationToken>,
) -> Result<Response, ApiError> {
    let stream = LogStream::from_query(query.get("stream"))?;
    let attempt: Option<u32> = query.number("attempt")?;
    if attempt == Some(0) {
        return Err(ApiError::BadRequest(
            "query parameter `attempt`: attempts are numbered from 1".into(),
        ));
    }
    let follow = query.flag("follow")?
        || headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
    let attempts = state
        .blocking(move |state| {
            state.store.run(run)?;
            let record = state.store.task(task)?;
            if record.run != run {
                return Err(ApiError::NotFound(format!("run {run} has no task {task}")));
            }
            let attempts = state.store.attempts_of(task)?;
            if let Some(n) = attempt.filter(|n| !attempts.iter().any(|a| a.number == *n)) {
                return Err(ApiError::NotFound(format!(
                    "task {task} has no attempt {n}"
                )));
            }
            Ok(attempts)
        })
        .await?;
    if follow {
        let resume = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(Position::parse);
        return Ok(sse::response(Follow {
            store: state.store.clone(),
            run,
            task,
            stream,
            attempt,
            resume,
            shutdown,
        }));
    }
    let chosen = match attempt {
        Some(n) => attempts.into_iter().find(|a| a.number == n),
        None => attempts.into_iter().last(),
    };
    let Some(chosen) = chosen else {
        // Not started yet: nothing written.
        return Ok(with_type(StatusCode::OK, TEXT, Body::empty()));
    };
    let path = stream.path(&chosen).to_path_buf();
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|error| match error.kind() {
            ErrorKind::NotFound => ApiError::NotFound(format!(
                "the {} log of task {task} attempt {} is gone",
                stream.name(),
                chosen.number
            )),
            _ => ApiError::Internal(format!("cannot open `{}`: {error}", path.display())),
        })?;
    Ok(with_type(StatusCode::OK, TEXT, send_file(file, path)))
}

/// The file's bytes as a body, read a chunk at a time as the client takes them.
fn send_file(mut file: tokio::fs::File, path: PathBuf) -> Body {
    let (tx, body) = channel(4);
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut buffer).await {
                Ok(0) => return,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buffer[..n])).await.is_err() {
                        return; // The client went away.
                    }
                }
                Err(error) => {
                    tracing::warn!("api: reading `{}`: {error}", path.display());
                    return;
                }
            }
        }
    });
    body
}

/// The bytes read from the end of a log for [`tail`].
const TAIL_BYTES: u64 = 64 * 1024;

/// The last `lines` lines of the log at `path` (at most its last 64 KiB), without line endings;
/// none when it does not exist.
pub fn tail(path: &Path, lines: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    if lines == 0 {
        return Vec::new();
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = length.saturating_sub(TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(TAIL_BYTES).read_to_end(&mut bytes).is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        all.remove(0); // cut in the middle
    }
    let skip = all.len().saturating_sub(lines);
    all[skip..]
        .iter()
        .map(|line| line.trim_end_matches('\r').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        assert!(tail(&path, 3).is_empty(), "no file, no lines");
        std::fs::write(&path, "one\ntwo\r\nthree\nfour").unwrap();
        assert_eq!(tail(&path, 3), ["two", "three", "four"]);
        assert_eq!(tail(&path, 10).len(), 4);
        assert!(tail(&path, 0).is_empty());
        let long: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, long).unwrap();
        assert_eq!(tail(&path, 2), ["line 19998", "line 19999"]);
    }
}
