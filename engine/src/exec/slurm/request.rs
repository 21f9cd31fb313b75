//! What a step's settings ask of SLURM for one attempt ([`SlurmRequest::for_step`]), and the
//! names that tie a job to its attempt and state directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dsl::model::StepDef;

use super::SlurmRequest;
use crate::exec::AttemptSpec;

impl SlurmRequest {
    /// The request for attempt `tag` of `step` in `pipeline`, of the state directory named
    /// `state_id`: its resources, its `executor slurm` settings, and its names. The batch script
    /// goes beside the attempt's logs, where a person looks for it; `usage` is where it records
    /// the command's status and usage.
    pub fn for_step(
        step: &StepDef,
        pipeline: &str,
        tag: &str,
        state_id: &str,
        spec: &AttemptSpec,
        usage: PathBuf,
    ) -> SlurmRequest {
        let settings = &step.executor.settings;
        SlurmRequest {
            job_name: job_name(pipeline, &step.name, tag),
            comment: slurm_comment(state_id, tag),
            script: spec.stdout_path.with_extension("sbatch"),
            usage,
            cpus: step.resources.cpus,
            gpus: step.resources.gpus,
            memory_bytes: step.resources.memory_bytes,
            time: step.resources.time_ms.map(Duration::from_millis),
            partition: settings.get("partition").cloned(),
            account: settings.get("account").cloned(),
            qos: settings.get("qos").cloned(),
            options: settings.get("options").cloned(),
        }
    }
}

/// A SLURM job name: `PIPELINE.STEP.TASK-ATTEMPT`, without blanks.
fn job_name(pipeline: &str, step: &str, tag: &str) -> String {
    format!("{pipeline}.{step}.{tag}")
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

/// A short, stable name for a state directory: the first 16 hex digits of its path's blake3.
pub fn state_id(state_dir: &Path) -> String {
    let hash = blake3::hash(state_dir.to_string_lossy().as_bytes()).to_hex();
    hash[..16].to_string()
}

/// The comment of the SLURM job of attempt `tag` of the state directory `state_id`: recovery
/// finds a job by it even when the engine died before committing its id.
pub fn slurm_comment(state_id: &str, tag: &str) -> String {
    format!("engine:{state_id}:{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_and_comments() {
        assert_eq!(job_name("p", "align reads", "3-1"), "p.align_reads.3-1");
        let id = state_id(Path::new("/data/.engine"));
        assert_eq!(id.len(), 16);
        assert_eq!(id, state_id(Path::new("/data/.engine")));
        assert_ne!(id, state_id(Path::new("/other/.engine")));
        assert_eq!(slurm_comment(&id, "3-1"), format!("engine:{id}:3-1"));
    }
}
