//! One poll cycle over a set of jobs, and waiting for a set of jobs to end, blocking (for
//! recovery). The executor's background poller runs the cycle off the async runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use super::query;
use super::state::JobState;
use super::{JobView, SlurmError};

/// One poll cycle for `ids`: one `squeue` for all, one `sstat` for those running, and for those
/// that ended, `sacct` (one call) when the cluster has it, else `scontrol` per job. Blocks.
/// Returns each job's view, and whether `sacct` works when that was found out in this cycle.
pub fn poll_once(
    ids: &[String],
    sacct: Option<bool>,
) -> Result<(BTreeMap<String, JobView>, Option<bool>), SlurmError> {
    let queued = query::squeue(ids)?;
    let mut views: BTreeMap<String, JobView> = BTreeMap::new();
    let mut ended = Vec::new();
    for id in ids {
        match queued.get(id) {
            Some(job) => {
                if job.state.is_final() {
                    ended.push(id.clone());
                }
                views.insert(
                    id.clone(),
                    JobView {
                        state: Some(job.state.clone()),
                        reason: job.reason.clone(),
                        nodes: job.nodes.clone(),
                        peak_rss_bytes: None,
                        end: None,
                    },
                );
            }
            // Forgotten by the controller: over, whatever it was.
            None => ended.push(id.clone()),
        }
    }
    let running: Vec<String> = views
        .iter()
        .filter(|(_, v)| v.state == Some(JobState::Running))
        .map(|(id, _)| id.clone())
        .collect();
    if !running.is_empty() {
        if let Ok(peaks) = query::sstat(&running) {
            for (id, peak) in peaks {
                if let Some(view) = views.get_mut(&id) {
                    view.peak_rss_bytes = Some(peak);
                }
            }
        }
    }
    let mut learned = None;
    if !ended.is_empty() {
        let use_sacct = match sacct {
            Some(known) => known,
            None => {
                let known = query::sacct_available();
                learned = Some(known);
                known
            }
        };
        let mut records = if use_sacct {
            query::sacct(&ended).unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        for id in &ended {
            let from_sacct = records
                .remove(id)
                .filter(|r| r.state.as_ref().is_some_and(JobState::is_final));
            let record = match from_sacct {
                Some(record) => Some(record),
                None => query::scontrol(id).ok().flatten(),
            };
            let view = views.entry(id.clone()).or_default();
            let mut record = record.unwrap_or_default();
            if record.state.is_none() {
                record.state = view.state.clone().filter(JobState::is_final);
            }
            if record.reason.is_none() {
                record.reason = view.reason.clone();
            }
            if record.nodes.is_none() {
                record.nodes = view.nodes.clone();
            }
            view.end = Some(record);
        }
    }
    Ok((views, learned))
}

/// Waits, blocking the thread, until every job of `ids` is over, polling every `poll`; returns
/// each job's last view (its `end` set). For recovery, which runs before any async work. While
/// SLURM cannot be asked, it keeps trying; `waiting` is called on every round with the number
/// of jobs still in the queue.
pub fn wait_blocking(
    ids: &[String],
    poll: Duration,
    mut waiting: impl FnMut(usize),
) -> BTreeMap<String, JobView> {
    let mut done: BTreeMap<String, JobView> = BTreeMap::new();
    let mut sacct = None;
    loop {
        let open: Vec<String> = ids
            .iter()
            .filter(|id| !done.contains_key(*id))
            .cloned()
            .collect();
        if open.is_empty() {
            return done;
        }
        match poll_once(&open, sacct) {
            Ok((views, learned)) => {
                sacct = sacct.or(learned);
                for (id, view) in views {
                    if view.end.is_some() {
                        done.insert(id, view);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot poll SLURM; trying again"),
        }
        let still = ids.len() - done.len();
        if still > 0 {
            waiting(still);
            std::thread::sleep(poll);
        }
    }
}
