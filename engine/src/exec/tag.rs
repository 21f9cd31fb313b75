//! `AttemptTag`: the name of one attempt, `TASK-N` (task id, attempt number), formatted and
//! parsed here only. It names the attempt's temporary directory, its line in the run's decided
//! and ended logs, its SLURM job's comment, and it is set in the attempt's environment, with the
//! state directory, so recovery can recognise its processes even before their pid is committed.

use std::fmt;
use std::str::FromStr;

/// Set in every attempt's environment: the state directory of the engine that started it.
pub const STATE_DIR_VAR: &str = "ENGINE_STATE_DIR";
/// Set in a supervisor's environment: the pid of the engine process it serves, so that recovery
/// waits only for the supervisors of the engines whose runs it settles.
pub const ENGINE_PID_VAR: &str = "ENGINE_PID";
/// Set in every attempt's environment: its [`AttemptTag`].
pub const ATTEMPT_VAR: &str = "ENGINE_ATTEMPT";

/// Attempt `number` of task `task`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptTag {
    pub task: u64,
    pub number: u32,
}

impl AttemptTag {
    pub fn new(task: u64, number: u32) -> AttemptTag {
        AttemptTag { task, number }
    }
}

impl fmt::Display for AttemptTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.task, self.number)
    }
}

/// A text that is not `TASK-N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an attempt tag (TASK-N)")]
pub struct BadTag(String);

impl FromStr for AttemptTag {
    type Err = BadTag;

    fn from_str(text: &str) -> Result<AttemptTag, BadTag> {
        let bad = || BadTag(text.to_string());
        let (task, number) = text.split_once('-').ok_or_else(bad)?;
        Ok(AttemptTag {
            task: task.parse().map_err(|_| bad())?,
            number: number.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_task_dash_number_parses() {
        assert_eq!("12-3".parse(), Ok(AttemptTag::new(12, 3)));
        for bad in ["", "12", "12-", "-3", "a-1", "1-b", "1-2-3", "1 -2"] {
            assert!(bad.parse::<AttemptTag>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn a_tag_reads_back_as_itself(task: u64, number: u32) {
            let tag = AttemptTag::new(task, number);
            prop_assert_eq!(tag.to_string().parse::<AttemptTag>(), Ok(tag));
        }
    }
}
