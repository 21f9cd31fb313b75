//! Every kind of event the store writes, one variant each, with its payload. The store keeps an
//! event as its kind ([`EventKind`], e.g. `task.failed`) and a line of detail for people
//! ([`Event::detail`]).

use super::AttemptEnd;

/// Something that happened to a run, a task, or the store, in the order the store appends them.
#[derive(Debug, Clone, PartialEq, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(EventKind),
    derive(Hash, PartialOrd, Ord, strum::EnumIter, strum::IntoStaticStr)
)]
pub enum Event {
    // Runs.
    /// A run of `pipeline` was created, fired by `trigger`.
    #[strum_discriminants(strum(serialize = "run.created"))]
    RunCreated { pipeline: String, trigger: String },
    /// Its tasks were recorded.
    #[strum_discriminants(strum(serialize = "run.planned"))]
    RunPlanned { tasks: usize },
    #[strum_discriminants(strum(serialize = "run.started"))]
    RunStarted { tasks: usize },
    /// Someone asked for the run to stop (`engine cancel`, the API).
    #[strum_discriminants(strum(serialize = "run.cancel_requested"))]
    RunCancelRequested { by: String },
    /// Its engine is shutting down: no new task starts, running ones finish.
    #[strum_discriminants(strum(serialize = "run.stopping"))]
    RunStopping,
    /// Its engine was stopped (a signal, the end of the daemon's grace): running tasks are killed.
    #[strum_discriminants(strum(serialize = "run.stopped"))]
    RunStopped,
    /// Every task succeeded or was cached.
    #[strum_discriminants(strum(serialize = "run.succeeded"))]
    RunSucceeded,
    /// A task failed, or the run could not be planned.
    #[strum_discriminants(strum(serialize = "run.failed"))]
    RunFailed { why: String },
    #[strum_discriminants(strum(serialize = "run.cancelled"))]
    RunCancelled { why: String },
    /// Recovery found its engine process gone.
    #[strum_discriminants(strum(serialize = "run.interrupted"))]
    RunInterrupted,

    // Tasks.
    /// A completed task with the same key still has its products.
    #[strum_discriminants(strum(serialize = "task.cached"))]
    TaskCached { same_as: u64 },
    /// An attempt's command was started (`executor` says where: a pid, a SLURM job).
    #[strum_discriminants(strum(serialize = "attempt.started"))]
    AttemptStarted { number: u32, executor: String },
    /// The executor could not start the attempt.
    #[strum_discriminants(strum(serialize = "attempt.launch_failed"))]
    AttemptLaunchFailed { number: u32, error: String },
    /// An attempt ended without success.
    #[strum_discriminants(strum(serialize = "attempt.finished"))]
    AttemptFinished {
        number: u32,
        end: AttemptEnd,
        exit_code: Option<i32>,
        signal: Option<i32>,
    },
    /// Its attempt succeeded and its products are published.
    #[strum_discriminants(strum(serialize = "task.succeeded"))]
    TaskSucceeded { products: usize },
    /// Another attempt starts after the backoff.
    #[strum_discriminants(strum(serialize = "task.retry"))]
    TaskRetry { delay_ms: u64 },
    /// Its last attempt failed and no retry is left.
    #[strum_discriminants(strum(serialize = "task.failed"))]
    TaskFailed { attempts: u32 },
    /// Not run: the upstream task `by` failed.
    #[strum_discriminants(strum(serialize = "task.blocked"))]
    TaskBlocked { by: u64 },
    /// Not run: the same task (same key) failed after its retries as task `failed`, and a
    /// trigger's run waits for someone to retry it (or for its inputs, command or params to
    /// change); or it is downstream of such a task.
    #[strum_discriminants(strum(serialize = "task.held"))]
    TaskHeld { failed: u64 },
    /// Its run was cancelled while it ran or before it started.
    #[strum_discriminants(strum(serialize = "task.cancelled"))]
    TaskCancelled,
    /// Recovery found that it never ran its command.
    #[strum_discriminants(strum(serialize = "task.not_started"))]
    TaskNotStarted,
    /// Recovery found that its attempt succeeded while the engine was down, and published it.
    #[strum_discriminants(strum(serialize = "task.recovered"))]
    TaskRecovered,
    /// Recovery found that its attempt ended without success, or could not tell how it ended.
    #[strum_discriminants(strum(serialize = "attempt.lost"))]
    AttemptLost { number: u32, error: String },

    // Neither: what the engine did around runs.
    #[strum_discriminants(strum(serialize = "webhook.delivered"))]
    WebhookDelivered { detail: String },
    #[strum_discriminants(strum(serialize = "webhook.failed"))]
    WebhookFailed { detail: String },
    /// `engine gc` deleted superseded tasks and stale cache entries.
    #[strum_discriminants(strum(serialize = "gc"))]
    Gc { tasks: usize, cache_entries: usize },
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Run,
    Task,
    /// Nothing with a status: a webhook, a garbage collection.
    Neither,
}

impl EventKind {
    /// The name the store keeps, e.g. `task.failed`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn entity(self) -> Entity {
        use EventKind::*;
        match self {
            RunCreated | RunPlanned | RunStarted | RunCancelRequested | RunStopping
            | RunStopped | RunSucceeded | RunFailed | RunCancelled | RunInterrupted => Entity::Run,
            TaskCached | AttemptStarted | AttemptLaunchFailed | AttemptFinished | TaskSucceeded
            | TaskRetry | TaskFailed | TaskBlocked | TaskHeld | TaskCancelled | TaskNotStarted
            | TaskRecovered | AttemptLost => Entity::Task,
            WebhookDelivered | WebhookFailed | Gc => Entity::Neither,
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.into()
    }

