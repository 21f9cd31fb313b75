//! Checks and lowers one step: expands its template (if any), merges the template's settings
//! with the step's own (the step wins; lists are joined), reads every setting's value, and checks
//! the placeholders of `run` and `env` against what the step can see.

use std::collections::BTreeMap;

use crate::ast::{self, Resource, StepItem};
use crate::diagnostic::{Code, Diagnostic};
use crate::lower::conditions::lower_condition;
use crate::lower::params::{bounded, duration, size};
use crate::lower::pattern_cache::PatternCache;
use crate::lower::placeholders::{check_placeholders, parse_command};
use crate::lower::templates::{bind_args, TemplateTable};
use crate::lower::{duplicate_setting, unknown, Scope};
use crate::model::command::{shell_quote, CommandTemplate, Part, Placeholder};
use crate::model::sorted_map::Env;
use crate::model::step::{Backoff, Executor, ExecutorKind, Policy, Resources, StepDef};
use crate::span::Span;

/// A lowered step, and where its names were written.
pub(crate) struct LoweredStep {
    pub def: StepDef,
    pub name: Span,
    pub each: Option<Span>,
    /// One span per entry of the step's `inputs`.
    pub inputs: Vec<Span>,
    /// One span per entry of the step's `after`.
    pub after: Vec<Span>,
}

/// Where a pipeline's lowered steps were written, for the graph checks to report against:
/// `steps` in the order of the steps, and the spans of their `input` and `after` names in one
/// list, not in two small vectors for each of a great many steps.
#[derive(Default)]
pub(crate) struct SpanTable {
    pub steps: Vec<StepSpans>,
    pub names: Vec<Span>,
}

impl SpanTable {
    /// Appends the spans of `lowered`, the next step.
    pub fn push(&mut self, lowered: &LoweredStep) {
        let spans = StepSpans::keep(lowered, &mut self.names);
        self.steps.push(spans);
    }

    pub fn shrink_to_fit(&mut self) {
        self.steps.shrink_to_fit();
        self.names.shrink_to_fit();
    }
}

/// Where one lowered step's names were written (see [`SpanTable`]).
pub(crate) struct StepSpans {
    pub name: Span,
    pub each: Option<Span>,
    /// Where the spans of the step's inputs, then of its `after`, start in the table's names.
    names_at: usize,
}

impl StepSpans {
    /// Takes the spans of `lowered`, appending the spans of its names to `names`.
    fn keep(lowered: &LoweredStep, names: &mut Vec<Span>) -> StepSpans {
        let names_at = names.len();
        names.extend_from_slice(&lowered.inputs);
        names.extend_from_slice(&lowered.after);
        StepSpans {
            name: lowered.name,
            each: lowered.each,
            names_at,
        }
    }

    /// One span per entry of `def.inputs` (`def` is the step these spans are of).
    pub fn inputs<'a>(&self, def: &StepDef, names: &'a [Span]) -> &'a [Span] {
        names
            .get(self.names_at..self.names_at + def.inputs.len())
            .unwrap_or_default()
    }

    /// One span per entry of `def.after`.
    pub fn after<'a>(&self, def: &StepDef, names: &'a [Span]) -> &'a [Span] {
        let start = self.names_at + def.inputs.len();
        names
            .get(start..start + def.after.len())
            .unwrap_or_default()
    }
}

/// Where a setting came from: the step itself, or its template (with the bound arguments).
#[derive(Clone, Copy)]
enum Origin<'a> {
    Step,
    Template(&'a BTreeMap<String, String>),
}

