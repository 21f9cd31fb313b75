//! Pest pairs to syntax tree: one unit's pairs at a time (see `Reader`), with
//! positions made absolute, strings unescaped, and for each block entry whether a blank line
//! stood before it and whether a comment trails a line.

use pest::iterators::{Pair, Pairs};
use pest::Token;

use super::Rule;
use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic};
use crate::span::{FileId, Span};

/// The entries of a block, added one at a time as they are parsed.
pub(super) struct BlockBuilder<T> {
    entries: Vec<Entry<T>>,
    /// The end of the previous entry, or of the `{` that opened the block (`None` at the top
    /// of a file before the first entry).
    previous_end: Option<usize>,
}

impl<T> BlockBuilder<T> {
    pub(super) fn new(opened_at: Option<usize>) -> Self {
        Self::with_capacity(opened_at, 0)
    }

    pub(super) fn with_capacity(opened_at: Option<usize>, capacity: usize) -> Self {
        BlockBuilder {
            entries: Vec::with_capacity(capacity),
            previous_end: opened_at,
        }
    }

    pub(super) fn comment(&mut self, builder: &TreeBuilder<'_>, pair: &Pair<'_, Rule>) {
        self.comment_at(builder.text, builder.span(pair), pair.as_str());
    }

    /// A comment written as `raw` at `span` in `text`.
    pub(super) fn comment_at(&mut self, text: &str, span: Span, raw: &str) {
        let gap = &text[self.previous_end.unwrap_or(0)..span.start()];
        let trailing = self.previous_end.is_some() && !gap.contains('\n');
        let comment = Comment {
            text: raw.trim_end().to_string(),
            trailing,
        };
        self.push(text, span, Item::Comment(comment));
    }

    pub(super) fn node(&mut self, text: &str, span: Span, node: T) {
        self.push(text, span, Item::Node(node));
    }

    fn push(&mut self, text: &str, span: Span, item: Item<T>) {
        let gap = &text[self.previous_end.unwrap_or(0)..span.start()];
        let blank_line_before = self.previous_end.is_some()
            && !self.entries.is_empty()
            && gap.bytes().filter(|&b| b == b'\n').nth(1).is_some();
        self.entries.push(Entry {
            span,
            blank_line_before,
            item,
        });
        self.previous_end = Some(span.end());
    }

    /// The block, holding no more memory than its entries need: a pipeline of many steps
    /// is read entry by entry, and doubling leaves up to half of its vector unused.
    pub(super) fn finish(mut self) -> Block<T> {
        self.entries.shrink_to_fit();
        Block {
            entries: self.entries,
        }
    }
}

/// How deeply a `when` condition may nest parentheses and `not`s.
pub const MAX_CONDITION_DEPTH: usize = 64;

/// Turns the pairs of one unit into syntax tree.
pub(super) struct TreeBuilder<'t> {
    pub(super) file: FileId,
    pub(super) text: &'t str,
    /// Where in `text` the input of the pairs being built starts.
    pub(super) offset: usize,
    /// Numbers too large for their type, reported together once the file is read.
    pub(super) errors: Vec<Diagnostic>,
}

