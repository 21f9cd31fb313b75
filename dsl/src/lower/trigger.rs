//! Checks and lowers a pipeline's `trigger`: cron expressions and time zones, continuous settings.

use std::str::FromStr;

use croner::parser::{CronParser, Seconds, Year};

use crate::ast;
use crate::diagnostic::{Code, Diagnostic};
use crate::lower::params::duration;
use crate::model::Trigger;

pub(super) fn lower_trigger(
    trigger: &ast::Trigger,
    diags: &mut Vec<Diagnostic>,
) -> Option<Trigger> {
    match trigger {
        ast::Trigger::Manual => Some(Trigger::Manual),
        ast::Trigger::Cron { expr, tz } => {
            let fields = expr.value.split_whitespace().count();
            let parsed = CronParser::builder()
                .seconds(Seconds::Optional)
                .year(Year::Disallowed)
                .build()
                .parse(&expr.value);
            let mut ok = true;
            if !(5..=6).contains(&fields) || parsed.is_err() {
                let reason = match parsed {
                    Err(error) if (5..=6).contains(&fields) => error.to_string(),
                    _ => format!("it has {fields} fields"),
                };
                diags.push(
                    Diagnostic::new(Code::InvalidCron, format!("invalid cron expression `{}`: {reason}", expr.value))
                        .label(expr.span, "not a cron expression")
                        .help("write 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first, e.g. \"0 2 * * *\""),
                );
                ok = false;
            }
            let tz_name = match tz {
                Some(tz) => {
                    if chrono_tz::Tz::from_str(&tz.value).is_err() {
                        diags.push(
                            Diagnostic::new(Code::InvalidTimezone, format!("unknown time zone `{}`", tz.value))
                                .label(tz.span, "not an IANA time zone name")
                                .help("use a name from the tz database, e.g. \"Europe/Berlin\", \"America/Chicago\" or \"UTC\""),
                        );
                        ok = false;
                    }
                    tz.value.clone()
                }
                None => Trigger::DEFAULT_TZ.to_string(),
            };
            ok.then(|| Trigger::Cron {
                expr: expr.value.clone(),
                tz: tz_name,
            })
        }
        ast::Trigger::Continuous { cooldown, poll } => {
            let cooldown_ms = match cooldown {
                Some(q) => duration(q, diags)?,
                None => Trigger::DEFAULT_COOLDOWN_MS,
            };
            let poll_ms = match poll {
                Some(q) => duration(q, diags)?,
                None => Trigger::DEFAULT_POLL_MS,
            };
            Some(Trigger::Continuous {
                cooldown_ms,
                poll_ms,
            })
        }
    }
}
