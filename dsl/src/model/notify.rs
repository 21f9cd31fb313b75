//! Webhooks: who is told when a run of a pipeline ends.

use serde::{Deserialize, Serialize};

/// `notify "URL" on success, failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    /// An `http://` or `https://` URL; the run's JSON summary is POSTed to it.
    pub url: String,
    pub on_success: bool,
    pub on_failure: bool,
}

impl Notify {
    /// The outcomes `on` may name.
    pub const OUTCOMES: [&'static str; 2] = ["success", "failure"];
}
