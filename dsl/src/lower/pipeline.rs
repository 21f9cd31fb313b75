//! Lowers one pipeline while the parser reads it. Each item is taken as it comes: triggers,
//! params and sources build the pipeline's [`Scope`], and a step is lowered at once when what
//! it refers to is already known, and its syntax tree dropped, so that a large pipeline's tree
//! and its lowered steps are never both whole in memory. A step that cannot be lowered cleanly
//! yet (it uses a template, or names a group, param or field not declared so far) is kept and
//! lowered when the pipeline is finished, as if every step were lowered then: the result and
//! the diagnostics are the same either way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::templates::TemplateTable;
use super::{count_errors, duplicate_setting, Names, Scope};
use super::{graph, params, pattern_cache, sources, steps, trigger};
use crate::ast::{self, PipelineItem};
use crate::diagnostic::Diagnostic;
use crate::model::{Notify, Overlap, ParamDef, Pipeline, SourceDef, StepDef, Trigger};
use crate::parser::PipelineReader;
use crate::span::Span;

/// A pipeline being lowered, item by item.
pub(crate) struct PipelineLowering {
    pub name: ast::Name,
    /// What lowering the items reported, kept until [`PipelineLowering::finish`] so that the
    /// diagnostics come in the order they would if the whole pipeline were lowered then.
    diags: Vec<Diagnostic>,
    trigger: Option<Trigger>,
    trigger_span: Option<Span>,
    overlap: Option<Overlap>,
    overlap_span: Option<Span>,
    notify: Vec<Notify>,
    params: Vec<ParamDef>,
    param_names: Names,
    sources: Vec<SourceDef>,
    scope: Scope,
    /// The steps lowered so far, in the order declared, and their spans.
    steps: Vec<StepDef>,
    spans: steps::SpanTable,
    /// The steps left for [`PipelineLowering::finish`], each with the number of steps lowered
    /// before it was read (where it goes among them).
    deferred: Vec<(ast::Step, Span, usize)>,
    /// The items other than steps, for the warnings about unused sources and params.
    others: Vec<PipelineItem>,
    patterns: pattern_cache::PatternCache,
}

impl PipelineLowering {
    pub fn new(name: ast::Name) -> Self {
        PipelineLowering {
            name,
            diags: Vec::new(),
            trigger: None,
            trigger_span: None,
            overlap: None,
            overlap_span: None,
            notify: Vec::new(),
            params: Vec::new(),
            param_names: Names::new("param"),
            sources: Vec::new(),
            scope: Scope {
                param_names: HashSet::new(),
                params: HashMap::new(),
                groups: BTreeMap::new(),
                sources: HashMap::new(),
                sources_and_steps: Names::new("source or step"),
            },
            steps: Vec::new(),
            spans: steps::SpanTable::default(),
            deferred: Vec::new(),
            others: Vec::new(),
            patterns: pattern_cache::PatternCache::default(),
        }
    }

    /// Takes the pipeline's next item.
    pub fn item(&mut self, item: PipelineItem, span: Span) {
        let diags = &mut self.diags;
        match &item {
            PipelineItem::Step(_) => {}
            PipelineItem::Trigger(t) => {
                if let Some(first) = self.trigger_span {
                    diags.push(duplicate_setting("trigger", span, first));
                } else {
                    self.trigger_span = Some(span);
                    self.trigger = trigger::lower_trigger(t, diags);
                }
            }
            PipelineItem::Param(param) => {
                if self.param_names.add(&param.name, diags) {
                    self.scope
                        .param_names
                        .insert(Arc::from(param.name.text.as_str()));
                    if let Some(def) = params::lower_param(param, diags) {
                        self.scope
                            .params
                            .insert(param.name.text.clone(), def.clone());
                        self.params.push(def);
                    }
                }
            }
            PipelineItem::Source(source) => {
                if self.scope.sources_and_steps.add(&source.name, diags) {
                    // The group exists even if the source has errors, so its steps are not
                    // reported again for an unknown group.
                    let mut group = None;
                    for (item, _) in source.body.nodes() {
                        if let ast::SourceItem::Group { name, .. } = item {
                            self.scope.groups.entry(name.text.clone()).or_default();
                            group.get_or_insert_with(|| name.text.clone());
                        }
                    }
                    self.scope.sources.insert(source.name.text.clone(), group);
                    if let Some(def) = sources::lower_source(source, span, diags) {
                        if let Some(grouping) = &def.grouping {
                            self.scope
                                .groups
                                .entry(grouping.group.clone())
                                .or_default()
                                .extend(grouping.fields());
                        }
                        self.sources.push(def);
                    }
                }
            }
            PipelineItem::Overlap(policy) => {
                if let Some(first) = self.overlap_span {
                    diags.push(duplicate_setting("overlap", span, first));
                } else {
                    self.overlap_span = Some(span);
                    self.overlap = trigger::lower_overlap(policy, diags);
                }
            }
            PipelineItem::Notify(hook) => self.notify.extend(trigger::lower_notify(hook, diags)),
        }
        match item {
            PipelineItem::Step(step) => {
                // Only the first declaration of a name is lowered.
                if self
                    .scope
                    .sources_and_steps
                    .add(&step.name, &mut self.diags)
                {
                    self.step(step, span);
                }
            }
            other => self.others.push(other),
        }
    }