impl<'t> TreeBuilder<'t> {
    /// The span of a pair, without the whitespace pest's implicit skipping leaves at its end
    /// when an optional tail (`as alias`, a constraint, a step body...) is absent.
    pub(super) fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let start = self.start(pair);
        let end = start + pair.as_str().trim_end().len();
        Span::new(self.file, start, end)
    }

    /// Where a pair starts in the file.
    pub(super) fn start(&self, pair: &Pair<'_, Rule>) -> usize {
        self.offset + pair.as_span().start()
    }

    /// Builds block entries from `pairs`, treating `comment` pairs as comments and handing
    /// every other pair to `node`. `opened_at` is the end of the `{` that opened the block.
    pub(super) fn block<T>(
        &mut self,
        pairs: Pairs<'_, Rule>,
        opened_at: Option<usize>,
        mut node: impl FnMut(&mut Self, Pair<'_, Rule>) -> T,
    ) -> Block<T> {
        let mut block = BlockBuilder::with_capacity(opened_at, pairs.len());
        for pair in pairs {
            if pair.as_rule() == Rule::comment {
                block.comment(self, &pair);
            } else {
                let span = self.span(&pair);
                let item = node(self, pair);
                block.node(self.text, span, item);
            }
        }
        block.finish()
    }

    pub(super) fn top_item(&mut self, pair: Pair<'_, Rule>) -> TopItem {
        match pair.as_rule() {
            Rule::use_decl => TopItem::Use(self.use_decl(pair)),
            Rule::template_decl => TopItem::Template(self.template(pair)),
            rule => unreachable!("top-level rule {rule:?}"),
        }
    }

    fn use_decl(&mut self, pair: Pair<'_, Rule>) -> Use {
        let mut target = None;
        let mut alias = None;
        for inner in pair.into_inner() {
            match inner.as_rule() {
                Rule::string => target = Some(UseTarget::Path(self.string(inner))),
                Rule::ident if target.is_none() => {
                    target = Some(UseTarget::Stdlib(self.name(inner)))
                }
                Rule::ident => alias = Some(self.name(inner)),
                _ => {}
            }
        }
        Use {
            target: target.expect("grammar: use has a target"),
            alias,
        }
    }

    fn template(&mut self, pair: Pair<'_, Rule>) -> Template {
        let outer = pair.clone();
        let mut inner = pair.into_inner();
        inner.next(); // template
        let name = self.name(inner.next().expect("grammar: template name"));
        let params = inner
            .next()
            .expect("grammar: template params")
            .into_inner()
            .map(|param| {
                let mut parts = param.into_inner();
                let name = self.name(parts.next().expect("grammar: param name"));
                let default = parts.next().map(|value| self.value(value));
                TemplateParam { name, default }
            })
            .collect();
        let body = self.braced_after(&outer, inner, TreeBuilder::step_item);
        Template { name, params, body }
    }

    /// A block whose `{` is the first one after the pairs consumed so far.
    fn braced_after<T>(
        &mut self,
        owner: &Pair<'_, Rule>,
        rest: Pairs<'_, Rule>,
        node: impl FnMut(&mut Self, Pair<'_, Rule>) -> T,
    ) -> Block<T> {
        let owner_start = self.start(owner);
        let search_from = rest
            .peek()
            .map_or(owner_start + owner.as_str().len(), |first| {
                self.start(&first)
            });
        let head = &self.text[owner_start..search_from];
        let open = head.rfind('{').map(|i| owner_start + i + 1);
        self.block(rest, open, node)
    }

    pub(super) fn pipeline_item(&mut self, pair: Pair<'_, Rule>) -> PipelineItem {
        match pair.as_rule() {
            Rule::trigger => PipelineItem::Trigger(self.trigger(pair)),
            Rule::param_decl => PipelineItem::Param(Box::new(self.param(pair))),
            Rule::source_decl => PipelineItem::Source(self.source(pair)),
            Rule::step_decl => PipelineItem::Step(self.step(pair)),
            Rule::overlap_decl => {
                let policy = pair.into_inner().nth(1).expect("grammar: overlap policy");
                PipelineItem::Overlap(self.name(policy))
            }
            Rule::notify_decl => {
                let mut inner = pair.into_inner().skip(1);
                let url = self.string(inner.next().expect("grammar: notify url"));
                let on = inner
                    .filter(|p| p.as_rule() == Rule::ident)
                    .map(|p| self.name(p))
                    .collect();
                PipelineItem::Notify(Box::new(Notify { url, on }))
            }
            rule => unreachable!("pipeline item {rule:?}"),
        }
    }

    fn trigger(&mut self, pair: Pair<'_, Rule>) -> Trigger {
        let kind = pair.into_inner().nth(1).expect("grammar: trigger kind");
        match kind.as_rule() {
            Rule::trigger_manual => Trigger::Manual,
            Rule::trigger_cron => {
                let mut expr = None;
                let mut tz = None;
                let mut missed = None;
                for part in kind.into_inner() {
                    match part.as_rule() {
                        Rule::string if expr.is_none() => expr = Some(self.string(part)),
                        Rule::string => tz = Some(self.string(part)),
                        Rule::ident => missed = Some(self.name(part)),
                        _ => {}
                    }
                }
                let expr = expr.expect("grammar: cron expression");
                Trigger::Cron { expr, tz, missed }
            }
            Rule::trigger_continuous => {
                let mut cooldown = None;
                let mut max_wait = None;
                let mut poll = None;
                let mut last_keyword = Rule::kw_continuous;
                for part in kind.into_inner() {
                    match part.as_rule() {
                        Rule::quantity if last_keyword == Rule::kw_cooldown => {
                            cooldown = Some(self.quantity(part))
                        }
                        Rule::quantity if last_keyword == Rule::kw_max => {
                            max_wait = Some(self.quantity(part))
                        }
                        Rule::quantity => poll = Some(self.quantity(part)),
                        keyword => last_keyword = keyword,
                    }
                }
                Trigger::Continuous {
                    cooldown,
                    max_wait,
                    poll,
                }
            }
            rule => unreachable!("trigger {rule:?}"),
        }
    }

    fn param(&mut self, pair: Pair<'_, Rule>) -> Param {
        let mut inner = pair.into_inner();
        inner.next(); // param
        let name = self.name(inner.next().expect("grammar: param name"));
        let ty_pair = inner.next().expect("grammar: param type");
        let ty_inner = ty_pair.into_inner().next().expect("grammar: param type");
        let ty = match ty_inner.as_rule() {
            Rule::enum_type => ParamType::Enum {
                span: self.span(&ty_inner),
                members: ty_inner
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::ident)
                    .map(|p| self.name(p))
                    .collect(),
            },
            _ => ParamType::Named(self.name(ty_inner)),
        };
        let mut default = None;
        let mut constraint = None;
        for part in inner {
            match part.as_rule() {
                Rule::value => default = Some(self.value(part)),
                Rule::constraint => constraint = Some(self.constraint(part)),
                _ => {}
            }
        }
        Param {
            name,
            ty,
            default,
            constraint,
        }
    }

    fn constraint(&mut self, pair: Pair<'_, Rule>) -> Constraint {
        let inner = pair.into_inner().next().expect("grammar: constraint");
        match inner.as_rule() {
            Rule::range => {
                let span = self.span(&inner);
                let text = inner.as_str();
                let dots = text.find("..").expect("grammar: range has ..") + span.start();
                let mut min = None;
                let mut max = None;
                for number in inner.into_inner().filter(|p| p.as_rule() == Rule::number) {
                    let parsed = self.number(number);
                    if parsed.span.start() < dots {
                        min = Some(parsed);
                    } else {
                        max = Some(parsed);
                    }
                }
                Constraint::Range { min, max, span }
            }
            Rule::pattern => Constraint::Matches(
                self.string(inner.into_inner().nth(1).expect("grammar: matches regex")),
            ),
            rule => unreachable!("constraint {rule:?}"),
        }
    }

    fn source(&mut self, pair: Pair<'_, Rule>) -> Source {
        let outer = pair.clone();
        let mut inner = pair.into_inner();
        inner.next(); // source
        let name = self.name(inner.next().expect("grammar: source name"));
        let body = self.braced_after(&outer, inner, TreeBuilder::source_item);
        Source { name, body }
    }

    fn source_item(&mut self, pair: Pair<'_, Rule>) -> SourceItem {
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        inner.next(); // keyword
        match rule {
            Rule::source_root => {
                SourceItem::Root(self.string(inner.next().expect("grammar: root")))
            }
            Rule::source_glob => SourceItem::Glob(inner.map(|p| self.string(p)).collect()),
            Rule::source_exclude => SourceItem::Exclude(inner.map(|p| self.string(p)).collect()),
            Rule::source_items => {
                SourceItem::Items(self.name(inner.next().expect("grammar: items")))
            }
            Rule::source_group => {
                let name = self.name(inner.next().expect("grammar: group name"));
                inner.next(); // by
                let by = inner.next().expect("grammar: group by");
                let by_rule = by.as_rule();
                let arg = by.into_inner().nth(1).expect("grammar: group argument");
                let by = match by_rule {
                    Rule::group_regex => GroupBy::Regex(self.string(arg)),
                    _ => GroupBy::Segment(self.integer(arg)),
                };
                SourceItem::Group { name, by }
            }
            rule => unreachable!("source item {rule:?}"),
        }
    }

    fn step(&mut self, pair: Pair<'_, Rule>) -> Step {
        let mut inner = pair.into_inner();
        inner.next(); // step
        let name = self.name(inner.next().expect("grammar: step name"));
        let mut each = None;
        let mut using = None;
        let mut body = None;
        for part in inner {
            match part.as_rule() {
                Rule::each_clause => {
                    each = Some(self.name(part.into_inner().nth(1).expect("grammar: each group")))
                }
                Rule::using_clause => using = Some(Box::new(self.using(part))),
                Rule::step_body => {
                    let start = self.start(&part) + 1;
                    body = Some(self.block(part.into_inner(), Some(start), TreeBuilder::step_item));
                }
                rule => unreachable!("step part {rule:?}"),
            }
        }
        Step {
            name,
            each,
            using,
            body,
        }
    }

    fn using(&mut self, pair: Pair<'_, Rule>) -> Using {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        inner.next(); // using
        let template = self.name(inner.next().expect("grammar: template reference"));
        let args = inner
            .next()
            .expect("grammar: call args")
            .into_inner()
            .map(|arg| {
                let mut parts: Vec<_> = arg.into_inner().collect();
                let value = self.value(parts.pop().expect("grammar: argument value"));
                let name = parts.pop().map(|name| self.name(name));
                CallArg { name, value }
            })
            .collect();
        Using {
            template,
            args,
            span,
        }
    }

    fn step_item(&mut self, pair: Pair<'_, Rule>) -> StepItem {
        let rule = pair.as_rule();
        let outer = pair.clone();
        let mut inner = pair.into_inner();
        inner.next(); // keyword
        let mut next = || inner.next().expect("grammar: step setting argument");
        match rule {
            Rule::step_input => StepItem::Input(self.names(outer)),
            Rule::step_after => StepItem::After(self.names(outer)),
            Rule::step_when => StepItem::When(Box::new(self.condition(next()))),
            Rule::step_run => StepItem::Run(self.string(next())),
            Rule::step_output => {
                let mut patterns = outer.into_inner();
                patterns.next(); // keyword
                StepItem::Output(exactly(patterns.map(|p| self.string(p))))
            }
            Rule::step_retries => StepItem::Retries(self.integer(next())),
            Rule::step_backoff => {
                let first = next();
                if first.as_rule() == Rule::backoff_kind {
                    let kind = match first.into_inner().next().map(|k| k.as_rule()) {
                        Some(Rule::kw_fixed) => BackoffKind::Fixed,
                        _ => BackoffKind::Exponential,
                    };
                    let delay = self.quantity(next());
                    StepItem::Backoff {
                        kind: Some(kind),
                        delay,
                    }
                } else {
                    StepItem::Backoff {
                        kind: None,
                        delay: self.quantity(first),
                    }
                }
            }
            Rule::step_timeout => StepItem::Timeout(self.quantity(next())),
            Rule::step_cooldown => StepItem::Cooldown(self.quantity(next())),
            Rule::step_priority => StepItem::Priority(self.integer(next())),
            Rule::step_concurrency => StepItem::Concurrency(self.integer(next())),
            Rule::step_container => StepItem::Container(self.string(next())),
            Rule::step_env => {
                let open = outer.as_str().find('{').map(|i| self.start(&outer) + i + 1);
                let mut items = outer.into_inner();
                items.next();
                StepItem::Env(self.block(items, open, |b, var| {
                    let mut parts = var.into_inner();
                    let name = b.name(parts.next().expect("grammar: env name"));
                    let value = b.string(parts.next().expect("grammar: env value"));
                    EnvVar { name, value }
                }))
            }
            Rule::step_resources => {
                let open = outer.as_str().find('{').map(|i| self.start(&outer) + i + 1);
                let mut items = outer.into_inner();
                items.next();
                StepItem::Resources(self.block(items, open, TreeBuilder::resource))
            }
            Rule::step_executor => {
                let name = self.name(next());
                let has_block = outer.as_str().contains('{');
                let settings = has_block.then(|| {
                    let open = outer.as_str().find('{').map(|i| self.start(&outer) + i + 1);
                    let mut items = outer.into_inner();
                    items.next();
                    items.next();
                    self.block(items, open, |b, setting| {
                        let mut parts = setting.into_inner();
                        let name = b.name(parts.next().expect("grammar: setting name"));
                        let value = b.string(parts.next().expect("grammar: setting value"));
                        ExecutorSetting { name, value }
                    })
                });
                StepItem::Executor { name, settings }
            }
            rule => unreachable!("step item {rule:?}"),
        }
    }

    fn resource(&mut self, pair: Pair<'_, Rule>) -> Resource {
        let mut inner = pair.into_inner();
        let keyword = inner.next().expect("grammar: resource keyword");
        let arg = inner.next().expect("grammar: resource value");
        match keyword.as_rule() {
            Rule::kw_cpus => Resource::Cpus(self.integer(arg)),
            Rule::kw_gpus => Resource::Gpus(self.integer(arg)),
            Rule::kw_memory => Resource::Memory(self.quantity(arg)),
            _ => Resource::Time(self.quantity(arg)),
        }
    }

    /// The names after the keyword of `input` or `after`.
    fn names(&mut self, pair: Pair<'_, Rule>) -> Vec<Name> {
        let mut names = pair.into_inner();
        names.next(); // keyword
        exactly(names.map(|p| self.name(p)))
    }

    /// A `when` condition, unless it nests deeper than [`MAX_CONDITION_DEPTH`]: the tree and
    /// every pass over it are recursive, so depth is bounded before anything recurses. Too deep
    /// a condition is an error and stands as an empty one.
    fn condition(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let mut depth = 0usize;
        let mut deepest = (0usize, 0usize);
        for token in pair.clone().tokens() {
            match token {
                Token::Start {
                    rule: Rule::expr | Rule::negation,
                    pos,
                } => {
                    depth += 1;
                    if depth > deepest.0 {
                        deepest = (depth, pos.pos());
                    }
                }
                Token::End {
                    rule: Rule::expr | Rule::negation,
                    ..
                } => {
                    depth -= 1;
                }
                _ => {}
            }
        }
        // The condition itself is the outermost `expr`; what is inside it nests.
        let levels = deepest.0.saturating_sub(1);
        if levels > MAX_CONDITION_DEPTH {
            let at = self.offset + deepest.1;
            self.errors.push(
                Diagnostic::new(
                    Code::Syntax,
                    format!(
                        "this condition nests {levels} levels deep; the most is {MAX_CONDITION_DEPTH}"
                    ),
                )
                .label(Span::new(self.file, at, at + 1), "too deep from here")
                .help("write it with fewer parentheses and `not`s: `not (a or b)` is `not a and not b`"),
            );
            return Expr::And(Vec::new());
        }
        self.expr(pair)
    }

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        match pair.as_rule() {
            Rule::expr => self.expr(pair.into_inner().next().expect("grammar: expr")),
            Rule::or_expr | Rule::and_expr => {
                let is_or = pair.as_rule() == Rule::or_expr;
                let mut operands: Vec<Expr> = pair
                    .into_inner()
                    .filter(|p| !matches!(p.as_rule(), Rule::kw_or | Rule::kw_and))
                    .map(|p| self.expr(p))
                    .collect();
                if operands.len() == 1 {
                    operands.pop().expect("one operand")
                } else if is_or {
                    Expr::Or(operands)
                } else {
                    Expr::And(operands)
                }
            }
            Rule::not_expr => self.expr(pair.into_inner().next().expect("grammar: not_expr")),
            Rule::negation => Expr::Not(Box::new(
                self.expr(pair.into_inner().nth(1).expect("grammar: negated expr")),
            )),
            Rule::comparison => {
                let span = self.span(&pair);
                let mut inner = pair.into_inner();
                let field_pair = inner.next().expect("grammar: field");
                let field_span = self.span(&field_pair);
                let (scope, name) = field_pair
                    .as_str()
                    .split_once('.')
                    .expect("grammar: field has a dot");
                let dot = field_span.start() + scope.len();
                let field = FieldRef {
                    scope: Name {
                        text: scope.to_string(),
                        span: Span::new(self.file, field_span.start(), dot),
                    },
                    name: Name {
                        text: name.to_string(),
                        span: Span::new(self.file, dot + 1, field_span.end()),
                    },
                    span: field_span,
                };
                let test = inner.next().map(|op| {
                    let op = match op.as_str() {
                        "==" => CmpOp::Eq,
                        "!=" => CmpOp::Ne,
                        "~" => CmpOp::Matches,
                        "!~" => CmpOp::NotMatches,
                        "<" => CmpOp::Lt,
                        "<=" => CmpOp::Le,
                        ">" => CmpOp::Gt,
                        _ => CmpOp::Ge,
                    };
                    (
                        op,
                        self.value(inner.next().expect("grammar: compared value")),
                    )
                });
                Expr::Compare { field, test, span }
            }
            rule => unreachable!("expression {rule:?}"),
        }
    }

    fn value(&mut self, pair: Pair<'_, Rule>) -> Value {
        let span = self.span(&pair);
        let inner = pair.into_inner().next().expect("grammar: value");
        let kind = match inner.as_rule() {
            Rule::string => ValueKind::Str(self.string(inner)),
            Rule::quantity => ValueKind::Quantity(inner.as_str().to_string()),
            Rule::number => ValueKind::Number(inner.as_str().to_string()),
            Rule::boolean => ValueKind::Bool(inner.as_str() == "true"),
            _ => ValueKind::Ident(inner.as_str().to_string()),
        };
        Value { kind, span }
    }

    pub(super) fn name(&self, pair: Pair<'_, Rule>) -> Name {
        Name {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn quantity(&self, pair: Pair<'_, Rule>) -> Quantity {
        Quantity {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn number(&self, pair: Pair<'_, Rule>) -> Number {
        Number {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn integer(&mut self, pair: Pair<'_, Rule>) -> Integer {
        let span = self.span(&pair);
        let value = pair.as_str().parse().unwrap_or_else(|_| {
            self.errors.push(
                Diagnostic::new(
                    Code::InvalidNumber,
                    format!("`{}` is too large", pair.as_str()),
                )
                .label(span, "does not fit in a 64-bit integer"),
            );
            0
        });
        Integer { value, span }
    }

    fn string(&self, pair: Pair<'_, Rule>) -> Str {
        let span = self.span(&pair);
        let raw = pair.as_str();
        if let Some(body) = raw
            .strip_prefix("\"\"\"")
            .and_then(|r| r.strip_suffix("\"\"\""))
        {
            return Str {
                value: body.to_string(),
                triple: true,
                span,
            };
        }
        let mut rest = &raw[1..raw.len() - 1];
        let mut value = String::with_capacity(rest.len());
        // Copy the runs between backslashes as they are, and unescape what each one starts.
        while let Some(at) = rest.find('\\') {
            value.push_str(&rest[..at]);
            let mut escaped = rest[at + 1..].chars();
            match escaped.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('\\') => value.push('\\'),
                Some('"') => value.push('"'),
                // Any other backslash is kept as written, so regexes read naturally: "\d+".
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => {}
            }
            rest = escaped.as_str();
        }
        value.push_str(rest);
        Str {
            value,
            triple: false,
            span,
        }
    }
}

/// The items in a vector of exactly their number: `collect` leaves room for at least four,
/// and a file holds a list of names or patterns per step, mostly of one.
fn exactly<T>(items: impl ExactSizeIterator<Item = T>) -> Vec<T> {
    let mut vec = Vec::with_capacity(items.len());
    vec.extend(items);
    vec
}
