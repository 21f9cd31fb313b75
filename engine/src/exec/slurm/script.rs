//! What the engine submits: the batch script of an attempt (its env, its command, and a wrapper
//! that records the command's wall and CPU time), and the `sbatch` options that carry the
//! step's resources and SLURM settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dsl::model::command::shell_quote;

use super::parse::split_words;
use super::SlurmError;
use crate::exec::AttemptSpec;

/// Set to `slurm` in the environment of every SLURM job's command.
pub const EXECUTOR_VAR: &str = "ENGINE_EXECUTOR";

/// What a step asks of SLURM for one attempt, beside the [`AttemptSpec`] every executor gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmRequest {
    /// `--job-name`: what `squeue` shows.
    pub job_name: String,
    /// `--comment`: how recovery recognises the job, even one whose id was never committed.
    /// No blanks (so that `scontrol` output stays readable).
    pub comment: String,
    /// Where the batch script is written (kept: the attempt's SLURM record names it).
    pub script: PathBuf,
    /// Where the batch script records the command's exit status, wall and CPU time.
    pub usage: PathBuf,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--gres=gpu:N`.
    pub gpus: Option<u32>,
    /// `--mem`, rounded up to whole mebibytes.
    pub memory_bytes: Option<u64>,
    /// `--time`, rounded up to whole minutes.
    pub time: Option<Duration>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// More `sbatch` options, as the step wrote them; split into words like a shell would.
    pub options: Option<String>,
}

/// The batch script: exports the attempt's env and `ENGINE_OUT`, runs the command with
/// `/bin/sh -c` in the working directory, records the usage atomically, and exits with the
/// command's status.
pub fn batch_script(spec: &AttemptSpec, out_dir: &Path, request: &SlurmRequest) -> String {
    let quote = |s: &str| shell_quote(s);
    let usage = request.usage.to_string_lossy();
    let mut text = String::from("#!/bin/bash\n");
    text.push_str(&format!(
        "# Submitted by the engine: {}. Runs the command, then records its usage.\n",
        request.job_name.replace('\n', " ")
    ));
    for (name, value) in &spec.env {
        text.push_str(&format!("export {name}={}\n", quote(value)));
    }
    // Tells the local executor's crash recovery, which finds attempts by their environment,
    // that this process belongs to a SLURM job (on a node that is also the engine's machine).
    text.push_str(&format!("export {EXECUTOR_VAR}=slurm\n"));
    text.push_str(&format!(
        "export ENGINE_OUT={}\n",
        quote(&out_dir.to_string_lossy())
    ));
    text.push_str(&format!(
        "cd {} || exit 1\n",
        quote(&spec.workdir.to_string_lossy())
    ));
    text.push_str("engine_start=$(date +%s%N)\n");
    text.push_str(&format!("/bin/sh -c {}\n", quote(&spec.command)));
    text.push_str("engine_status=$?\n");
    text.push_str(&format!(
        "{{ echo \"$engine_start $(date +%s%N) $engine_status\"; times; }} > {partial} && mv {partial} {usage}\n",
        partial = quote(&format!("{usage}.partial")),
        usage = quote(&usage),
    ));
    text.push_str("exit \"$engine_status\"\n");
    text
}

/// The `sbatch` arguments (before the script's path) for an attempt.
pub fn sbatch_args(spec: &AttemptSpec, request: &SlurmRequest) -> Result<Vec<String>, SlurmError> {
    let path = |p: &Path| filename_pattern(&p.to_string_lossy());
    let mut args = vec![
        "--parsable".to_string(),
        // A failed node ends the attempt; the engine's retries decide what happens next.
        "--no-requeue".to_string(),
        format!("--job-name={}", request.job_name),
        format!("--comment={}", request.comment),
        format!("--chdir={}", spec.workdir.to_string_lossy()),
        format!("--output={}", path(&spec.stdout_path)),
    ];
    if spec.stderr_path != spec.stdout_path {
        args.push(format!("--error={}", path(&spec.stderr_path)));
    }
    if let Some(cpus) = request.cpus {
        args.push(format!("--cpus-per-task={cpus}"));
    }
    if let Some(gpus) = request.gpus.filter(|g| *g > 0) {
        args.push(format!("--gres=gpu:{gpus}"));
    }
    if let Some(bytes) = request.memory_bytes {
        args.push(format!("--mem={}M", bytes.div_ceil(1 << 20).max(1)));
    }
    if let Some(time) = request.time {
        args.push(format!("--time={}", time_limit(time)));
    }
    for (option, value) in [
        ("partition", &request.partition),
        ("account", &request.account),
        ("qos", &request.qos),
    ] {
        if let Some(value) = value {
            args.push(format!("--{option}={value}"));
        }
    }
    if let Some(options) = &request.options {
        let words = split_words(options).ok_or_else(|| SlurmError::Options {
            options: options.clone(),
        })?;
        args.extend(words);
    }
    Ok(args)
}

/// A time limit as `sbatch --time` takes it, rounded up to whole minutes: `MINUTES` or
/// `DAYS-HOURS:MINUTES:00`.
fn time_limit(time: Duration) -> String {
    let minutes = time.as_secs().div_ceil(60).max(1);
    if minutes < 24 * 60 {
        minutes.to_string()
    } else {
        let (days, rest) = (minutes / (24 * 60), minutes % (24 * 60));
        format!("{days}-{:02}:{:02}:00", rest / 60, rest % 60)
    }
}

/// SLURM expands `%j`, `%x` and the like in `--output` and `--error`; a literal `%` is `%%`.
fn filename_pattern(path: &str) -> String {
    path.replace('%', "%%")
}

/// What the batch script recorded: `START_NS END_NS STATUS`, then `times` output (the shell's
/// line, then its children's: `0m1.250s 0m0.020s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// The command's exit status.
    pub status: Option<i32>,
    pub wall: Duration,
    pub user_cpu: Duration,
    pub sys_cpu: Duration,
}

