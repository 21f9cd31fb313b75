//! Checks and lowering: from the syntax tree of a module (and the templates it can see) to
//! checked [`Pipeline`]s. Every problem becomes a [`Diagnostic`] and checking goes on, so a user
//! sees all of a file's errors at once. Each submodule owns one part of the language.

mod conditions;
mod graph;
mod params;
mod pattern_cache;
mod pipeline;
mod placeholders;
mod sources;
mod steps;
pub(crate) mod templates;
mod trigger;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::ast::{self, TopItem};
use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::model::{ParamDef, Pipeline};
use crate::span::Span;
pub(crate) use pipeline::PipelineLowering;
use templates::TemplateTable;

/// Finishes lowering `pipelines`, read from `module` (whose templates they may use).
/// Pipelines with errors are left out; the diagnostics say why.
pub(crate) fn lower_module(
    pipelines: Vec<PipelineLowering>,
    module: &ast::Module,
    templates: &TemplateTable,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Pipeline> {
    let mut template_names = Names::new("template");
    for (item, _) in module.items.nodes() {
        if let TopItem::Template(template) = item {
            template_names.add(&template.name, diags);
        }
    }
    let mut names = Names::new("pipeline");
    let mut lowered = Vec::new();
    for pipeline in pipelines {
        names.add(&pipeline.name, diags);
        if let Some(pipeline) = pipeline.finish(templates, diags) {
            lowered.push(pipeline);
        }
    }
    lowered
}

/// What a pipeline declares, for resolving names inside its steps.
pub(crate) struct Scope {
    /// Every declared param, including those whose declaration has errors.
    pub param_names: HashSet<Arc<str>>,
    /// The params that checked, by name.
    pub params: HashMap<String, ParamDef>,
    /// Group name -> the fields its groups have.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// The sources by name, with the group each declares: read from the syntax tree, so that a
    /// source with errors still has its group.
    pub sources: HashMap<String, Option<String>>,
    /// The names of the sources and steps, which share one namespace.
    pub sources_and_steps: Names,
}

impl Scope {
    /// The declared param `name`, shared; a new one if it is not declared.
    pub fn param_name(&self, name: &str) -> Arc<str> {
        self.param_names
            .get(name)
            .cloned()
            .unwrap_or_else(|| Arc::from(name))
    }

    /// Whether `name` is declared as a step.
    pub fn is_step(&self, name: &str) -> bool {
        self.sources_and_steps.contains(name) && !self.sources.contains_key(name)
    }

    /// The names of the steps, sorted.
    pub fn step_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .sources_and_steps
            .names()
            .filter(|name| !self.sources.contains_key(*name))
            .collect();
        names.sort_unstable();
        names
    }
}

fn count_errors(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}

/// Reports names declared twice within one namespace.
pub(crate) struct Names {
    kind: &'static str,
    seen: HashMap<String, Span>,
}

impl Names {
    pub fn new(kind: &'static str) -> Self {
        Names {
            kind,
            seen: HashMap::new(),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.seen.contains_key(name)
    }

    /// Every name declared, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.seen.keys().map(String::as_str)
    }

    /// Records `name`; returns false (after reporting) if it was already declared.
    pub fn add(&mut self, name: &ast::Name, diags: &mut Vec<Diagnostic>) -> bool {
        if let Some(first) = self.seen.get(&name.text) {
            diags.push(
                Diagnostic::new(
                    Code::DuplicateName,
                    format!("{} `{}` is declared twice", self.kind, name.text),
                )
                .label(name.span, "declared again here")
                .label(*first, "first declared here")
                .help("rename one of them"),
            );
            false
        } else {
            self.seen.insert(name.text.clone(), name.span);
            true
        }
    }
}

pub(crate) fn duplicate_setting(setting: &str, span: Span, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateSetting,
        format!("`{setting}` is given twice"),
    )
    .label(span, "given again here")
    .label(first, "first given here")
    .help("keep only one")
}

/// An "unknown X" diagnostic with a did-you-mean over the known names.
pub(crate) fn unknown<'a>(
    code: Code,
    what: &str,
    name: &ast::Name,
    known: impl IntoIterator<Item = &'a str> + Clone,
) -> Diagnostic {
    let mut diagnostic = Diagnostic::new(code, format!("unknown {what} `{}`", name.text))
        .label(name.span, format!("no {what} with this name"));
    let known_list: Vec<&str> = known.clone().into_iter().collect();
    if let Some(suggestion) = did_you_mean(&name.text, known) {
        diagnostic = diagnostic.help(suggestion);
    } else if !known_list.is_empty() && known_list.len() <= 12 {
        diagnostic = diagnostic.help(format!("known: {}", known_list.join(", ")));
    }
    diagnostic
}

/// The span of bytes `start..end` of a string's value, when it maps one to one onto the source.
pub(crate) fn span_in_string(s: &ast::Str, start: usize, end: usize) -> Span {
    let quote = if s.triple { 3 } else { 1 };
    let source_len = s.span.len() - 2 * quote;
    if source_len == s.value.len() {
        Span::new(
            s.span.file,
            s.span.start() + quote + start,
            s.span.start() + quote + end,
        )
    } else {
        s.span
    }
}
