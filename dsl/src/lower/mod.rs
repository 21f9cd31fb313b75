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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ast::{self, PipelineItem, TopItem};
use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::model::{ParamDef, Pipeline, SourceDef};
use crate::span::Span;
use templates::TemplateTable;

/// Lowers every pipeline of `module`. Pipelines with errors are left out; the diagnostics say why.
pub(crate) fn lower_module(
    module: &ast::Module,
    templates: &TemplateTable,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Pipeline> {
    let mut names = Names::new("pipeline");
    let mut template_names = Names::new("template");
    let mut pipelines = Vec::new();
    for (item, _) in module.items.nodes() {
        match item {
            TopItem::Pipeline(pipeline) => {
                names.add(&pipeline.name, diags);
                if let Some(lowered) = lower_pipeline(pipeline, templates, diags) {
                    pipelines.push(lowered);
                }
            }
            TopItem::Template(template) => {
                template_names.add(&template.name, diags);
            }
            TopItem::Use(_) => {}
        }
    }
    pipelines
}

/// What a pipeline declares, for resolving names inside its steps.
pub(crate) struct Scope<'a> {
    /// Every declared param, including those whose declaration has errors.
    pub param_names: std::collections::HashSet<&'a str>,
    /// The params that checked, by name.
    pub params: HashMap<&'a str, ParamDef>,
    /// Group name -> the fields its groups have.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    pub sources: HashMap<&'a str, &'a ast::Source>,
    pub steps: HashMap<&'a str, &'a ast::Step>,
}

fn lower_pipeline(
    pipeline: &ast::Pipeline,
    templates: &TemplateTable,
    diags: &mut Vec<Diagnostic>,
) -> Option<Pipeline> {
    let errors_before = count_errors(diags);
    let mut trigger = None;
    let mut params: Vec<ParamDef> = Vec::new();
    let mut sources: Vec<SourceDef> = Vec::new();
    let mut names = Names::new("source or step");
    let mut param_names = Names::new("param");
    let mut scope = Scope {
        param_names: std::collections::HashSet::new(),
        params: HashMap::new(),
        groups: BTreeMap::new(),
        sources: HashMap::new(),
        steps: HashMap::new(),
    };
    let mut trigger_span: Option<Span> = None;
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
                    scope.param_names.insert(&param.name.text);
                    if let Some(def) = params::lower_param(param, diags) {
                        scope.params.insert(&param.name.text, def.clone());
                        params.push(def);
                    }
                }
            }
            PipelineItem::Source(source) => {
                if names.add(&source.name, diags) {
                    scope.sources.insert(&source.name.text, source);
                    // The group exists even if the source has errors, so its steps are not
                    // reported again for an unknown group.
                    for (item, _) in source.body.nodes() {
                        if let ast::SourceItem::Group { name, .. } = item {
                            scope.groups.entry(name.text.clone()).or_default();
                        }
                    }
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
                if names.add(&step.name, diags) {
                    scope.steps.insert(&step.name.text, step);
                }
            }
        }
    }

    // The steps and their spans side by side, each vector of exactly its length: a pipeline
    // may have a great many steps.
    let mut steps = Vec::with_capacity(scope.steps.len());
    let mut spans = Vec::with_capacity(scope.steps.len());
    let mut patterns = pattern_cache::PatternCache::default();
    for (item, span) in pipeline.body.nodes() {
        if let PipelineItem::Step(step) = item {
            if scope
                .steps
                .get(step.name.text.as_str())
                .is_some_and(|s| std::ptr::eq(*s, step))
            {
                if let Some(lowered) =
                    steps::lower_step(step, span, &scope, templates, &mut patterns, diags)
                {
                    steps.push(lowered.def);
                    spans.push(lowered.spans);
                }
            }
        }
    }

    let had_errors = count_errors(diags) > errors_before;
    let steps =
        graph::order_and_check(pipeline, &scope, steps, &spans, &params, had_errors, diags)?;
    if count_errors(diags) > errors_before {
        return None;
    }
    Some(Pipeline {
        name: pipeline.name.text.clone(),
        trigger: trigger.unwrap_or_default(),
        params,
        sources,
        steps,
    })
}

fn count_errors(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}

/// Reports names declared twice within one namespace.
pub(crate) struct Names<'a> {
    kind: &'static str,
    seen: HashMap<String, Span>,
    _marker: std::marker::PhantomData<&'a ()>,
}

impl Names<'_> {
    pub fn new(kind: &'static str) -> Self {
        Names {
            kind,
            seen: HashMap::new(),
            _marker: std::marker::PhantomData,
        }
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
