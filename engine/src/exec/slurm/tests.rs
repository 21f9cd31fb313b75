//! How the executor turns what SLURM and the batch script said into an attempt's outcome.

use std::time::Duration;

use super::parse::FinalRecord;
use super::*;
use crate::exec::ClusterEnding;

fn ended(state: &str, exit: Option<(i32, i32)>) -> JobView {
    JobView {
        state: Some(JobState::parse(state)),
        end: Some(FinalRecord {
            state: Some(JobState::parse(state)),
            exit,
            elapsed: Some(Duration::from_secs(4)),
            ..FinalRecord::default()
        }),
        ..JobView::default()
    }
}

const USAGE: &str = "1000000000 2000000000 0\n0m0.000s 0m0.000s\n0m1.500s 0m0.250s\n";

#[test]
fn a_completed_job_takes_slurm_state_and_the_scripts_usage() {
    let outcome = outcome(
        &ended("COMPLETED", Some((0, 0))),
        Some(USAGE),
        None,
        Duration::ZERO,
    );
    assert_eq!(outcome.ending, Ending::Exited(0));
    assert!(outcome.succeeded());
    assert_eq!(outcome.wall, Duration::from_secs(4));
    assert_eq!(outcome.user_cpu, Duration::from_millis(1500));
    assert_eq!(outcome.sys_cpu, Duration::from_millis(250));
}

#[test]
fn the_engine_stopping_a_job_wins() {
    let view = ended("CANCELLED", Some((0, 15)));
    let outcome = outcome(&view, None, Some(Ending::TimedOut), Duration::ZERO);
    assert_eq!(outcome.ending, Ending::TimedOut);
    let outcome = super::outcome(&view, None, Some(Ending::Cancelled), Duration::ZERO);
    assert_eq!(outcome.ending, Ending::Cancelled);
}

#[test]
fn slurm_endings_are_kept() {
    let outcome = outcome(
        &ended("OUT_OF_MEMORY", Some((0, 125))),
        None,
        None,
        Duration::ZERO,
    );
    assert_eq!(outcome.ending, Ending::Cluster(ClusterEnding::OutOfMemory));
    let outcome = super::outcome(&ended("TIMEOUT", None), None, None, Duration::ZERO);
    assert_eq!(outcome.ending, Ending::TimedOut);
    let outcome = super::outcome(&ended("FAILED", Some((3, 0))), None, None, Duration::ZERO);
    assert_eq!(outcome.ending, Ending::Exited(3));
}

#[test]
fn a_forgotten_job_falls_back_to_the_scripts_status() {
    let forgotten = JobView {
        end: Some(FinalRecord::default()),
        ..JobView::default()
    };
    let usage = "1000000000 3000000000 2\n0m0.000s 0m0.000s\n0m1.000s 0m0.000s\n";
    let outcome = outcome(&forgotten, Some(usage), None, Duration::from_secs(9));
    assert_eq!(outcome.ending, Ending::Exited(2));
    assert_eq!(outcome.wall, Duration::from_secs(2));
    let outcome = super::outcome(&forgotten, None, None, Duration::from_secs(9));
    assert_eq!(outcome.ending, Ending::Lost);
    assert_eq!(outcome.wall, Duration::from_secs(9));
}

#[test]
fn peak_memory_from_sacct_then_sstat() {
    let mut view = ended("COMPLETED", Some((0, 0)));
    view.peak_rss_bytes = Some(100);
    assert_eq!(
        outcome(&view, None, None, Duration::ZERO).max_rss_bytes,
        100
    );
    if let Some(end) = view.end.as_mut() {
        end.max_rss_bytes = Some(200);
    }
    assert_eq!(
        outcome(&view, None, None, Duration::ZERO).max_rss_bytes,
        200
    );
}
