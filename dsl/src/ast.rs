//! The syntax tree of one `.pipe` file, as written: every node keeps its span, comments and
//! blank lines are kept in the blocks they stand in (so `fmt` can reproduce them), and nothing
//! is resolved or checked yet. Checks and lowering live in `check` and `lower`.

use crate::span::Span;

/// A parsed `.pipe` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    pub items: Block<TopItem>,
}

/// The entries of a `{ ... }` block (or of a whole file): items interleaved with comments.
#[derive(Debug, Clone, PartialEq)]
pub struct Block<T> {
    pub entries: Vec<Entry<T>>,
}

impl<T> Block<T> {
    /// The items of the block, without its comments.
    pub fn nodes(&self) -> impl Iterator<Item = (&T, Span)> {
        self.entries.iter().filter_map(|entry| match &entry.item {
            Item::Node(node) => Some((node, entry.span)),
            Item::Comment(_) => None,
        })
    }
}

impl<T> Default for Block<T> {
    fn default() -> Self {
        Block {
            entries: Vec::new(),
        }
    }
}

/// One entry of a block, with what `fmt` needs to lay it out again.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<T> {
    pub span: Span,
    /// The source had at least one empty line before this entry.
    pub blank_line_before: bool,
    pub item: Item<T>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item<T> {
    Comment(Comment),
    Node(T),
}

/// `# text`, kept verbatim (including the `#`).
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub text: String,
    /// The comment ends the line of the previous entry (or of the block's `{`)
    /// instead of standing on its own line.
    pub trailing: bool,
}

/// A name: of a pipeline, step, source, param, template, group, field...
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A string literal, unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Str {
    pub value: String,
    /// Written as `"""..."""`.
    pub triple: bool,
    pub span: Span,
}

/// A number with a unit (`90s`, `8GB`), checked as a duration or a size where it is used.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Integer {
    pub value: i64,
    pub span: Span,
}

/// A number as written (`3`, `-0.5`); its type is decided where it is used.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    Str(Str),
    Quantity(String),
    Number(String),
    Bool(bool),
    /// A bare word, e.g. an enum member.
    Ident(String),
}

// ---------------------------------------------------------------- top level

#[derive(Debug, Clone, PartialEq)]
pub enum TopItem {
    Use(Use),
    Template(Template),
    Pipeline(Pipeline),
}

/// `use checksum` or `use "lib/common.pipe" as common`.
#[derive(Debug, Clone, PartialEq)]
pub struct Use {
    pub target: UseTarget,
    pub alias: Option<Name>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UseTarget {
    Stdlib(Name),
    Path(Str),
}

/// `template name(param, param = default) { step settings }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: Name,
    pub params: Vec<TemplateParam>,
    pub body: Block<StepItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateParam {
    pub name: Name,
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub name: Name,
    pub body: Block<PipelineItem>,
}

/// A pipeline holds one of these per step, so the few large and rare ones are boxed.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineItem {
    Trigger(Trigger),
    Param(Box<Param>),
    Source(Source),
    Step(Step),
    /// `overlap skip|queue|allow`.
    Overlap(Name),
    Notify(Box<Notify>),
}

/// `notify "URL" on success, failure`: a webhook for the pipeline's finished runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    pub url: Str,
    /// The outcomes named after `on`; none means every outcome.
    pub on: Vec<Name>,
}

