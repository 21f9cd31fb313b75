//! Reading what the SLURM commands print: `sbatch --parsable`, `squeue` with the engine's
//! format, `scontrol -o show job`, `sacct --parsable2` and `sstat --parsable2`, and SLURM's
//! ways of writing durations and memory sizes. Nothing here runs a command; every function takes
//! the text and returns what it found, skipping lines it does not understand.

use std::collections::BTreeMap;
use std::time::Duration;

use super::state::{parse_exit_code, JobState};

/// The `squeue --format` the poller asks for: job id, state, reason, nodes.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r|%N";

/// The `squeue --format` recovery asks for: job id, state, comment.
pub const SQUEUE_COMMENT_FORMAT: &str = "%i|%T|%k";

/// The `sacct --format` fields the poller asks for, in order.
pub const SACCT_FORMAT: &str = "JobID,State,ExitCode,Elapsed,TotalCPU,MaxRSS,NodeList";

/// The job id `sbatch --parsable` prints: `ID` or `ID;CLUSTER`.
pub fn parse_sbatch(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit() || b == b'_')).then(|| id.to_string())
}

/// One job as `squeue` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    pub id: String,
    pub state: JobState,
    /// Why it waits (`Resources`, `Priority`) or why it ended (`TimeLimit`); `None` for `None`.
    pub reason: Option<String>,
    /// The nodes it runs on; `None` while it waits.
    pub nodes: Option<String>,
}

/// Reads `squeue --noheader --format=SQUEUE_FORMAT` output.
pub fn parse_squeue(stdout: &str) -> Vec<QueuedJob> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().splitn(4, '|');
            let id = fields.next()?.trim();
            if id.is_empty() {
                return None;
            }
            let state = JobState::parse(fields.next()?);
            let reason = fields.next().and_then(meaningful);
            let nodes = fields.next().and_then(meaningful);
            Some(QueuedJob {
                id: id.to_string(),
                state,
                reason,
                nodes,
            })
        })
        .collect()
}

/// Reads `squeue --noheader --format=SQUEUE_COMMENT_FORMAT` output: (id, state, comment).
pub fn parse_squeue_comments(stdout: &str) -> Vec<(String, JobState, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().splitn(3, '|');
            let id = fields.next()?.trim();
            let state = JobState::parse(fields.next()?);
            let comment = fields.next()?.trim();
            (!id.is_empty()).then(|| (id.to_string(), state, comment.to_string()))
        })
        .collect()
}

/// What SLURM says about a job that ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalRecord {
    pub state: Option<JobState>,
    pub reason: Option<String>,
    /// `(status, signal)`.
    pub exit: Option<(i32, i32)>,
    pub nodes: Option<String>,
    /// The job's elapsed time as `sacct` measures it.
    pub elapsed: Option<Duration>,
    /// The job's run time as `scontrol` gives it, in whole seconds: coarser than the batch
    /// script's own measure, so used only without one.
    pub run_time: Option<Duration>,
    /// User plus system CPU time of all its steps (sacct only).
    pub cpu: Option<Duration>,
    /// The largest peak resident memory among its steps (sacct only).
    pub max_rss_bytes: Option<u64>,
}

/// Reads `scontrol -o show job ID`: one line of `Key=Value` fields. Values may hold spaces (a
/// job name, a comment), so a field runs until the next word that looks like `Key=`.
pub fn parse_scontrol(stdout: &str) -> Option<FinalRecord> {
    let line = stdout.lines().find(|l| l.contains("JobId="))?;
    let fields = scontrol_fields(line);
    let state = JobState::parse(fields.get("JobState")?);
    Some(FinalRecord {
        state: Some(state),
        reason: fields.get("Reason").and_then(|r| meaningful(r)),
        exit: fields.get("ExitCode").and_then(|e| parse_exit_code(e)),
        nodes: fields.get("NodeList").and_then(|n| meaningful(n)),
        elapsed: None,
        run_time: fields.get("RunTime").and_then(|t| parse_duration(t)),
        cpu: None,
        max_rss_bytes: None,
    })
}

fn scontrol_fields(line: &str) -> BTreeMap<&str, String> {
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    let mut current: Option<&str> = None;
    for word in line.split_whitespace() {
        let key = word.split_once('=').map(|(key, _)| key).filter(|key| {
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b':' || b == b'_')
        });
        match key {
            // The first occurrence of a key wins: a later one is inside a value.
            Some(key) if !fields.contains_key(key) => {
                let value = &word[key.len() + 1..];
                fields.insert(key, value.to_string());
                current = Some(key);
            }
            _ => {
                if let Some(value) = current.and_then(|key| fields.get_mut(key)) {
                    value.push(' ');
                    value.push_str(word);
                }
            }
        }
    }
    fields
}

