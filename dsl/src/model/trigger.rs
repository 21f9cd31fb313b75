//! What fires a pipeline.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Trigger {
    /// Only `engine run` or the API.
    #[default]
    Manual,
    /// A cron expression (5 fields, or 6 with seconds first) in an IANA time zone.
    Cron {
        expr: String,
        tz: String,
        /// Left out of the canonical form when it is the default, so pipelines written before
        /// the setting existed keep their definition hash.
        #[serde(default, skip_serializing_if = "Missed::is_default")]
        missed: Missed,
    },
    /// Whenever new data has settled: a gap is acted on once its newest change is older than
    /// the cooldown, or once an input in it has waited `max_wait` since it arrived; the sources
    /// are rescanned every `poll` as well as on file-system events.
    Continuous {
        cooldown_ms: u64,
        /// Left out of the canonical form when not set, so pipelines written before the setting
        /// existed keep their definition hash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_wait_ms: Option<u64>,
        poll_ms: u64,
    },
}

impl Trigger {
    pub const DEFAULT_COOLDOWN_MS: u64 = 60_000;
    pub const DEFAULT_POLL_MS: u64 = 60_000;
    pub const DEFAULT_TZ: &'static str = "UTC";
}

/// What becomes of a cron fire that fell while the daemon was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Missed {
    /// One run at start-up, however many fires were missed.
    #[default]
    Once,
    /// None: the next fire on schedule is the next run.
    Skip,
}

impl Missed {
    pub const NAMES: [&'static str; 2] = ["once", "skip"];

    pub fn from_name(name: &str) -> Option<Missed> {
        match name {
            "once" => Some(Missed::Once),
            "skip" => Some(Missed::Skip),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Missed::Once => "once",
            Missed::Skip => "skip",
        }
    }

    fn is_default(&self) -> bool {
        *self == Missed::default()
    }
}

/// Parses a cron expression as the engine reads every one, in `check` and in the daemon alike:
/// five fields, or six with seconds first; no year field.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(expr)
}