pub(super) fn lower_step(
    step: &ast::Step,
    step_span: Span,
    scope: &Scope,
    templates: &TemplateTable<'_>,
    patterns: &mut PatternCache,
    diags: &mut Vec<Diagnostic>,
) -> Option<LoweredStep> {
    let mut settings: Vec<(&StepItem, Span, Origin<'_>)> =
        Vec::with_capacity(step.body.as_ref().map_or(0, |body| body.entries.len()));
    let args;
    if let Some(using) = &step.using {
        let template = templates.resolve(&using.template, diags)?;
        args = bind_args(template, using, diags)?;
        settings.extend(
            template
                .body
                .nodes()
                .map(|(item, span)| (item, span, Origin::Template(&args))),
        );
    }
    if let Some(body) = &step.body {
        settings.extend(body.nodes().map(|(item, span)| (item, span, Origin::Step)));
    }

    let each = step.each.as_ref().map(|g| g.text.clone());
    let mut builder = Builder::default();
    for (item, span, origin) in settings {
        builder.setting(item, span, origin, patterns, diags);
    }

    let run_setting = builder.run;
    if run_setting.is_none() {
        diags.push(
            Diagnostic::new(
                Code::MissingSetting,
                format!("step `{}` has no `run`", step.name.text),
            )
            .label(step.name.span, "this step")
            .label(step_span, "has no command")
            .help("add `run \"command\"`, or use a template with `using`"),
        );
    }

    let context = StepContext {
        step: &step.name.text,
        each: each.as_deref(),
        inputs: &builder.inputs,
        scope,
        using_span: step.using.as_ref().map(|u| u.span),
    };
    let run = run_setting.and_then(|(s, origin)| lower_command(s, origin, true, &context, diags));
    let env: Env = builder
        .env
        .iter()
        .filter_map(|(name, (value, origin))| {
            let template = lower_command(value, *origin, false, &context, diags)?;
            Some((name.to_string(), template))
        })
        .collect();
    let when = builder
        .when
        .and_then(|(expr, _)| lower_condition(expr, each.as_deref(), scope, patterns, diags));

    // The params read by the commands and the condition, sorted, each once.
    let mut used: Vec<&str> = Vec::new();
    for command in run.iter().chain(env.values()) {
        used.extend(command.params());
    }
    if let Some(condition) = &when {
        condition.params(&mut used);
    }
    used.sort_unstable();
    used.dedup();
    // A pipeline keeps every step's lists: they take only the room their items need.
    let mut params_used = Vec::with_capacity(used.len());
    params_used.extend(used.into_iter().map(|name| scope.param_name(name)));
    builder.outputs.shrink_to_fit();
    let def = StepDef {
        name: step.name.text.clone(),
        each,
        inputs: builder.inputs,
        after: builder.after,
        when: when.map(Box::new),
        // A step whose command has errors still takes part in the graph checks; the
        // pipeline as a whole is rejected for the errors already reported.
        run: run.unwrap_or_default(),
        outputs: builder.outputs,
        env,
        policy: builder.policy,
        resources: builder.resources,
        executor: builder.executor,
        container: builder.container,
        params_used,
    };
    Some(LoweredStep {
        def,
        name: step.name.span,
        each: step.each.as_ref().map(|g| g.span),
        inputs: builder.input_spans,
        after: builder.after_spans,
    })
}

/// What a step's placeholders may refer to.
pub(crate) struct StepContext<'a> {
    pub step: &'a str,
    pub each: Option<&'a str>,
    pub inputs: &'a [String],
    pub scope: &'a Scope,
    /// Set when the step uses a template: errors inside the template point here too.
    pub using_span: Option<Span>,
}