/// Reads a usage record; `None` if it is not one.
pub fn parse_usage(text: &str) -> Option<Usage> {
    let mut lines = text.lines();
    let mut clock = lines.next()?.split_whitespace();
    let start: u128 = clock.next()?.parse().ok()?;
    let end: u128 = clock.next()?.parse().ok()?;
    let status = clock.next().and_then(|s| s.parse().ok());
    let children = lines.rfind(|l| !l.trim().is_empty())?;
    let mut times = children.split_whitespace().map(parse_times_duration);
    let user_cpu = times.next()??;
    let sys_cpu = times.next()??;
    let wall_ns = u64::try_from(end.saturating_sub(start)).unwrap_or(u64::MAX);
    Some(Usage {
        status,
        wall: Duration::from_nanos(wall_ns),
        user_cpu,
        sys_cpu,
    })
}

/// `1m2.500s` as bash's `times` prints it.
fn parse_times_duration(text: &str) -> Option<Duration> {
    let (minutes, seconds) = text.strip_suffix('s')?.split_once('m')?;
    let minutes: u64 = minutes.parse().ok()?;
    let seconds: f64 = seconds
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)?;
    Some(Duration::from_secs(minutes * 60) + Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AttemptSpec {
        AttemptSpec {
            command: "echo 'hi' > $ENGINE_OUT/x".to_string(),
            tag: "3-1".to_string(),
            ended_log: PathBuf::from("/s/logs/1/ended.jsonl"),
            script: PathBuf::from("/s/logs/1/a/x.1.sh"),
            env: vec![("GREETING".to_string(), "it's me".to_string())],
            workdir: PathBuf::from("/w d"),
            out_dir: PathBuf::from("/s/tmp/3-1"),
            stdout_path: PathBuf::from("/s/logs/1/a/x.1.out"),
            stderr_path: PathBuf::from("/s/logs/1/a/x.1.err"),
            prepared: false,
            timeout: None,
            kill_grace: Duration::from_secs(5),
        }
    }

    fn request() -> SlurmRequest {
        SlurmRequest {
            job_name: "p.a.3-1".to_string(),
            comment: "engine:abc:3-1".to_string(),
            script: PathBuf::from("/s/logs/1/a/x.1.sbatch"),
            usage: PathBuf::from("/s/tmp/3-1.usage"),
            ..SlurmRequest::default()
        }
    }

    #[test]
    fn the_script_exports_env_and_records_usage() {
        let text = batch_script(&spec(), Path::new("/s/tmp/3-1"), &request());
        assert!(text.starts_with("#!/bin/bash\n"));
        assert!(text.contains("export GREETING='it'\\''s me'\n"), "{text}");
        assert!(text.contains("export ENGINE_OUT=/s/tmp/3-1\n"), "{text}");
        assert!(text.contains("export ENGINE_EXECUTOR=slurm\n"), "{text}");
        assert!(text.contains("cd '/w d' || exit 1\n"), "{text}");
        assert!(
            text.contains("/bin/sh -c 'echo '\\''hi'\\'' > $ENGINE_OUT/x'\n"),
            "{text}"
        );
        assert!(text.contains("mv /s/tmp/3-1.usage.partial /s/tmp/3-1.usage"));
        assert!(text.ends_with("exit \"$engine_status\"\n"));
    }

    #[test]
    fn the_script_runs_and_records_its_usage() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = spec();
        spec.workdir = dir.path().to_path_buf();
        spec.command = "echo \"$GREETING\" > \"$ENGINE_OUT/x\"; exit 3".to_string();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let mut request = request();
        request.script = dir.path().join("job.sbatch");
        request.usage = dir.path().join("job.usage");
        std::fs::write(&request.script, batch_script(&spec, &out, &request)).unwrap();
        let status = std::process::Command::new("bash")
            .arg(&request.script)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(std::fs::read_to_string(out.join("x")).unwrap(), "it's me\n");
        let usage = std::fs::read_to_string(&request.usage).unwrap();
        assert_eq!(parse_usage(&usage).unwrap().status, Some(3), "{usage}");
    }

    #[test]
    fn sbatch_options_from_resources_and_settings() {
        let mut request = request();
        request.cpus = Some(4);
        request.gpus = Some(1);
        request.memory_bytes = Some(1_500_000_000);
        request.time = Some(Duration::from_secs(90));
        request.partition = Some("short".to_string());
        request.account = Some("lab".to_string());
        request.qos = Some("normal".to_string());
        request.options = Some("--exclusive --constraint='avx2&sse4'".to_string());
        let mut spec = spec();
        spec.stdout_path = PathBuf::from("/s/logs/50%/x.out");
        let args = sbatch_args(&spec, &request).unwrap();
        assert_eq!(
            args,
            vec![
                "--parsable",
                "--no-requeue",
                "--job-name=p.a.3-1",
                "--comment=engine:abc:3-1",
                "--chdir=/w d",
                "--output=/s/logs/50%%/x.out",
                "--error=/s/logs/1/a/x.1.err",
                "--cpus-per-task=4",
                "--gres=gpu:1",
                "--mem=1431M",
                "--time=2",
                "--partition=short",
                "--account=lab",
                "--qos=normal",
                "--exclusive",
                "--constraint=avx2&sse4",
            ]
        );
    }

    #[test]
    fn one_log_file_for_both_streams() {
        let mut spec = spec();
        spec.stderr_path = spec.stdout_path.clone();
        let args = sbatch_args(&spec, &request()).unwrap();
        assert!(!args.iter().any(|a| a.starts_with("--error")));
    }

    #[test]
    fn unclosed_quote_in_options_is_an_error() {
        let mut request = request();
        request.options = Some("--comment='x".to_string());
        let error = sbatch_args(&spec(), &request).unwrap_err();
        assert!(error.to_string().contains("--comment='x"), "{error}");
    }

    #[test]
    fn time_limits_round_up_to_minutes() {
        assert_eq!(time_limit(Duration::from_secs(1)), "1");
        assert_eq!(time_limit(Duration::from_secs(60)), "1");
        assert_eq!(time_limit(Duration::from_secs(61)), "2");
        assert_eq!(time_limit(Duration::from_secs(4 * 3600)), "240");
        assert_eq!(
            time_limit(Duration::from_secs(2 * 86_400 + 3 * 3600 + 60)),
            "2-03:01:00"
        );
    }

    #[test]
    fn usage_records_parse() {
        let usage =
            parse_usage("1000000000 3500000000 2\n0m0.001s 0m0.002s\n1m2.500s 0m0.250s\n").unwrap();
        assert_eq!(usage.status, Some(2));
        assert_eq!(usage.wall, Duration::from_millis(2500));
        assert_eq!(usage.user_cpu, Duration::from_millis(62_500));
        assert_eq!(usage.sys_cpu, Duration::from_millis(250));
        assert_eq!(parse_usage(""), None);
        assert_eq!(parse_usage("1 2\n"), None);
        assert_eq!(parse_usage("x y\n0m0s 0m0s\n"), None);
    }
}