// ---------------------------------------------------------------- triggers and params

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Manual,
    Cron {
        expr: Str,
        tz: Option<Str>,
        /// `missed once|skip`: what a fire missed while the daemon was down becomes.
        missed: Option<Name>,
    },
    Continuous {
        cooldown: Option<Quantity>,
        /// `cooldown 3s max 1h`: the longest an input waits for the gap to settle.
        max_wait: Option<Quantity>,
        poll: Option<Quantity>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Name,
    pub ty: ParamType,
    pub default: Option<Value>,
    pub constraint: Option<Constraint>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParamType {
    /// `int`, `float`, `string`, `bool`, `path`, `duration`, `size` (or a misspelling of one).
    Named(Name),
    Enum {
        members: Vec<Name>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// `in min..max`, both ends inclusive and optional.
    Range {
        min: Option<Number>,
        max: Option<Number>,
        span: Span,
    },
    /// `matches "regex"`.
    Matches(Str),
}

// ---------------------------------------------------------------- sources

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: Name,
    pub body: Block<SourceItem>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceItem {
    Root(Str),
    Glob(Vec<Str>),
    Exclude(Vec<Str>),
    /// `items files` or `items directories`.
    Items(Name),
    Group {
        name: Name,
        by: GroupBy,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum GroupBy {
    Regex(Str),
    Segment(Integer),
}

// ---------------------------------------------------------------- steps

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: Name,
    pub each: Option<Name>,
    /// Boxed: most steps have none, and every step would otherwise hold room for one.
    pub using: Option<Box<Using>>,
    /// `None` when the step has no `{ ... }` at all (only possible with `using`).
    pub body: Option<Block<StepItem>>,
}

/// `using module.template(arg, name = arg)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Using {
    /// `template` or `module.template`.
    pub template: Name,
    pub args: Vec<CallArg>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallArg {
    pub name: Option<Name>,
    pub value: Value,
}

/// One setting of a step. A file holds several per step, so the variants are kept small:
/// a condition, much larger than the rest, is boxed.
#[derive(Debug, Clone, PartialEq)]
pub enum StepItem {
    Input(Vec<Name>),
    After(Vec<Name>),
    When(Box<Expr>),
    Run(Str),
    Output(Vec<Str>),
    Retries(Integer),
    Backoff {
        kind: Option<BackoffKind>,
        delay: Quantity,
    },
    Timeout(Quantity),
    Cooldown(Quantity),
    Priority(Integer),
    Concurrency(Integer),
    Env(Block<EnvVar>),
    Resources(Block<Resource>),
    Executor {
        name: Name,
        settings: Option<Block<ExecutorSetting>>,
    },
    Container(Str),
}

impl StepItem {
    /// The keyword that starts this setting, as the user wrote it.
    pub fn keyword(&self) -> &'static str {
        match self {
            StepItem::Input(_) => "input",
            StepItem::After(_) => "after",
            StepItem::When(_) => "when",
            StepItem::Run(_) => "run",
            StepItem::Output(_) => "output",
            StepItem::Retries(_) => "retries",
            StepItem::Backoff { .. } => "backoff",
            StepItem::Timeout(_) => "timeout",
            StepItem::Cooldown(_) => "cooldown",
            StepItem::Priority(_) => "priority",
            StepItem::Concurrency(_) => "concurrency",
            StepItem::Env(_) => "env",
            StepItem::Resources(_) => "resources",
            StepItem::Executor { .. } => "executor",
            StepItem::Container(_) => "container",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffKind {
    Fixed,
    Exponential,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvVar {
    pub name: Name,
    pub value: Str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Cpus(Integer),
    Gpus(Integer),
    Memory(Quantity),
    Time(Quantity),
}

impl Resource {
    pub fn keyword(&self) -> &'static str {
        match self {
            Resource::Cpus(_) => "cpus",
            Resource::Gpus(_) => "gpus",
            Resource::Memory(_) => "memory",
            Resource::Time(_) => "time",
        }
    }
}

/// `partition "short"` inside `executor slurm { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorSetting {
    pub name: Name,
    pub value: Str,
}

// ---------------------------------------------------------------- conditions

// Conditions are few and small; boxing the comparison would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    /// `group.batch ~ "^MTX"`, or a lone `params.flag` (true when the bool param is true).
    Compare {
        field: FieldRef,
        test: Option<(CmpOp, Value)>,
        span: Span,
    },
}

/// `group.NAME` or `params.NAME`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    pub scope: Name,
    pub name: Name,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CmpOp {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "~")]
    Matches,
    #[serde(rename = "!~")]
    NotMatches,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Matches => "~",
            CmpOp::NotMatches => "!~",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}