fn lower_command(
    s: &ast::Str,
    origin: Origin<'_>,
    shell: bool,
    context: &StepContext<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<CommandTemplate> {
    let command = parse_command(s, diags)?;
    let command = match origin {
        Origin::Template(args) => command.substitute(|p| match p {
            Placeholder::Arg(name) => args.get(name).map(|value| argument_part(value, shell)),
            _ => None,
        }),
        Origin::Step => command,
    };
    check_placeholders(s, &command, context, diags).then_some(command)
}

/// Accumulates a step's settings in order, reporting settings given twice by the same origin.
#[derive(Default)]
struct Builder<'a> {
    /// The single-valued settings taken so far: keyword, where, and whether from the template.
    /// A step has a handful, so a list is quicker than a map.
    seen: Vec<(&'static str, Span, bool)>,
    inputs: Vec<String>,
    /// Where each of `inputs` was written.
    input_spans: Vec<Span>,
    after: Vec<String>,
    /// Where each of `after` was written.
    after_spans: Vec<Span>,
    when: Option<(&'a ast::Expr, Span)>,
    run: Option<(&'a ast::Str, Origin<'a>)>,
    outputs: Vec<String>,
    env: BTreeMap<&'a str, (&'a ast::Str, Origin<'a>)>,
    policy: Policy,
    resources: Resources,
    executor: Executor,
    container: Option<String>,
}

impl<'a> Builder<'a> {
    /// Whether a single-valued setting may be taken: not given before by the same origin.
    fn first(
        &mut self,
        keyword: &'static str,
        span: Span,
        origin: Origin<'_>,
        diags: &mut Vec<Diagnostic>,
    ) -> bool {
        let from_template = matches!(origin, Origin::Template(_));
        let seen = self.seen.iter_mut().find(|(seen, ..)| *seen == keyword);
        match seen {
            Some((_, first, first_from_template)) if *first_from_template == from_template => {
                diags.push(duplicate_setting(keyword, span, *first));
                false
            }
            Some(seen) => {
                *seen = (keyword, span, from_template);
                true
            }
            None => {
                self.seen.push((keyword, span, from_template));
                true
            }
        }
    }

    fn setting(
        &mut self,
        item: &'a StepItem,
        span: Span,
        origin: Origin<'a>,
        patterns: &mut PatternCache,
        diags: &mut Vec<Diagnostic>,
    ) {
        let arg = |text: &str| -> String {
            match origin {
                Origin::Template(args) => substitute_args(text, args),
                Origin::Step => text.to_string(),
            }
        };
        match item {
            StepItem::Input(names) => add_names(names, &mut self.inputs, &mut self.input_spans),
            StepItem::After(names) => add_names(names, &mut self.after, &mut self.after_spans),
            StepItem::Output(globs) => {
                for glob in globs {
                    let value = arg(&glob.value);
                    if let Some(error) = patterns.glob_error(&value) {
                        diags.push(
                            Diagnostic::new(
                                Code::InvalidGlob,
                                format!("`{value}` is not a valid glob"),
                            )
                            .label(glob.span, error),
                        );
                    }
                    self.outputs.push(value);
                }
            }
            _ if !self.first(item.keyword(), span, origin, diags) => {}
            StepItem::When(expr) => self.when = Some((expr, span)),
            StepItem::Run(s) => self.run = Some((s, origin)),
            StepItem::Retries(n) => {
                if let Some(v) = bounded(n, "retries", 0, 100, diags) {
                    self.policy.retries = v as u32;
                }
            }
            StepItem::Backoff { kind, delay } => {
                if let Some(ms) = duration(delay, diags) {
                    self.policy.backoff = Backoff {
                        kind: kind.unwrap_or(ast::BackoffKind::Exponential),
                        delay_ms: ms,
                    };
                }
            }
            StepItem::Timeout(q) => self.policy.timeout_ms = duration(q, diags),
            StepItem::Cooldown(q) => self.policy.cooldown_ms = duration(q, diags),
            StepItem::Priority(n) => {
                if let Some(v) = bounded(n, "priority", -1_000_000, 1_000_000, diags) {
                    self.policy.priority = v;
                }
            }
            StepItem::Concurrency(n) => {
                self.policy.concurrency =
                    bounded(n, "concurrency", 1, 1_000_000, diags).map(|v| v as u32)
            }
            StepItem::Container(s) => self.container = Some(arg(&s.value)),
            StepItem::Env(vars) => {
                let mut seen: Vec<(&str, Span)> = Vec::new();
                for (var, var_span) in vars.nodes() {
                    if let Some(first) = first_seen(&mut seen, &var.name.text, var_span) {
                        diags.push(
                            Diagnostic::new(
                                Code::DuplicateName,
                                format!("environment variable `{}` is set twice", var.name.text),
                            )
                            .label(var.name.span, "set again here")
                            .label(first, "first set here"),
                        );
                    }
                    self.env.insert(&var.name.text, (&var.value, origin));
                }
            }
            StepItem::Resources(resources) => {
                let mut seen: Vec<(&str, Span)> = Vec::new();
                for (resource, resource_span) in resources.nodes() {
                    if let Some(first) = first_seen(&mut seen, resource.keyword(), resource_span) {
                        diags.push(duplicate_setting(resource.keyword(), resource_span, first));
                        continue;
                    }
                    match resource {
                        Resource::Cpus(n) => {
                            self.resources.cpus =
                                bounded(n, "cpus", 1, 100_000, diags).map(|v| v as u32)
                        }
                        Resource::Gpus(n) => {
                            self.resources.gpus =
                                bounded(n, "gpus", 0, 100_000, diags).map(|v| v as u32)
                        }
                        Resource::Memory(q) => self.resources.memory_bytes = size(q, diags),
                        Resource::Time(q) => self.resources.time_ms = duration(q, diags),
                    }
                }
            }
            StepItem::Executor { name, settings } => {
                let Some(kind) = ExecutorKind::from_name(&name.text) else {
                    diags.push(unknown(
                        Code::UnknownExecutor,
                        "executor",
                        name,
                        ExecutorKind::NAMES,
                    ));
                    return;
                };
                let mut given = BTreeMap::new();
                for (setting, setting_span) in settings.iter().flat_map(|block| block.nodes()) {
                    if !kind.settings().contains(&setting.name.text.as_str()) {
                        let mut d = unknown(
                            Code::UnknownSetting,
                            &format!("{} executor setting", name.text),
                            &setting.name,
                            kind.settings().iter().copied(),
                        );
                        if kind.settings().is_empty() {
                            d = d.help(format!("the {} executor takes no settings", name.text));
                        }
                        diags.push(d);
                        continue;
                    }
                    let value = arg(&setting.value.value);
                    if given.insert(setting.name.text.clone(), value).is_some() {
                        diags.push(duplicate_setting(
                            &setting.name.text,
                            setting_span,
                            setting_span,
                        ));
                    }
                }
                self.executor = Executor {
                    kind,
                    settings: given.into_iter().collect(),
                };
            }
        }
    }
}

/// Records that `name` was given at `span`; if it was given before, where it was last given.
/// The names of an `env` or `resources` block are few: a list is quicker than a map.
fn first_seen<'a>(seen: &mut Vec<(&'a str, Span)>, name: &'a str, span: Span) -> Option<Span> {
    match seen.iter_mut().find(|(seen, _)| *seen == name) {
        Some((_, last)) => Some(std::mem::replace(last, span)),
        None => {
            seen.push((name, span));
            None
        }
    }
}