/// Reads `sacct --noheader --parsable2 --format=SACCT_FORMAT` output: one record per job, from
/// its own line (state, exit code, elapsed) and its steps' lines (`ID.batch`, `ID.0`: peak
/// memory, CPU time).
pub fn parse_sacct(stdout: &str) -> BTreeMap<String, FinalRecord> {
    let mut records: BTreeMap<String, FinalRecord> = BTreeMap::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.trim().split('|').collect();
        let [id, state, exit, elapsed, cpu, max_rss, nodes, ..] = fields[..] else {
            continue;
        };
        let (job, step) = match id.split_once('.') {
            Some((job, step)) => (job, Some(step)),
            None => (id, None),
        };
        if job.is_empty() {
            continue;
        }
        let record = records.entry(job.to_string()).or_default();
        let rss = parse_memory(max_rss);
        record.max_rss_bytes = match (record.max_rss_bytes, rss) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if step.is_none() {
            record.state = Some(JobState::parse(state));
            record.exit = parse_exit_code(exit);
            record.elapsed = parse_duration(elapsed);
            record.cpu = parse_duration(cpu);
            record.nodes = meaningful(nodes);
        }
    }
    records
}

/// Reads `sstat --noheader --parsable2 --format=JobID,MaxRSS`: the peak memory of each job's
/// running steps, the largest per job.
pub fn parse_sstat(stdout: &str) -> BTreeMap<String, u64> {
    let mut peaks: BTreeMap<String, u64> = BTreeMap::new();
    for line in stdout.lines() {
        let Some((id, rss)) = line.trim().split_once('|') else {
            continue;
        };
        let job = id.split('.').next().unwrap_or(id);
        if let (false, Some(rss)) = (job.is_empty(), parse_memory(rss)) {
            let peak = peaks.entry(job.to_string()).or_default();
            *peak = (*peak).max(rss);
        }
    }
    peaks
}

/// Reads a SLURM duration as the commands print it: `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
/// `D-HH:MM:SS`, the seconds possibly with a fraction (`01:02.345`), or plain seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (Some(days.parse::<u64>().ok()?), clock),
        None => (None, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    // The unit of each part, from the first.
    let units: &[u64] = match (days.is_some(), parts.len()) {
        (true, 1) => &[3600],
        (true, 2) => &[3600, 60],
        (_, 3) => &[3600, 60, 1],
        (false, 2) => &[60, 1],
        (false, 1) => &[1],
        _ => return None,
    };
    let mut seconds = days.unwrap_or(0) as f64 * 86_400.0;
    for (part, unit) in parts.iter().zip(units) {
        let value: f64 = if *unit == 1 {
            part.parse().ok()?
        } else {
            part.parse::<u64>().ok()? as f64
        };
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        seconds += value * *unit as f64;
    }
    Some(Duration::from_secs_f64(seconds))
}

/// Reads a SLURM memory size: `219684K`, `1.5M`, `12G`; a bare number is in kibibytes, as
/// SLURM keeps resident memory.
pub fn parse_memory(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let (number, unit) = match text.char_indices().last()? {
        (at, c) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_uppercase()),
        _ => (text, 'K'),
    };
    let scale: u64 = match unit {
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        'P' => 1 << 50,
        _ => return None,
    };
    let value: f64 = number.parse().ok().filter(|v: &f64| *v >= 0.0)?;
    Some((value * scale as f64) as u64)
}

/// A field that says something: not empty, `None`, `(null)` or `(None)`.
fn meaningful(text: &str) -> Option<String> {
    let text = text.trim();
    (!matches!(text, "" | "None" | "(null)" | "(None)" | "n/a" | "N/A")).then(|| text.to_string())
}