    /// Lowers `step` now if it lowers cleanly with what is known so far; else keeps it.
    fn step(&mut self, step: ast::Step, span: Span) {
        // Known so far means known for good: a later item only adds names, groups and fields.
        // But a step whose group is not declared yet skips checks that need its fields.
        let ready = step.using.is_none()
            && step
                .each
                .as_ref()
                .is_none_or(|group| self.scope.groups.contains_key(&group.text));
        if ready {
            let mut reported = Vec::new();
            let lowered = steps::lower_step(
                &step,
                span,
                &self.scope,
                &TemplateTable::default(),
                &mut self.patterns,
                &mut reported,
            );
            if let (Some(lowered), true) = (lowered, reported.is_empty()) {
                self.keep(lowered);
                return;
            }
        }
        self.deferred.push((step, span, self.steps.len()));
    }

    fn keep(&mut self, lowered: steps::LoweredStep) {
        self.spans.push(&lowered);
        self.steps.push(lowered.def);
    }

    /// Lowers the steps left, with `templates`, and checks the steps as a graph. `None` if the
    /// pipeline has errors; every diagnostic goes to `diags`.
    pub fn finish(
        mut self,
        templates: &TemplateTable,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Pipeline> {
        let errors_before = count_errors(diags);
        diags.append(&mut self.diags);

        // The deferred steps that lower go after the others, then every step to its place.
        let lowered_before = self.steps.len();
        let mut places = Vec::new();
        for (step, span, place) in std::mem::take(&mut self.deferred) {
            if let Some(lowered) = steps::lower_step(
                &step,
                span,
                &self.scope,
                templates,
                &mut self.patterns,
                diags,
            ) {
                self.keep(lowered);
                places.push(place);
            }
        }
        if !places.is_empty() {
            let order = declaration_order(lowered_before, &places);
            graph::reorder(&mut self.steps, &order);
            graph::reorder(&mut self.spans.steps, &order);
        }
        self.steps.shrink_to_fit();
        self.spans.shrink_to_fit();

        let had_errors = count_errors(diags) > errors_before;
        let steps = graph::order_and_check(
            &self.others,
            &self.scope,
            self.steps,
            &self.spans,
            &self.params,
            had_errors,
            diags,
        )?;
        if count_errors(diags) > errors_before {
            return None;
        }
        Some(Pipeline {
            name: self.name.text,
            trigger: self.trigger.unwrap_or_default(),
            params: self.params,
            sources: self.sources,
            steps,
            overlap: self.overlap.unwrap_or_default(),
            notify: self.notify,
        })
    }
}

/// The order that puts steps back in the order declared, when the first `lowered_before` were
/// lowered as they were read and the rest later, the k-th of them declared after
/// `places[k]` of the first (`places` ascending).
fn declaration_order(lowered_before: usize, places: &[usize]) -> Vec<usize> {
    let mut order = Vec::with_capacity(lowered_before + places.len());
    let mut next = 0;
    for (k, &place) in places.iter().enumerate() {
        order.extend(next..place);
        next = place;
        order.push(lowered_before + k);
    }
    order.extend(next..lowered_before);
    order
}

/// The pipelines of a file, each lowered as the parser reads it.
impl PipelineReader for Vec<PipelineLowering> {
    fn start(&mut self, name: ast::Name, _opened_at: usize) {
        self.push(PipelineLowering::new(name));
    }

    fn comment(&mut self, _text: &str, _span: Span, _raw: &str) {}

    fn item(&mut self, _text: &str, span: Span, item: PipelineItem) {
        if let Some(pipeline) = self.last_mut() {
            pipeline.item(item, span);
        }
    }

    fn end(&mut self) -> Option<ast::Pipeline> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::declaration_order;
    use crate::load_source;

    const DECLARATIONS: &str = r#"
  param n: int = 3
  source reads {
    root "data"
    glob "*.fq"
    group sample by regex "(?P<sample>S\d+)_(?P<lane>L\d)"
  }
"#;

    const STEPS: &str = r#"
  step first each sample {
    input reads
    when group.lane == "L1"
    run "count {params.n} {group.sample} {inputs} > {out}/n"
  }
  step second {
    input first
    run "cat {inputs} > {out}/all"
  }
"#;

    #[test]
    fn steps_before_what_they_name_lower_as_after_it() {
        let before = load_source("a.pipe", format!("pipeline p {{{STEPS}{DECLARATIONS}}}"));
        let after = load_source("b.pipe", format!("pipeline p {{{DECLARATIONS}{STEPS}}}"));
        assert!(before.is_valid(), "{:?}", before.diagnostics);
        assert_eq!(before.pipelines, after.pipelines);
        assert!(before.pipelines[0].steps[0].when.is_some());
    }

    #[test]
    fn a_field_of_a_group_declared_later_is_checked() {
        let steps = STEPS.replace("group.sample}", "group.plate}");
        let loaded = load_source("a.pipe", format!("pipeline p {{{steps}{DECLARATIONS}}}"));
        let messages: Vec<&str> = loaded
            .diagnostics
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(messages, ["group `sample` has no field `plate`"]);
    }

    #[test]
    fn puts_deferred_steps_back_in_place() {
        // Lowered at once: a b c d (0..4); deferred: x before a, y between b and c, z at the end.
        assert_eq!(declaration_order(4, &[0, 2, 4]), vec![4, 0, 1, 5, 2, 3, 6]);
        assert_eq!(declaration_order(3, &[]), vec![0, 1, 2]);
        assert_eq!(declaration_order(0, &[0, 0]), vec![0, 1]);
    }
}