/// Appends `names` to a step's list of names and their spans, keeping no spare room: the
/// list is kept for the life of the pipeline, and is mostly written on one line.
fn add_names(names: &[ast::Name], texts: &mut Vec<String>, spans: &mut Vec<Span>) {
    texts.reserve_exact(names.len());
    spans.reserve_exact(names.len());
    for name in names {
        texts.push(name.text.clone());
        spans.push(name.span);
    }
}

/// What `{args.NAME}` becomes: an argument that is exactly one placeholder (`"{params.url}"`,
/// `"{group}"`) stands for that placeholder; any other is literal text, shell-quoted in `run`.
fn argument_part(value: &str, shell: bool) -> Part {
    if let Ok(template) = CommandTemplate::parse(value) {
        let mut parts = template.parts();
        if let (Some(Part::Placeholder(p)), None) = (parts.next(), parts.next()) {
            if !matches!(p, Placeholder::Arg(_)) {
                return Part::Placeholder(p);
            }
        }
    }
    Part::Text(if shell {
        shell_quote(value)
    } else {
        value.to_string()
    })
}

/// Replaces `{args.NAME}` in a plain (non-command) string with the argument as written.
fn substitute_args(text: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in args {
        out = out.replace(&format!("{{args.{name}}}"), value);
    }
    out
}
