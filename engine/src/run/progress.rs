//! What `engine run` tells the person watching. On a terminal: a live status bar (tasks done,
//! running, cached, failed; elapsed time) with one line per event printed above it. Piped or
//! redirected: the same event lines, plain, and no bar.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::render::label;
use crate::store::{AttemptEnd, AttemptRecord, RunRecord, TaskRecord, TaskStatus};

pub struct Progress {
    started: Instant,
    quiet: bool,
    /// The live bar, only when stderr is a terminal.
    bar: Option<ProgressBar>,
    running: usize,
    done: usize,
    cached: usize,
    failed: usize,
    held: usize,
    /// Prints nothing at all, not even the summary: the daemon logs runs its own way.
    silent: bool,
}

impl Progress {
    /// A progress that prints nothing.
    pub fn silent() -> Progress {
        Progress {
            silent: true,
            ..Progress::new(true)
        }
    }

    pub fn new(quiet: bool) -> Progress {
        let live = !quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("ENGINE_NO_PROGRESS").is_none();
        let bar = live.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} tasks  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            started: Instant::now(),
            quiet,
            bar,
            running: 0,
            done: 0,
            cached: 0,
            failed: 0,
            held: 0,
            silent: false,
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let text = format!("[{elapsed:7.2}s] {text}");
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    fn refresh(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position((self.done + self.cached + self.failed + self.held) as u64);
            bar.set_message(format!(
                "{} running, {} ran, {} cached, {} failed",
                self.running, self.done, self.cached, self.failed
            ));
        }
    }

    pub fn note(&self, text: &str) {
        self.line(text);
    }

    pub fn run_started(&self, run: &RunRecord) {
        self.line(&format!(
            "run {} of `{}` ({})",
            run.id, run.pipeline, run.trigger
        ));
    }

    /// The number of tasks the run has, once planned.
    pub fn planned(&self, tasks: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(tasks as u64);
        }
    }

    pub fn started(&mut self, task: &TaskRecord) {
        self.running += 1;
        let why = task
            .reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let attempt = if task.attempts > 1 {
            format!(", attempt {}", task.attempts)
        } else {
            String::new()
        };
        self.line(&format!("start   {}{why}{attempt}", label(task)));
        self.refresh();
    }

    pub fn cached(&mut self, task: &TaskRecord) {
        self.cached += 1;
        self.line(&format!("cached  {}", label(task)));
        self.refresh();
    }

    pub fn succeeded(&mut self, task: &TaskRecord, attempt: &AttemptRecord) {
        self.running = self.running.saturating_sub(1);
        self.done += 1;
        let wall = attempt.wall_ms.unwrap_or(0);
        self.line(&format!("done    {} in {}", label(task), human_ms(wall)));
        self.refresh();
    }

    pub fn attempt_failed(&mut self, task: &TaskRecord, attempt: &AttemptRecord) {
        self.running = self.running.saturating_sub(1);
        let how = match (attempt.end, attempt.exit_code, attempt.signal) {
            (Some(AttemptEnd::TimedOut), _, _) => "timed out".to_string(),
            (_, _, _) if attempt.error.is_some() => attempt.error.clone().unwrap_or_default(),
            (_, Some(code), _) => format!("exit code {code}"),
            (_, _, Some(signal)) => format!("killed by signal {signal}"),
            _ => "failed".to_string(),
        };
        self.line(&format!(
            "FAILED  {} ({how}); log: {}",
            label(task),
            attempt.stderr.display()
        ));
        self.refresh();
    }

    pub fn retrying(&self, task: &TaskRecord, delay: Duration) {
        self.line(&format!(
            "retry   {} in {}",
            label(task),
            human_ms(delay.as_millis() as u64)
        ));
    }

    pub fn failed(&mut self, task: &TaskRecord, blocked: usize) {
        self.failed += 1 + blocked;
        let blocked = if blocked > 0 {
            format!("; {blocked} downstream tasks blocked")
        } else {
            String::new()
        };
        self.line(&format!(
            "gave up {} after {} attempts{blocked}",
            label(task),
            task.attempts
        ));
        self.refresh();
    }

    pub fn held(&mut self, task: &TaskRecord) {
        self.held += 1;
        let why = task
            .reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        self.line(&format!("held    {}{why}", label(task)));
        self.refresh();
    }

    pub fn cancelled(&mut self, task: &TaskRecord) {
        self.running = self.running.saturating_sub(1);
        self.line(&format!("cancel  {}", label(task)));
        self.refresh();
    }

    pub fn summary(&self, run: &RunRecord, tasks: &[TaskRecord]) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let count = |status: TaskStatus| tasks.iter().filter(|t| t.status == status).count();
        let parts: Vec<String> = [
            (TaskStatus::Succeeded, "ran"),
            (TaskStatus::Cached, "cached"),
            (TaskStatus::Failed, "failed"),
            (TaskStatus::Blocked, "blocked"),
            (TaskStatus::Held, "held"),
            (TaskStatus::Cancelled, "cancelled"),
        ]
        .iter()
        .filter(|(status, _)| count(*status) > 0)
        .map(|(status, word)| format!("{} {word}", count(*status)))
        .collect();
        let parts = if parts.is_empty() {
            "nothing to do".to_string()
        } else {
            parts.join(", ")
        };
        let text = format!(
            "run {} {}: {} task{} ({parts}) in {}",
            run.id,
            run.status.as_str(),
            tasks.len(),
            if tasks.len() == 1 { "" } else { "s" },
            human_ms(self.started.elapsed().as_millis() as u64)
        );
        // The summary is printed even with --quiet.
        if self.silent {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let _ = writeln!(std::io::stderr(), "[{elapsed:7.2}s] {text}");
    }
}

pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
