//! `engine logs`: the output of a run's tasks, whole or followed while the run goes on.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::target::StateArgs;
use super::Exit;
use crate::run::render::label;

/// Print the logs (stdout and stderr) of a run's tasks.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run's number.
    run: u64,
    /// Only this step's tasks.
    step: Option<String>,
    /// Only this group's task.
    group: Option<String>,
    /// Keep printing new output until the run ends.
    #[arg(long, short)]
    follow: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: &LogsArgs) -> Result<Exit> {
    let store = args.state.open_existing()?;
    store.run(args.run)?;
    // Bytes already printed, per log file.
    let mut printed: std::collections::HashMap<PathBuf, u64> = std::collections::HashMap::new();
    let mut stdout = std::io::stdout().lock();
    loop {
        let tasks = store.tasks_of(args.run)?;
        for task in &tasks {
            if args.step.as_ref().is_some_and(|s| s != &task.step)
                || args
                    .group
                    .as_ref()
                    .is_some_and(|g| Some(g) != task.group.as_ref())
            {
                continue;
            }
            for attempt in store.attempts_of(task.id)? {
                for (stream, path) in [("stdout", &attempt.stdout), ("stderr", &attempt.stderr)] {
                    let offset = printed.get(path).copied().unwrap_or(0);
                    let Ok(mut file) = std::fs::File::open(path) else {
                        continue;
                    };
                    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                    if len <= offset {
                        continue;
                    }
                    file.seek(SeekFrom::Start(offset))?;
                    let mut text = Vec::new();
                    file.read_to_end(&mut text)?;
                    if offset == 0 {
                        writeln!(
                            stdout,
                            "==> {} attempt {} {stream} <==",
                            label(task),
                            attempt.number
                        )?;
                    }
                    stdout.write_all(&text)?;
                    if !text.ends_with(b"\n") && !args.follow {
                        writeln!(stdout)?;
                    }
                    printed.insert(path.clone(), offset + text.len() as u64);
                }
            }
        }
        stdout.flush()?;
        if !args.follow || store.run(args.run)?.status.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(Exit::Success)
}
