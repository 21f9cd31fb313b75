//! Renders diagnostics for people: `path:line:col`, the source lines with the spans underlined,
//! the labels, and the help line. Colour only when asked for (a terminal); plain text otherwise,
//! so snapshots and logs stay clean. Labels in another file, or far from the primary label, are
//! shown as related notes with an excerpt of their own.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::diagnostic::{Diagnostic, Severity};
use crate::span::{FileId, SourceMap};

/// Renders one diagnostic. `color` turns on ANSI colours.
pub fn render(diagnostic: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::none()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_context_lines(1);
    let report = Report::new(diagnostic, sources);
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        out = format!("{}: {}\n", diagnostic.code, diagnostic.message);
    }
    out
}

/// Renders several diagnostics, one after the other.
pub fn render_all(diagnostics: &[Diagnostic], sources: &SourceMap, color: bool) -> String {
    diagnostics
        .iter()
        .map(|d| render(d, sources, color))
        .collect::<Vec<_>>()
        .join("")
}

/// Labels further than this many lines from the primary one get an excerpt of their own, so a
/// diagnostic never shows the whole stretch of file between two distant places.
const NEARBY_LINES: usize = 6;

/// A diagnostic seen through miette: some of its labels, against one file's text.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    message: String,
    file: Option<FileId>,
    source: Option<NamedSource<String>>,
    /// Indices into the diagnostic's labels shown in this excerpt.
    labels: Vec<usize>,
    related: Vec<Report<'a>>,
    /// Related notes carry no code or help of their own.
    is_note: bool,
}

impl<'a> Report<'a> {
    fn new(diagnostic: &'a Diagnostic, sources: &SourceMap) -> Report<'a> {
        let primary = diagnostic.primary_span();
        let file = primary.map(|s| s.file);
        let primary_line = primary
            .map(|s| sources.line_col(s.file, s.start()).0)
            .unwrap_or(0);
        let mut main = Vec::new();
        let mut distant: Vec<(FileId, usize)> = Vec::new();
        for (i, label) in diagnostic.labels.iter().enumerate() {
            let line = sources.line_col(label.span.file, label.span.start()).0;
            if Some(label.span.file) == file && line.abs_diff(primary_line) <= NEARBY_LINES {
                main.push(i);
            } else {
                distant.push((label.span.file, i));
            }
        }
        let related = distant
            .into_iter()
            .map(|(other, i)| Report {
                diagnostic,
                message: "note".to_string(),
                file: Some(other),
                source: Some(named_source(sources, other)),
                labels: vec![i],
                related: Vec::new(),
                is_note: true,
            })
            .collect();
        Report {
            diagnostic,
            message: diagnostic.message.clone(),
            file,
            source: file.map(|f| named_source(sources, f)),
            labels: main,
            related,
            is_note: false,
        }
    }
}

fn named_source(sources: &SourceMap, file: FileId) -> NamedSource<String> {
    NamedSource::new(
        sources.path(file).display().to_string(),
        sources.text(file).to_string(),
    )
    .with_language("pipe")
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        (!self.is_note).then(|| Box::new(self.diagnostic.code) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match (self.is_note, self.diagnostic.severity()) {
            (true, _) => miette::Severity::Advice,
            (false, Severity::Error) => miette::Severity::Error,
            (false, Severity::Warning) => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        if self.is_note {
            return None;
        }
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.file?;
        let labels = self.labels.iter().map(|&i| {
            let label = &self.diagnostic.labels[i];
            let span = SourceSpan::new(label.span.start().into(), label.span.len());
            if i == 0 {
                LabeledSpan::new_primary_with_span(Some(label.message.clone()), span)
            } else {
                LabeledSpan::new_with_span(Some(label.message.clone()), span)
            }
        });
        Some(Box::new(labels))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}
