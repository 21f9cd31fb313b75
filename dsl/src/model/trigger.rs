//! What fires a pipeline.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Trigger {
    /// Only `engine run` or the API.
    #[default]
    Manual,
    /// A cron expression (5 fields, or 6 with seconds first) in an IANA time zone.
    Cron { expr: String, tz: String },
    /// Whenever new data has settled: a gap is acted on once its newest change is older than
    /// the cooldown; the sources are rescanned every `poll` as well as on file-system events.
    Continuous { cooldown_ms: u64, poll_ms: u64 },
}

impl Trigger {
    pub const DEFAULT_COOLDOWN_MS: u64 = 60_000;
    pub const DEFAULT_POLL_MS: u64 = 60_000;
    pub const DEFAULT_TZ: &'static str = "UTC";
}
