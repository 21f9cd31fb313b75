//! Cron triggers, scheduled with tokio-cron-scheduler in the pipeline's time zone. A fire sends
//! [`Event::Cron`] to the daemon's loop, which starts a run (processing only the gap, as any run
//! does). A fire missed while the daemon was down is run once at start-up, or skipped when the
//! trigger says `missed skip`.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{TimeZone, Timelike, Utc};
use dsl::model::{Missed, Trigger};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use super::{Daemon, Event};

/// The scheduler and the job of each cron pipeline.
pub struct Cron {
    scheduler: JobScheduler,
    jobs: HashMap<String, Uuid>,
}

impl Cron {
    pub async fn new() -> Result<Cron, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        scheduler.start().await?;
        Ok(Cron {
            scheduler,
            jobs: HashMap::new(),
        })
    }

    /// Schedules `pipeline` by its trigger, replacing its earlier job (none for other triggers).
    pub async fn set(
        &mut self,
        pipeline: &str,
        trigger: &Trigger,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        if let Some(job) = self.jobs.remove(pipeline) {
            let _ = self.scheduler.remove(&job).await;
        }
        let Trigger::Cron { expr, tz, .. } = trigger else {
            return;
        };
        let Ok(zone) = chrono_tz::Tz::from_str(tz) else {
            return; // `check` refuses unknown time zones; nothing to schedule
        };
        let events = events.clone();
        let name = pipeline.to_string();
        let job = Job::new_async_tz(with_seconds(expr), zone, move |_, _| {
            let _ = events.send(Event::Cron(name.clone()));
            Box::pin(async {})
        });
        match job {
            Ok(job) => match self.scheduler.add(job).await {
                Ok(id) => {
                    self.jobs.insert(pipeline.to_string(), id);
                }
                Err(error) => tracing::error!(pipeline, %error, "cannot schedule the cron trigger"),
            },
            Err(error) => tracing::error!(pipeline, %error, "cannot schedule the cron trigger"),
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = self.scheduler.shutdown().await;
    }
}

/// tokio-cron-scheduler wants the seconds field; a 5-field expression fires at second 0.
fn with_seconds(expr: &str) -> String {
    if expr.split_whitespace().count() == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    }
}

fn parse(expr: &str) -> Option<croner::Cron> {
    dsl::model::trigger::parse_cron(expr).ok()
}

/// When a cron trigger fires next after now (ms since the epoch).
pub fn next_fire_ms(trigger: &Trigger) -> Option<u64> {
    let Trigger::Cron { expr, tz, .. } = trigger else {
        return None;
    };
    let zone = chrono_tz::Tz::from_str(tz).ok()?;
    // From the current whole second: croner keeps the sub-second part of the time it starts at.
    let now = zone.from_utc_datetime(&Utc::now().naive_utc().with_nanosecond(0)?);
    let next = parse(expr)?.find_next_occurrence(&now, false).ok()?;
    u64::try_from(next.timestamp_millis()).ok()
}

/// Fires, once each, the cron pipelines that should have fired while the daemon was down: their
/// latest scheduled time is after their latest cron run started. A pipeline that never ran
/// from cron has missed nothing.
pub fn fire_missed(daemon: &Arc<Daemon>) {
    let pipelines: Vec<_> = daemon
        .registry
        .lock()
        .expect("registry lock")
        .pipelines()
        .collect();
    for (_, pipeline) in pipelines {
        let Trigger::Cron { expr, tz, missed } = &pipeline.trigger else {
            continue;
        };
        let Some(last_run) = last_cron_run_ms(daemon, &pipeline.name) else {
            continue;
        };
        let (Some(cron), Ok(zone)) = (parse(expr), chrono_tz::Tz::from_str(tz)) else {
            continue;
        };
        let now = zone.from_utc_datetime(&Utc::now().naive_utc());
        let Ok(previous) = cron.find_previous_occurrence(&now, false) else {
            continue;
        };
        if previous.timestamp_millis() <= last_run as i64 {
            continue;
        }
        if *missed == Missed::Skip {
            tracing::info!(pipeline = %pipeline.name, "a cron fire was missed while the daemon was down: skipped (`missed skip`)");
        } else {
            tracing::info!(pipeline = %pipeline.name, "a cron fire was missed while the daemon was down: running it once now");
            daemon.fire(&pipeline.name, "cron");
        }
    }
}

/// When the newest cron run of `pipeline` was created: its runs are read newest first, a page at
/// a time, until one is found.
fn last_cron_run_ms(daemon: &Daemon, pipeline: &str) -> Option<u64> {
    const PAGE: usize = 100;
    let mut before = None;
    loop {
        let runs = daemon.store.runs_of(pipeline, before, PAGE).ok()?;
        if let Some(run) = runs.iter().find(|r| r.trigger == "cron") {
            return Some(run.created_ms);
        }
        if runs.len() < PAGE {
            return None;
        }
        before = runs.last().map(|r| r.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_fire_at_second_zero() {
        assert_eq!(with_seconds("*/5 * * * *"), "0 */5 * * * *");
        assert_eq!(with_seconds("* * * * * *"), "* * * * * *");
    }

    #[test]
    fn the_next_fire_is_in_the_future() {
        let trigger = Trigger::Cron {
            expr: "0 2 * * *".into(),
            tz: "Europe/Paris".into(),
            missed: Default::default(),
        };
        let next = next_fire_ms(&trigger).unwrap();
        let now = crate::store::now_ms();
        assert!(
            next > now && next <= now + 24 * 3600 * 1000,
            "{next} vs {now}"
        );
        assert_eq!(next % 1000, 0, "a fire falls on a whole second: {next}");
    }
}
