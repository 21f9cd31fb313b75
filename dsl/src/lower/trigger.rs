//! Checks and lowers a pipeline's `trigger` (cron expressions and time zones, continuous
//! settings) and what the daemon does when it fires: `overlap` and `notify`.

use std::str::FromStr;

use crate::ast;
use crate::diagnostic::{Code, Diagnostic};
use crate::lower::params::duration;
use crate::lower::unknown;
use crate::model::trigger::parse_cron;
use crate::model::{Missed, Notify, Overlap, Trigger};

pub(super) fn lower_trigger(
    trigger: &ast::Trigger,
    diags: &mut Vec<Diagnostic>,
) -> Option<Trigger> {
    match trigger {
        ast::Trigger::Manual => Some(Trigger::Manual),
        ast::Trigger::Cron { expr, tz, missed } => {
            let fields = expr.value.split_whitespace().count();
            let parsed = parse_cron(&expr.value);
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
            let missed = match missed {
                Some(name) => match Missed::from_name(&name.text) {
                    Some(missed) => missed,
                    None => {
                        diags.push(unknown(
                            Code::UnknownSetting,
                            "missed-fire policy",
                            name,
                            Missed::NAMES,
                        ));
                        ok = false;
                        Missed::default()
                    }
                },
                None => Missed::default(),
            };
            ok.then(|| Trigger::Cron {
                expr: expr.value.clone(),
                tz: tz_name,
                missed,
            })
        }
        ast::Trigger::Continuous {
            cooldown,
            max_wait,
            poll,
        } => {
            let cooldown_ms = match cooldown {
                Some(q) => duration(q, diags)?,
                None => Trigger::DEFAULT_COOLDOWN_MS,
            };
            let max_wait_ms = match max_wait {
                Some(q) => Some(duration(q, diags)?),
                None => None,
            };
            if let (Some(max), Some(q)) = (max_wait_ms, max_wait) {
                if max <= cooldown_ms {
                    diags.push(
                        Diagnostic::new(
                            Code::InvalidDuration,
                            format!("the max wait `{}` is not longer than the cooldown", q.text),
                        )
                        .label(q.span, "must be longer than the cooldown")
                        .help("`max` bounds how long data waits for the whole gap to settle, e.g. `cooldown 3s max 1h`"),
                    );
                    return None;
                }
            }
            let poll_ms = match poll {
                Some(q) => duration(q, diags)?,
                None => Trigger::DEFAULT_POLL_MS,
            };
            Some(Trigger::Continuous {
                cooldown_ms,
                max_wait_ms,
                poll_ms,
            })
        }
    }
}

pub(super) fn lower_overlap(policy: &ast::Name, diags: &mut Vec<Diagnostic>) -> Option<Overlap> {
    let overlap = Overlap::from_name(&policy.text);
    if overlap.is_none() {
        diags.push(unknown(
            Code::UnknownSetting,
            "overlap policy",
            policy,
            Overlap::NAMES,
        ));
    }
    overlap
}

pub(super) fn lower_notify(notify: &ast::Notify, diags: &mut Vec<Diagnostic>) -> Option<Notify> {
    let mut ok = true;
    if let Err(problem) = check_url(&notify.url.value) {
        diags.push(
            Diagnostic::new(
                Code::InvalidUrl,
                format!("invalid webhook URL `{}`: {problem}", notify.url.value),
            )
            .label(notify.url.span, "not an http:// or https:// URL")
            .help("write the whole URL, e.g. \"https://hooks.example.org/lab\""),
        );
        ok = false;
    }
    let (mut on_success, mut on_failure) = (notify.on.is_empty(), notify.on.is_empty());
    for outcome in &notify.on {
        match outcome.text.as_str() {
            "success" => on_success = true,
            "failure" => on_failure = true,
            _ => {
                diags.push(unknown(
                    Code::UnknownSetting,
                    "run outcome",
                    outcome,
                    Notify::OUTCOMES,
                ));
                ok = false;
            }
        }
    }
    ok.then(|| Notify {
        url: notify.url.value.clone(),
        on_success,
        on_failure,
    })
}

/// Whether `url` is one the daemon can POST to: http or https, with a host.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("it does not start with http:// or https://")?;
    if url.chars().any(char::is_whitespace) {
        return Err("it contains whitespace".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() || host.starts_with(':') {
        return Err("it names no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert!(check_url("https://hooks.example.org/lab").is_ok());
        assert!(check_url("http://127.0.0.1:9000").is_ok());
        assert!(check_url("http://user:pw@host/x?y=1").is_ok());
        assert!(check_url("hooks.example.org/lab").is_err());
        assert!(check_url("ftp://example.org").is_err());
        assert!(check_url("https:///path").is_err());
        assert!(check_url("http://:80/").is_err());
        assert!(check_url("http://host/a b").is_err());
    }
}
