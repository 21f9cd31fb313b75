//! The process's one `tracing` subscriber, installed before a command runs: what the library
//! logs goes to stderr, filtered by `ENGINE_LOG` (a `tracing` filter such as `debug` or
//! `engine::exec=trace,warn`), or by the command's default when it is unset or empty.
//!
//! Interactive commands keep warnings and errors, one short line each, like the CLI's own
//! `error:` lines; `engine daemon` keeps everything from `info` up, timestamped, as text or JSON
//! (`--log-format`). The attempts' supervisor is a process of its own that writes to its engine's
//! stderr: it logs as an interactive command does, and names itself on each line.

use std::fmt;

use clap::ValueEnum;
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The environment variable holding the filter.
pub const FILTER_VAR: &str = "ENGINE_LOG";

/// How the daemon writes its log lines.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Who logs, which decides the default filter and the look of a line.
#[derive(Debug, Clone, Copy)]
pub enum Logging {
    /// A command someone (or a script) waits on: warnings and errors, as `warning: MESSAGE`.
    Interactive,
    /// `engine daemon`: from `info` up, in the format asked for.
    Daemon(LogFormat),
    /// The attempts' supervisor: as an interactive command, each line naming the supervisor.
    Supervisor,
}

impl Logging {
    /// The filter when `ENGINE_LOG` is unset or empty.
    fn default_level(self) -> LevelFilter {
        match self {
            Logging::Daemon(_) => LevelFilter::INFO,
            Logging::Interactive | Logging::Supervisor => LevelFilter::WARN,
        }
    }
}

/// Installs the subscriber for this process; a second call changes nothing. A part of
/// `ENGINE_LOG` that is not a filter directive is reported on stderr and ignored.
pub fn init(logging: Logging) {
    let filter = EnvFilter::builder()
        .with_default_directive(logging.default_level().into())
        .with_env_var(FILTER_VAR)
        .from_env_lossy();
    // A line stderr does not take is dropped: saying so on stderr would panic (`eprintln!`) in
    // the supervisor, which outlives a closed pipe with SIGPIPE ignored.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let installed = match logging {
        Logging::Interactive => builder
            .with_ansi(false)
            .event_format(Brief { who: None })
            .try_init(),
        Logging::Supervisor => builder
            .with_ansi(false)
            .event_format(Brief {
                who: Some("engine supervisor"),
            })
            .try_init(),
        Logging::Daemon(format) => {
            let builder = builder.with_ansi(super::output::stderr_color());
            match format {
                LogFormat::Text => builder.try_init(),
                LogFormat::Json => builder.json().try_init(),
            }
        }
    };
    // Only fails when a subscriber is already installed, which then stays.
    let _ = installed;
}

/// One line per event, for a person: `warning: MESSAGE key=value ...`; below `warn`, the
/// event's target after the level (`debug engine::exec::local: ...`), since such lines are read
/// to find where something happened.
struct Brief {
    /// Written after the level on every line, for a process that shares another's stderr.
    who: Option<&'static str>,
}

impl<S, N> FormatEvent<S, N> for Brief
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // A `log` record (from a dependency) names its own target, not `log`.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let level = *metadata.level();
        writer.write_str(match level {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        })?;
        if level > Level::WARN {
            write!(writer, " {}", metadata.target())?;
        }
        writer.write_str(": ")?;
        if let Some(who) = self.who {
            write!(writer, "{who}: ")?;
        }
        context.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io;
    use std::sync::{Arc, Mutex};

    /// What the subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn brief(who: Option<&'static str>, log: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("debug"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(Brief { who })
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_warning_is_its_level_and_message() {
        let text = brief(None, || {
            tracing::warn!(pgid = 12, "processes of the group survive SIGKILL");
            tracing::error!("cannot group items");
        });
        assert_eq!(
            text,
            "warning: processes of the group survive SIGKILL pgid=12\nerror: cannot group items\n"
        );
    }

    #[test]
    fn a_debug_line_names_its_target() {
        let text = brief(None, || tracing::debug!(pid = 7, "attempt started"));
        assert_eq!(
            text,
            "debug engine::cli::logging::tests: attempt started pid=7\n"
        );
    }

    #[test]
    fn the_supervisor_names_itself() {
        let text = brief(Some("engine supervisor"), || {
            tracing::error!("cannot read a request");
        });
        assert_eq!(text, "error: engine supervisor: cannot read a request\n");
    }
}
