//! The one diagnostic type of the language: a stable code, a message, labelled spans and a help
//! line. Every error or warning about a `.pipe` file is one of these; `render` turns them into
//! text (`path:line:col`, the source line, carets, the help) for people.

use crate::span::Span;

/// The stable code of a diagnostic. docs/language.md explains each one; never reuse a code
/// for a different meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    Syntax,
    UseNotFound,
    DuplicateName,
    DuplicateSetting,
    MissingSetting,
    UnknownStep,
    UnknownGroup,
    UnknownTemplate,
    UnknownType,
    UnknownExecutor,
    UnknownSetting,
    UnknownPlaceholder,
    UnknownField,
    Cycle,
    GroupMismatch,
    TemplateArgs,
    InvalidDefault,
    InvalidConstraint,
    InvalidNumber,
    InvalidCron,
    InvalidTimezone,
    InvalidDuration,
    InvalidSize,
    InvalidRegex,
    InvalidGlob,
    InvalidUrl,
    TypeMismatch,
    UnreachableWhen,
    UnusedSource,
    UnusedParam,
}

impl Code {
    pub const ALL: [Code; 30] = [
        Code::Syntax,
        Code::UseNotFound,
        Code::DuplicateName,
        Code::DuplicateSetting,
        Code::MissingSetting,
        Code::UnknownStep,
        Code::UnknownGroup,
        Code::UnknownTemplate,
        Code::UnknownType,
        Code::UnknownExecutor,
        Code::UnknownSetting,
        Code::UnknownPlaceholder,
        Code::UnknownField,
        Code::Cycle,
        Code::GroupMismatch,
        Code::TemplateArgs,
        Code::InvalidDefault,
        Code::InvalidConstraint,
        Code::InvalidNumber,
        Code::InvalidCron,
        Code::InvalidTimezone,
        Code::InvalidDuration,
        Code::InvalidSize,
        Code::InvalidRegex,
        Code::InvalidGlob,
        Code::InvalidUrl,
        Code::TypeMismatch,
        Code::UnreachableWhen,
        Code::UnusedSource,
        Code::UnusedParam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "pipe::syntax",
            Code::UseNotFound => "pipe::use-not-found",
            Code::DuplicateName => "pipe::duplicate-name",
            Code::DuplicateSetting => "pipe::duplicate-setting",
            Code::MissingSetting => "pipe::missing-setting",
            Code::UnknownStep => "pipe::unknown-step",
            Code::UnknownGroup => "pipe::unknown-group",
            Code::UnknownTemplate => "pipe::unknown-template",
            Code::UnknownType => "pipe::unknown-type",
            Code::UnknownExecutor => "pipe::unknown-executor",
            Code::UnknownSetting => "pipe::unknown-setting",
            Code::UnknownPlaceholder => "pipe::unknown-placeholder",
            Code::UnknownField => "pipe::unknown-field",
            Code::Cycle => "pipe::cycle",
            Code::GroupMismatch => "pipe::group-mismatch",
            Code::TemplateArgs => "pipe::template-args",
            Code::InvalidDefault => "pipe::invalid-default",
            Code::InvalidConstraint => "pipe::invalid-constraint",
            Code::InvalidNumber => "pipe::invalid-number",
            Code::InvalidCron => "pipe::invalid-cron",
            Code::InvalidTimezone => "pipe::invalid-timezone",
            Code::InvalidDuration => "pipe::invalid-duration",
            Code::InvalidSize => "pipe::invalid-size",
            Code::InvalidRegex => "pipe::invalid-regex",
            Code::InvalidGlob => "pipe::invalid-glob",
            Code::InvalidUrl => "pipe::invalid-url",
            Code::TypeMismatch => "pipe::type-mismatch",
            Code::UnreachableWhen => "pipe::unreachable-when",
            Code::UnusedSource => "pipe::unused-source",
            Code::UnusedParam => "pipe::unused-param",
        }
    }

    /// Warnings are reported but do not make a file invalid.
    pub fn severity(self) -> Severity {
        match self {
            Code::UnusedSource | Code::UnusedParam => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A span with a short note shown under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// An error or warning about a `.pipe` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// The first label is the primary one: its position is the one reported as `path:line:col`.
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    pub fn label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// The span reported as the diagnostic's position.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|label| label.span)
    }
}

/// Whether any of the diagnostics is an error (as opposed to a warning).
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// "did you mean `x`?" for the closest of `candidates` to `name`, if one is close enough.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let best = candidates
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= name.len().max(candidate.len()) / 3 + 1)
        .min()?;
    Some(format!("did you mean `{}`?", best.1))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(code.as_str().starts_with("pipe::"));
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("algn", ["align", "report"]).as_deref(),
            Some("did you mean `align`?")
        );
        assert_eq!(did_you_mean("zzz", ["align", "report"]), None);
    }
}
