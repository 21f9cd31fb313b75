//! How the CLI prints diagnostics: rendered with source excerpts for people (coloured only on a
//! terminal, and never with NO_COLOR set), or as JSON objects for scripts.

use std::io::IsTerminal;

use dsl::render::render_all;
use dsl::{Diagnostic, Severity, SourceMap};
use serde::Serialize;

/// Whether stderr is a terminal that wants colour.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints diagnostics to stderr for a person.
pub fn print_diagnostics(diagnostics: &[Diagnostic], sources: &SourceMap) {
    if !diagnostics.is_empty() {
        eprint!("{}", render_all(diagnostics, sources, stderr_color()));
    }
}

/// A diagnostic as `engine check --json` prints it.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub code: &'static str,
    pub severity: &'static str,
    pub message: String,
    pub help: Option<String>,
    pub labels: Vec<JsonLabel>,
}

#[derive(Debug, Serialize)]
pub struct JsonLabel {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub message: String,
}

impl JsonDiagnostic {
    pub fn new(diagnostic: &Diagnostic, sources: &SourceMap) -> JsonDiagnostic {
        let labels: Vec<JsonLabel> = diagnostic
            .labels
            .iter()
            .map(|label| {
                let (line, column) = sources.line_col(label.span.file, label.span.start());
                let (end_line, end_column) = sources.line_col(label.span.file, label.span.end());
                JsonLabel {
                    file: sources.path(label.span.file).display().to_string(),
                    line,
                    column,
                    end_line,
                    end_column,
                    message: label.message.clone(),
                }
            })
            .collect();
        let (file, line, column) = labels
            .first()
            .map(|l| (l.file.clone(), l.line, l.column))
            .unwrap_or_default();
        JsonDiagnostic {
            file,
            line,
            column,
            code: diagnostic.code.as_str(),
            severity: match diagnostic.severity() {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            message: diagnostic.message.clone(),
            help: diagnostic.help.clone(),
            labels,
        }
    }
}
