//! A task's log followed as server-sent events: one event per line as the command writes it,
//! until the task is finished (or its run is, or the attempt followed is).
//!
//! Events:
//! - `event: attempt`, `data: {"attempt": N}` when an attempt's log begins;
//! - a plain event per line, `id: ATTEMPT:OFFSET` (a client that reconnects with that
//!   `Last-Event-ID` goes on after the line), `data: LINE`;
//! - `event: end`, `data: {"status": "...", "attempt": N}` last;
//! - `event: error`, `data: {"error": "..."}` if the store cannot be read.
//!
//! The follower polls the store and the file, reading the task's status *before* the file, so
//! that once the status is final one more read of the file gets every byte there will be.
//!
//! The events are written here rather than with `axum::response::sse::Event`, which (since
//! axum 0.8.5) leaves the `data:` field out of an event whose data is empty: an empty line of
//! the log would then be an event that `EventSource` drops.

use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::header::{HeaderValue, CACHE_CONTROL};
use axum::http::StatusCode;
use serde_json::json;
use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

use super::logs::LogStream;
use super::response::{channel, with_type, Response};
use crate::store::{AttemptRecord, Store, TaskStatus};

/// How often the store and the file are read.
pub const POLL: Duration = Duration::from_millis(200);
/// A comment is sent after this long without events, so a gone client is noticed.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// A line longer than this is sent in pieces.
const MAX_LINE: usize = 64 * 1024;
/// The most read from the file at once.
const MAX_READ: usize = 1024 * 1024;

/// What to follow.
pub struct Follow {
    pub store: Arc<Store>,
    pub run: u64,
    pub task: u64,
    pub stream: LogStream,
    /// This attempt only; `None` follows the latest, moving on to a retry's attempt.
    pub attempt: Option<u32>,
    /// Where an earlier connection got to (its `Last-Event-ID`).
    pub resume: Option<Position>,
    /// Ends the stream when the server shuts down.
    pub shutdown: CancellationToken,
}

/// A place in a task's logs: an attempt and a byte offset in its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub attempt: u32,
    pub offset: u64,
}

