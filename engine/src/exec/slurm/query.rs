//! Running the SLURM commands and reading their answers: `sbatch` to submit, one `squeue` for
//! every outstanding job at once, `sacct` (when the cluster keeps accounting) or
//! `scontrol show job` for a job that ended, `sstat` for the peak memory of running jobs, and
//! `scancel`. These calls block; the executor makes them off the async runtime.
//!
//! The commands are found on `PATH`, as a user on a login node runs them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::parse::{
    parse_sacct, parse_sbatch, parse_scontrol, parse_squeue, parse_squeue_comments, parse_sstat,
    FinalRecord, QueuedJob, SACCT_FORMAT, SQUEUE_COMMENT_FORMAT, SQUEUE_FORMAT,
};
use super::state::JobState;
use super::SlurmError;

/// Runs `program args...` with stdin from /dev/null and collects its output.
fn run(program: &str, args: &[String]) -> Result<Output, SlurmError> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SlurmError::Spawn {
            program: program.to_string(),
            source,
        })
}

fn failed(program: &str, output: &Output) -> SlurmError {
    SlurmError::Failed {
        program: program.to_string(),
        status: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    }
}

/// `sbatch ARGS SCRIPT`; returns the job id.
pub fn sbatch(args: &[String], script: &Path) -> Result<String, SlurmError> {
    let mut all = args.to_vec();
    all.push(script.to_string_lossy().into_owned());
    let output = run("sbatch", &all)?;
    if !output.status.success() {
        return Err(failed("sbatch", &output));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse_sbatch(&stdout).ok_or_else(|| SlurmError::Unreadable {
        program: "sbatch".to_string(),
        output: stdout.trim().to_string(),
    })
}

/// One `squeue` for all of `ids`, finished jobs included while the controller remembers them.
/// A job missing from the answer is unknown to the controller (long gone, or never existed).
pub fn squeue(ids: &[String]) -> Result<BTreeMap<String, QueuedJob>, SlurmError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let args = vec![
        "--noheader".to_string(),
        "--states=all".to_string(),
        format!("--format={SQUEUE_FORMAT}"),
        format!("--jobs={}", ids.join(",")),
    ];
    let output = run("squeue", &args)?;
    if !output.status.success() {
        // Every id unknown: squeue says so and fails, rather than printing nothing.
        if String::from_utf8_lossy(&output.stderr).contains("Invalid job id") {
            return Ok(BTreeMap::new());
        }
        return Err(failed("squeue", &output));
    }
    Ok(parse_squeue(&String::from_utf8_lossy(&output.stdout))
        .into_iter()
        .map(|job| (job.id.clone(), job))
        .collect())
}

/// The current user's jobs with their comment, for recovery: `(id, state, comment)`.
pub fn squeue_comments() -> Result<Vec<(String, JobState, String)>, SlurmError> {
    let args = vec![
        "--noheader".to_string(),
        "--me".to_string(),
        "--states=all".to_string(),
        format!("--format={SQUEUE_COMMENT_FORMAT}"),
    ];
    let output = run("squeue", &args)?;
    if !output.status.success() {
        return Err(failed("squeue", &output));
    }
    Ok(parse_squeue_comments(&String::from_utf8_lossy(
        &output.stdout,
    )))
}

/// Whether `sacct` answers here: it needs the cluster's accounting database, which many small
/// clusters do not run.
pub fn sacct_available() -> bool {
    let args = vec![
        "--noheader".to_string(),
        "--parsable2".to_string(),
        "--format=JobID".to_string(),
        "--starttime=now".to_string(),
    ];
    match run("sacct", &args) {
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            output.status.success() && !stderr.contains("accounting storage is disabled")
        }
        Err(_) => false,
    }
}

/// What `sacct` records of `ids` (all in one call).
pub fn sacct(ids: &[String]) -> Result<BTreeMap<String, FinalRecord>, SlurmError> {
    let args = vec![
        "--noheader".to_string(),
        "--parsable2".to_string(),
        format!("--format={SACCT_FORMAT}"),
        format!("--jobs={}", ids.join(",")),
    ];
    let output = run("sacct", &args)?;
    if !output.status.success() {
        return Err(failed("sacct", &output));
    }
    Ok(parse_sacct(&String::from_utf8_lossy(&output.stdout)))
}

/// What `scontrol show job` says of `id`; `None` once the controller has forgotten it.
pub fn scontrol(id: &str) -> Result<Option<FinalRecord>, SlurmError> {
    let args = vec![
        "-o".to_string(),
        "show".to_string(),
        "job".to_string(),
        id.to_string(),
    ];
    let output = run("scontrol", &args)?;
    if !output.status.success() {
        if String::from_utf8_lossy(&output.stderr).contains("Invalid job id") {
            return Ok(None);
        }
        return Err(failed("scontrol", &output));
    }
    Ok(parse_scontrol(&String::from_utf8_lossy(&output.stdout)))
}

/// The peak memory so far of the running jobs among `ids` (one `sstat` call).
pub fn sstat(ids: &[String]) -> Result<BTreeMap<String, u64>, SlurmError> {
    let args = vec![
        "--noheader".to_string(),
        "--parsable2".to_string(),
        "--allsteps".to_string(),
        "--format=JobID,MaxRSS".to_string(),
        format!("--jobs={}", ids.join(",")),
    ];
    let output = run("sstat", &args)?;
    if !output.status.success() {
        return Err(failed("sstat", &output));
    }
    Ok(parse_sstat(&String::from_utf8_lossy(&output.stdout)))
}

/// `scancel ID...`. A job that already ended is not an error.
pub fn scancel(ids: &[String]) -> Result<(), SlurmError> {
    if ids.is_empty() {
        return Ok(());
    }
    let output = run("scancel", ids)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.contains("already completed") && !stderr.contains("Invalid job id") {
            return Err(failed("scancel", &output));
        }
    }
    Ok(())
}