    /// A line for people: what the event's payload says.
    pub fn detail(&self) -> String {
        match self {
            Event::RunCreated { pipeline, trigger } => format!("{pipeline} ({trigger})"),
            Event::RunPlanned { tasks } | Event::RunStarted { tasks } => format!("{tasks} tasks"),
            Event::RunCancelRequested { by } => by.clone(),
            Event::RunStopping => "the engine is shutting down: no new task starts".to_string(),
            Event::RunStopped => "the engine was stopped: running tasks are killed".to_string(),
            Event::RunSucceeded | Event::TaskCancelled => String::new(),
            Event::RunFailed { why } | Event::RunCancelled { why } => why.clone(),
            Event::RunInterrupted => "its engine process is gone".to_string(),
            Event::TaskCached { same_as } => format!("same as task {same_as}"),
            Event::AttemptStarted { number, executor } => format!("attempt {number}, {executor}"),
            Event::AttemptLaunchFailed { number, error } | Event::AttemptLost { number, error } => {
                format!("attempt {number}: {error}")
            }
            Event::AttemptFinished {
                number,
                end,
                exit_code,
                signal,
            } => {
                let how = match (exit_code, signal) {
                    (Some(code), _) => format!(", exit {code}"),
                    (None, Some(signal)) => format!(", signal {signal}"),
                    (None, None) => String::new(),
                };
                format!("attempt {number}: {}{how}", end.as_str())
            }
            Event::TaskSucceeded { products } => format!("{products} products"),
            Event::TaskRetry { delay_ms } => format!("in {delay_ms} ms"),
            Event::TaskFailed { attempts } => format!("after {attempts} attempts"),
            Event::TaskBlocked { by } => format!("by task {by}"),
            Event::TaskHeld { failed } => {
                format!("task {failed} failed after its retries: waits for a retry by hand")
            }
            Event::TaskNotStarted => "its engine stopped before it started".to_string(),
            Event::TaskRecovered => "finished while the engine was down".to_string(),
            Event::WebhookDelivered { detail } | Event::WebhookFailed { detail } => detail.clone(),
            Event::Gc {
                tasks,
                cache_entries,
            } => format!("{tasks} tasks, {cache_entries} cache entries"),
        }
    }
}

#[cfg(test)]
impl Event {
    /// An event of `kind` with a made-up payload, for tests that drive records through the tables.
    pub fn example(kind: EventKind) -> Event {
        use EventKind as K;
        let text = || "example".to_string();
        match kind {
            K::RunCreated => Event::RunCreated {
                pipeline: text(),
                trigger: text(),
            },
            K::RunPlanned => Event::RunPlanned { tasks: 1 },
            K::RunStarted => Event::RunStarted { tasks: 1 },
            K::RunCancelRequested => Event::RunCancelRequested { by: text() },
            K::RunStopping => Event::RunStopping,
            K::RunStopped => Event::RunStopped,
            K::RunSucceeded => Event::RunSucceeded,
            K::RunFailed => Event::RunFailed { why: text() },
            K::RunCancelled => Event::RunCancelled { why: text() },
            K::RunInterrupted => Event::RunInterrupted,
            K::TaskCached => Event::TaskCached { same_as: 1 },
            K::AttemptStarted => Event::AttemptStarted {
                number: 1,
                executor: text(),
            },
            K::AttemptLaunchFailed => Event::AttemptLaunchFailed {
                number: 1,
                error: text(),
            },
            K::AttemptFinished => Event::AttemptFinished {
                number: 1,
                end: AttemptEnd::Failed,
                exit_code: Some(1),
                signal: None,
            },
            K::TaskSucceeded => Event::TaskSucceeded { products: 1 },
            K::TaskRetry => Event::TaskRetry { delay_ms: 1 },
            K::TaskFailed => Event::TaskFailed { attempts: 1 },
            K::TaskBlocked => Event::TaskBlocked { by: 1 },
            K::TaskHeld => Event::TaskHeld { failed: 1 },
            K::TaskCancelled => Event::TaskCancelled,
            K::TaskNotStarted => Event::TaskNotStarted,
            K::TaskRecovered => Event::TaskRecovered,
            K::AttemptLost => Event::AttemptLost {
                number: 1,
                error: text(),
            },
            K::WebhookDelivered => Event::WebhookDelivered { detail: text() },
            K::WebhookFailed => Event::WebhookFailed { detail: text() },
            K::Gc => Event::Gc {
                tasks: 1,
                cache_entries: 1,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn every_kind_has_a_distinct_dotted_name() {
        let names: std::collections::BTreeSet<&str> =
            EventKind::iter().map(EventKind::as_str).collect();
        assert_eq!(names.len(), EventKind::iter().count());
        for kind in EventKind::iter() {
            assert_eq!(Event::example(kind).kind(), kind);
            let name = kind.as_str();
            let entity = match kind.entity() {
                Entity::Run => "run.",
                Entity::Task if name.starts_with("attempt.") => "attempt.",
                Entity::Task => "task.",
                Entity::Neither => "",
            };
            assert!(name.starts_with(entity), "{name}");
        }
    }
}