impl Position {
    /// Parses `ATTEMPT:OFFSET`, the id of a line event.
    pub fn parse(text: &str) -> Option<Position> {
        let (attempt, offset) = text.trim().split_once(':')?;
        Some(Position {
            attempt: attempt.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }
}

/// The event-stream response; the follower runs in a task of its own until the task is
/// finished, the client goes away or the server shuts down.
pub fn response(follow: Follow) -> Response {
    let (tx, body) = channel(16);
    tokio::spawn(follow.run(tx));
    let mut response = with_type(StatusCode::OK, "text/event-stream", body);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The attempt being read and the bytes read from its log that do not yet end a line.
struct Reading {
    attempt: u32,
    path: PathBuf,
    /// Bytes of the file consumed, including `partial`.
    offset: u64,
    partial: Vec<u8>,
}

/// What one look at the store found.
struct Look {
    status: TaskStatus,
    attempts: Vec<AttemptRecord>,
    run_finished: bool,
}

impl Follow {
    async fn run(self, tx: Sender<Bytes>) {
        let mut reading: Option<Reading> = None;
        let mut quiet = Duration::ZERO;
        loop {
            let look = match self.look().await {
                Ok(look) => look,
                Err(error) => {
                    let _ = tx
                        .send(Bytes::from(event("error", &json!({ "error": error }))))
                        .await;
                    return;
                }
            };
            let target = match self.attempt {
                Some(n) => look.attempts.iter().find(|a| a.number == n),
                None => look.attempts.last(),
            };
            let finished = look.status.is_final()
                || look.run_finished
                || (self.attempt.is_some() && target.is_some_and(|a| a.finished_ms.is_some()));
            let mut out = Vec::new();
            if let Some(target) = target {
                if reading.as_ref().is_none_or(|r| r.attempt != target.number) {
                    if let Some(old) = reading.as_mut() {
                        // The old attempt has ended: what it wrote last comes first.
                        while drain(old, &mut out).await {
                            if !send(&tx, &mut out).await {
                                return;
                            }
                        }
                        flush(old, &mut out);
                    }
                    let offset = self
                        .resume
                        .filter(|p| p.attempt == target.number)
                        .map_or(0, |p| p.offset);
                    reading = Some(Reading {
                        attempt: target.number,
                        path: self.stream.path(target).to_path_buf(),
                        offset,
                        partial: Vec::new(),
                    });
                    out.extend(event("attempt", &json!({ "attempt": target.number })));
                }
            }
            // More of the file is waiting than one read takes: go on without pausing.
            let mut more = false;
            if let Some(current) = reading.as_mut() {
                more = drain(current, &mut out).await;
                if finished && !more {
                    flush(current, &mut out);
                }
            }
            if finished && !more {
                let attempt = reading.as_ref().map(|r| r.attempt);
                out.extend(event(
                    "end",
                    &json!({ "status": look.status, "attempt": attempt }),
                ));
                send(&tx, &mut out).await;
                return;
            }
            if !out.is_empty() {
                quiet = Duration::ZERO;
                if !send(&tx, &mut out).await {
                    return;
                }
            } else if quiet >= KEEPALIVE {
                quiet = Duration::ZERO;
                out.extend(b": keepalive\n\n");
                if !send(&tx, &mut out).await {
                    return;
                }
            }
            if more && !self.shutdown.is_cancelled() {
                continue;
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL) => quiet += POLL,
            }
        }
    }

    async fn look(&self) -> Result<Look, String> {
        let (store, run, task) = (self.store.clone(), self.run, self.task);
        let looked = tokio::task::spawn_blocking(move || {
            let record = store.task(task)?;
            let attempts = store.attempts_of(task)?;
            let run_finished = store.run(run)?.status.is_finished();
            Ok::<_, crate::store::StoreError>(Look {
                status: record.status,
                attempts,
                run_finished,
            })
        })
        .await;
        match looked {
            Ok(Ok(look)) => Ok(look),
            Ok(Err(error)) => Err(error.to_string()),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// Reads what the file has past `reading.offset`, [`MAX_READ`] bytes at most, and appends an
/// event per complete line. Returns whether the read was cut short (more is waiting).
async fn drain(reading: &mut Reading, out: &mut Vec<u8>) -> bool {
    let (path, offset) = (reading.path.clone(), reading.offset);
    let bytes = match tokio::task::spawn_blocking(move || read_from(&path, offset)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => {
            tracing::warn!("api: reading `{}`: {error}", reading.path.display());
            return false;
        }
        Err(_) => return false,
    };
    let more = bytes.len() == MAX_READ;
    for byte in bytes {
        reading.offset += 1;
        reading.partial.push(byte);
        if byte == b'\n' || reading.partial.len() >= MAX_LINE {
            flush(reading, out);
        }
    }
    more
}

/// Sends the events gathered in `out` (if any) and empties it; false when the client is gone.
async fn send(tx: &Sender<Bytes>, out: &mut Vec<u8>) -> bool {
    if out.is_empty() {
        return true;
    }
    tx.send(Bytes::from(std::mem::take(out))).await.is_ok()
}

/// Sends what is left of a line as a line of its own.
fn flush(reading: &mut Reading, out: &mut Vec<u8>) {
    if reading.partial.is_empty() {
        return;
    }
    let id = format!("{}:{}", reading.attempt, reading.offset);
    out.extend(line_event(&id, &reading.partial));
    reading.partial.clear();
}

/// At most [`MAX_READ`] bytes of the file from `offset`; nothing when it does not exist (yet).
fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(MAX_READ as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// An event carrying one line (without its line ending). A carriage return inside the line
/// (a progress bar) starts another `data:` field, which a client joins with a newline.
fn line_event(id: &str, line: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    let mut out = format!("id: {id}\n");
    for part in text.split('\r') {
        out.push_str("data: ");
        out.push_str(part);
        out.push('\n');
    }
    out.push('\n');
    out.into_bytes()
}

/// A named event with a JSON payload.
fn event(name: &str, data: &serde_json::Value) -> Vec<u8> {
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_event_with_its_position() {
        let event = line_event("2:14", b"hello world\r\n");
        assert_eq!(
            String::from_utf8(event).unwrap(),
            "id: 2:14\ndata: hello world\n\n"
        );
        let event = line_event("1:3", b"\n");
        assert_eq!(String::from_utf8(event).unwrap(), "id: 1:3\ndata: \n\n");
        let event = line_event("1:9", b"10%\r20%\n");
        assert_eq!(
            String::from_utf8(event).unwrap(),
            "id: 1:9\ndata: 10%\ndata: 20%\n\n"
        );
    }

    #[test]
    fn positions_parse_from_event_ids() {
        assert_eq!(
            Position::parse("3:120"),
            Some(Position {
                attempt: 3,
                offset: 120
            })
        );
        assert_eq!(Position::parse("x:1"), None);
        assert_eq!(Position::parse("3"), None);
    }

    #[tokio::test]
    async fn drain_sends_complete_lines_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let mut reading = Reading {
            attempt: 1,
            path: path.clone(),
            offset: 0,
            partial: Vec::new(),
        };
        let mut out = Vec::new();
        assert!(!drain(&mut reading, &mut out).await);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id: 1:4\ndata: one\n\nid: 1:8\ndata: two\n\n"
        );
        assert_eq!((reading.offset, &reading.partial[..]), (11, &b"thr"[..]));
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let mut out = Vec::new();
        drain(&mut reading, &mut out).await;
        assert_eq!(String::from_utf8(out).unwrap(), "id: 1:14\ndata: three\n\n");
    }
}
