//! Checks and lowering: from the syntax tree of a module (and the templates it can see) to
//! checked [`Pipeline`]s. Every problem becomes a [`Diagnostic`] and checking goes on, so a user
//! sees all of a file's errors at once. Each submodule owns one part of the language.

mod conditions;
mod graph;
mod params;
mod pattern_cache;
mod placeholders;
mod sources;
mod steps;
pub(crate) mod templates;
mod trigger;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::ast::{self, Item, PipelineItem, TopItem};
use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::model::{ParamDef, Pipeline, SourceDef};
use crate::span::Span;
use templates::TemplateTable;

/// Lowers `pipelines`, taken out of `module` (whose templates they may use). Pipelines with
/// errors are left out; the diagnostics say why.
///
/// The pipelines are taken, not borrowed, so that each step's syntax tree is freed as soon as
/// the step is lowered: a large pipeline's tree and its lowered form are never both held whole.
pub(crate) fn lower_module(
    pipelines: Vec<ast::Pipeline>,
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
        if let Some(pipeline) = lower_pipeline(pipeline, templates, diags) {
            lowered.push(pipeline);
        }
    }
    lowered
}

/// What a pipeline declares, for resolving names inside its steps.
pub(crate) struct Scope {
    /// Every declared param, including those whose declaration has errors.
    pub param_names: HashSet<String>,
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

fn lower_pipeline(
    pipeline: ast::Pipeline,
    templates: &TemplateTable,
    diags: &mut Vec<Diagnostic>,
) -> Option<Pipeline> {
    let errors_before = count_errors(diags);
    let mut trigger = None;
    let mut params: Vec<ParamDef> = Vec::new();
    let mut sources: Vec<SourceDef> = Vec::new();
    let mut param_names = Names::new("param");
    let mut scope = Scope {
        param_names: HashSet::new(),
        params: HashMap::new(),
        groups: BTreeMap::new(),
        sources: HashMap::new(),
        sources_and_steps: Names::new("source or step"),
    };
    // For each step in order, whether it is the first declaration of its name (the one lowered).
    let mut first_declarations = Vec::new();
    let mut trigger_span: Option<Span> = None;
    let mut overlap = None;
    let mut overlap_span: Option<Span> = None;
    let mut notify = Vec::new();
    for (item, span) in pipeline.body.nodes() {
        match item {
            PipelineItem::Trigger(t) => {
                if let Some(first) = trigger_span {
                    diags.push(duplicate_setting("trigger", span, first));
                } else {
                    trigger_span = Some(span);
                    trigger = trigger::lower_trigger(t, diags);
                }
            }
            PipelineItem::Param(param) => {
                if param_names.add(&param.name, diags) {
                    scope.param_names.insert(param.name.text.clone());
                    if let Some(def) = params::lower_param(param, diags) {
                        scope.params.insert(param.name.text.clone(), def.clone());
                        params.push(def);
                    }
                }
            }
            PipelineItem::Source(source) => {
                if scope.sources_and_steps.add(&source.name, diags) {
                    // The group exists even if the source has errors, so its steps are not
                    // reported again for an unknown group.
                    let mut group = None;
                    for (item, _) in source.body.nodes() {
                        if let ast::SourceItem::Group { name, .. } = item {
                            scope.groups.entry(name.text.clone()).or_default();
                            group.get_or_insert_with(|| name.text.clone());
                        }
                    }
                    scope.sources.insert(source.name.text.clone(), group);
                    if let Some(def) = sources::lower_source(source, span, diags) {
                        if let Some(grouping) = &def.grouping {
                            scope
                                .groups
                                .entry(grouping.group.clone())
                                .or_default()
                                .extend(grouping.fields());
                        }
                        sources.push(def);
                    }
                }
            }
            PipelineItem::Step(step) => {
                first_declarations.push(scope.sources_and_steps.add(&step.name, diags));
            }
            PipelineItem::Overlap(policy) => {
                if let Some(first) = overlap_span {
                    diags.push(duplicate_setting("overlap", span, first));
                } else {
                    overlap_span = Some(span);
                    overlap = trigger::lower_overlap(policy, diags);
                }
            }
            PipelineItem::Notify(hook) => notify.extend(trigger::lower_notify(hook, diags)),
        }
    }

    // The steps and their spans side by side, each vector of exactly its length: a pipeline
    // may have a great many steps. Each step's syntax tree is dropped once it is lowered; the
    // other items are kept for the warnings about unused sources and params.
    let lowered_count = first_declarations.iter().filter(|first| **first).count();
    let mut steps = Vec::with_capacity(lowered_count);
    let mut spans = Vec::with_capacity(lowered_count);
    let mut others = Vec::new();
    let mut first_declarations = first_declarations.into_iter();
    let mut patterns = pattern_cache::PatternCache::default();
    let ast::Pipeline { name, body } = pipeline;
    for entry in body.entries {
        match entry.item {
            Item::Node(PipelineItem::Step(step)) => {
                let first = first_declarations.next().unwrap_or(false);
                if first {
                    if let Some(lowered) = steps::lower_step(
                        &step,
                        entry.span,
                        &scope,
                        templates,
                        &mut patterns,
                        diags,
                    ) {
                        steps.push(lowered.def);
                        spans.push(lowered.spans);
                    }
                }
            }
            Item::Node(other) => others.push(other),
            Item::Comment(_) => {}
        }
    }

    let had_errors = count_errors(diags) > errors_before;
    let steps = graph::order_and_check(&others, &scope, steps, &spans, &params, had_errors, diags)?;
    if count_errors(diags) > errors_before {
        return None;
    }
    Some(Pipeline {
        name: name.text,
        trigger: trigger.unwrap_or_default(),
        params,
        sources,
        steps,
        overlap: overlap.unwrap_or_default(),
        notify,
    })
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
