//! The lifecycle of runs and tasks, as data: their statuses, the events that change them, and
//! one transition table per entity ([`run::TABLE`], [`task::TABLE`]). A status changes only by
//! applying an event through its table; the store refuses a record whose change is not a row of
//! it. Executors report what happened to an attempt; these tables decide what it means.
//!
//! The state diagrams in `docs/design.md` are generated from the tables by [`diagram`].

pub mod diagram;
mod event;
pub mod run;
mod status;
pub mod task;

pub use event::{Entity, Event, EventKind};
pub use status::{AttemptEnd, RunStatus, TaskStatus};

/// One row of a transition table: `from --(event)--> to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<S> {
    pub from: S,
    pub event: EventKind,
    pub to: S,
}

/// Writes a transition table as `From --(Event)--> To` lines, read top to bottom.
macro_rules! transitions {
    ($status:ident { $($from:ident --($event:ident)--> $to:ident),* $(,)? }) => {
        &[$($crate::lifecycle::Transition {
            from: $status::$from,
            event: $crate::lifecycle::EventKind::$event,
            to: $status::$to,
        }),*]
    };
}
pub(crate) use transitions;

/// An event that the table does not allow from a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity} {id}: `{event}` is not allowed while it is {from} (a bug: please report it)")]
pub struct IllegalTransition {
    /// `run` or `task`.
    pub entity: &'static str,
    pub id: u64,
    pub from: &'static str,
    pub event: EventKind,
}

/// Looks `event` up from `from` in `table`.
fn next<S: Copy + PartialEq>(table: &[Transition<S>], from: S, event: EventKind) -> Option<S> {
    table
        .iter()
        .find(|row| row.from == from && row.event == event)
        .map(|row| row.to)
}

/// The shortest chain of events that takes a record from `from` to `to` through `table`, for
/// tests that need a record in a given status.
#[cfg(test)]
pub fn path<S: Copy + PartialEq>(
    table: &[Transition<S>],
    from: S,
    to: S,
) -> Option<Vec<EventKind>> {
    let mut paths: Vec<(S, Vec<EventKind>)> = vec![(from, Vec::new())];
    let mut seen = vec![from];
    let mut next = 0;
    while next < paths.len() {
        let (at, path) = paths[next].clone();
        next += 1;
        if at == to {
            return Some(path);
        }
        for row in table.iter().filter(|row| row.from == at) {
            if !seen.contains(&row.to) {
                seen.push(row.to);
                let mut longer = path.clone();
                longer.push(row.event);
                paths.push((row.to, longer));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