/// Splits an `options` setting into words the way a shell would for plain words: on blanks,
/// with single and double quotes grouping (and removed) and a backslash escaping the next
/// character. Nothing is expanded. `None` for an unclosed quote or a trailing backslash.
pub fn split_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbatch_prints_an_id_and_maybe_a_cluster() {
        assert_eq!(parse_sbatch("42\n"), Some("42".to_string()));
        assert_eq!(parse_sbatch("42;cluster\n"), Some("42".to_string()));
        assert_eq!(parse_sbatch("\n 7 \n"), Some("7".to_string()));
        assert_eq!(parse_sbatch(""), None);
        assert_eq!(parse_sbatch("Submitted batch job 42"), None);
    }

    #[test]
    fn squeue_lines() {
        let out = "5|RUNNING|None|vm\n6|PENDING|Resources|\n7|COMPLETED|None|vm\n\ngarbage\n";
        let jobs = parse_squeue(out);
        assert_eq!(jobs.len(), 3);
        assert_eq!(
            jobs[0],
            QueuedJob {
                id: "5".into(),
                state: JobState::Running,
                reason: None,
                nodes: Some("vm".into()),
            }
        );
        assert_eq!(jobs[1].state, JobState::Pending);
        assert_eq!(jobs[1].reason.as_deref(), Some("Resources"));
        assert_eq!(jobs[1].nodes, None);
        assert_eq!(jobs[2].state, JobState::Completed);
    }

    #[test]
    fn squeue_comments_keep_bars_in_the_comment() {
        let out = "5|RUNNING|engine:ab:1-1\n6|PENDING|a|b\n";
        let jobs = parse_squeue_comments(out);
        assert_eq!(
            jobs[0],
            ("5".into(), JobState::Running, "engine:ab:1-1".into())
        );
        assert_eq!(jobs[1].2, "a|b");
    }

    #[test]
    fn scontrol_one_line() {
        let out =
            "JobId=5 JobName=my job UserId=root(0) JobState=OUT_OF_MEMORY Reason=OutOfMemory \
                   Dependency=(null) ExitCode=0:125 RunTime=00:01:04 TimeLimit=UNLIMITED \
                   NodeList=vm Comment=JobState=COMPLETED ExitCode=0:0 StdOut=/tmp/x y.out\n";
        let record = parse_scontrol(out).unwrap();
        assert_eq!(record.state, Some(JobState::OutOfMemory));
        assert_eq!(record.reason.as_deref(), Some("OutOfMemory"));
        assert_eq!(record.exit, Some((0, 125)));
        assert_eq!(record.run_time, Some(Duration::from_secs(64)));
        assert_eq!(record.nodes.as_deref(), Some("vm"));
        assert_eq!(
            parse_scontrol("slurm_load_jobs error: Invalid job id"),
            None
        );
    }

    #[test]
    fn sacct_joins_job_and_steps() {
        let out = "12|COMPLETED|0:0|00:00:04|00:01.500|||vm\n\
                   12.batch|COMPLETED|0:0|00:00:04|00:01.500|219684K||vm\n\
                   12.extern|COMPLETED|0:0|00:00:04|00:00:00|1.5M|vm\n\
                   13|CANCELLED by 0|0:15|00:00:02|00:00:00|||vm\n";
        let records = parse_sacct(out);
        let twelve = &records["12"];
        assert_eq!(twelve.state, Some(JobState::Completed));
        assert_eq!(twelve.exit, Some((0, 0)));
        assert_eq!(twelve.elapsed, Some(Duration::from_secs(4)));
        assert_eq!(twelve.cpu, Some(Duration::from_millis(1500)));
        assert_eq!(twelve.max_rss_bytes, Some(219_684 * 1024));
        assert_eq!(records["13"].state, Some(JobState::Cancelled));
        assert_eq!(records["13"].exit, Some((0, 15)));
        assert!(parse_sacct("sacct: error: Slurm accounting storage is disabled").is_empty());
    }

    #[test]
    fn sstat_peaks() {
        let peaks = parse_sstat("5.batch|219684K\n5.0|1G\n6.batch|\nnonsense\n");
        assert_eq!(peaks["5"], 1 << 30);
        assert!(!peaks.contains_key("6"));
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s);
        assert_eq!(d("00:04"), Some(Duration::from_secs(4)));
        assert_eq!(d("01:02:03"), Some(Duration::from_secs(3723)));
        assert_eq!(d("1-00:00:01"), Some(Duration::from_secs(86_401)));
        assert_eq!(d("2-03"), Some(Duration::from_secs(2 * 86_400 + 3 * 3600)));
        assert_eq!(d("01:02.345").map(|d| d.as_millis()), Some(62_345));
        assert_eq!(d("17"), Some(Duration::from_secs(17)));
        assert_eq!(d("UNLIMITED"), None);
        assert_eq!(d(""), None);
        assert_eq!(d("a:b"), None);
        assert_eq!(d("1:2:3:4"), None);
        assert_eq!(d("-1"), None);
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("219684K"), Some(219_684 * 1024));
        assert_eq!(parse_memory("1.5M"), Some(3 << 19));
        assert_eq!(parse_memory("2G"), Some(2 << 30));
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("10"), Some(10 * 1024));
        assert_eq!(parse_memory(""), None);
        assert_eq!(parse_memory("12X"), None);
        assert_eq!(parse_memory("K"), None);
    }

    #[test]
    fn options_split_like_a_shell() {
        let split = |s| split_words(s).unwrap();
        assert_eq!(split("--exclusive"), vec!["--exclusive"]);
        assert_eq!(
            split("  --constraint=avx2   --mail-type=END "),
            vec!["--constraint=avx2", "--mail-type=END"]
        );
        assert_eq!(
            split(r#"--comment='a b' --x="c \"d\"" e\ f"#),
            vec!["--comment=a b", "--x=c \"d\"", "e f"]
        );
        assert_eq!(split("''"), vec![""]);
        assert!(split("").is_empty());
        assert_eq!(split_words("'open"), None);
        assert_eq!(split_words("trailing\\"), None);
    }
}
