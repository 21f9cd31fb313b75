//! The canonical layout of a `.pipe` file, printed from its syntax tree: two-space indentation,
//! one item per line, comments kept where they stood (on their own line or trailing one),
//! at most one blank line between items, a blank line before each pipeline and template.
//! Formatting never changes meaning: a file and its formatted text lower to equal pipelines.

use crate::ast::*;

/// Formats a parsed module.
pub fn format_module(module: &Module) -> String {
    let mut printer = Printer::default();
    let mut previous_was_node = false;
    for entry in &module.items.entries {
        let starts_section = matches!(
            entry.item,
            Item::Node(TopItem::Pipeline(_) | TopItem::Template(_))
        );
        let trailing = matches!(&entry.item, Item::Comment(c) if c.trailing);
        if !printer.out.is_empty()
            && !trailing
            && (entry.blank_line_before || (starts_section && previous_was_node))
        {
            printer.blank_line();
        }
        match &entry.item {
            Item::Comment(comment) => printer.comment(comment),
            Item::Node(node) => printer.top_item(node),
        }
        previous_was_node = matches!(entry.item, Item::Node(_));
    }
    printer.out
}

#[derive(Default)]
struct Printer {
    out: String,
    indent: usize,
}

impl Printer {
    fn line(&mut self, text: &str) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn blank_line(&mut self) {
        if !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn comment(&mut self, comment: &Comment) {
        if comment.trailing && self.out.ends_with('\n') {
            self.out.pop();
            self.out.push(' ');
            self.out.push_str(&comment.text);
            self.out.push('\n');
        } else {
            self.line(&comment.text);
        }
    }

    /// Prints `header {`, the entries, and `}`; or `header {}` for an empty block.
    fn block<T>(&mut self, header: &str, block: &Block<T>, mut node: impl FnMut(&mut Self, &T)) {
        if block.entries.is_empty() {
            self.line(&format!("{header} {{}}"));
            return;
        }
        self.line(&format!("{header} {{"));
        self.indent += 1;
        // No blank line right after the `{` line, even when a comment trails it.
        let mut on_own_line = false;
        for entry in &block.entries {
            let trailing = matches!(&entry.item, Item::Comment(c) if c.trailing);
            if on_own_line && entry.blank_line_before && !trailing {
                self.blank_line();
            }
            on_own_line |= !trailing;
            match &entry.item {
                Item::Comment(comment) => self.comment(comment),
                Item::Node(n) => node(self, n),
            }
        }
        self.indent -= 1;
        self.line("}");
    }

    fn top_item(&mut self, item: &TopItem) {
        match item {
            TopItem::Use(u) => {
                let mut text = match &u.target {
                    UseTarget::Stdlib(name) => format!("use {}", name.text),
                    UseTarget::Path(path) => format!("use {}", string(path)),
                };
                if let Some(alias) = &u.alias {
                    text.push_str(&format!(" as {}", alias.text));
                }
                self.line(&text);
            }
            TopItem::Template(t) => {
                let params: Vec<String> = t
                    .params
                    .iter()
                    .map(|p| match &p.default {
                        Some(d) => format!("{} = {}", p.name.text, value(d)),
                        None => p.name.text.clone(),
                    })
                    .collect();
                let header = format!("template {}({})", t.name.text, params.join(", "));
                self.block(&header, &t.body, Printer::step_item);
            }
            TopItem::Pipeline(p) => {
                self.block(
                    &format!("pipeline {}", p.name.text),
                    &p.body,
                    Printer::pipeline_item,
                );
            }
        }
    }

    fn pipeline_item(&mut self, item: &PipelineItem) {
        match item {
            PipelineItem::Trigger(t) => self.line(&trigger(t)),
            PipelineItem::Overlap(policy) => self.line(&format!("overlap {}", policy.text)),
            PipelineItem::Notify(hook) => {
                let mut text = format!("notify {}", string(&hook.url));
                if !hook.on.is_empty() {
                    let on: Vec<&str> = hook.on.iter().map(|o| o.text.as_str()).collect();
                    text.push_str(&format!(" on {}", on.join(", ")));
                }
                self.line(&text);
            }
            PipelineItem::Param(p) => self.line(&param(p)),
            PipelineItem::Source(s) => {
                self.block(
                    &format!("source {}", s.name.text),
                    &s.body,
                    |printer, item| printer.line(&source_item(item)),
                );
            }
            PipelineItem::Step(s) => {
                let mut header = format!("step {}", s.name.text);
                if let Some(each) = &s.each {
                    header.push_str(&format!(" each {}", each.text));
                }
                if let Some(using) = &s.using {
                    let args: Vec<String> = using
                        .args
                        .iter()
                        .map(|a| match &a.name {
                            Some(name) => format!("{} = {}", name.text, value(&a.value)),
                            None => value(&a.value),
                        })
                        .collect();
                    header.push_str(&format!(
                        " using {}({})",
                        using.template.text,
                        args.join(", ")
                    ));
                }
                match &s.body {
                    Some(body) => self.block(&header, body, Printer::step_item),
                    None => self.line(&header),
                }
            }
        }
    }

    fn step_item(&mut self, item: &StepItem) {
        let list = |names: &[Name]| {
            names
                .iter()
                .map(|n| n.text.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = match item {
            StepItem::Input(names) => format!("input {}", list(names)),
            StepItem::After(names) => format!("after {}", list(names)),
            StepItem::When(e) => format!("when {}", expr(e)),
            StepItem::Run(s) => format!("run {}", string(s)),
            StepItem::Output(patterns) => {
                format!(
                    "output {}",
                    patterns.iter().map(string).collect::<Vec<_>>().join(", ")
                )
            }
            StepItem::Retries(n) => format!("retries {}", n.value),
            StepItem::Backoff { kind, delay } => match kind {
                Some(BackoffKind::Fixed) => format!("backoff fixed {}", delay.text),
                Some(BackoffKind::Exponential) => format!("backoff exponential {}", delay.text),
                None => format!("backoff {}", delay.text),
            },
            StepItem::Timeout(q) => format!("timeout {}", q.text),
            StepItem::Cooldown(q) => format!("cooldown {}", q.text),
            StepItem::Priority(n) => format!("priority {}", n.value),
            StepItem::Concurrency(n) => format!("concurrency {}", n.value),
            StepItem::Container(s) => format!("container {}", string(s)),
            StepItem::Env(vars) => {
                return self.block("env", vars, |p, var| {
                    p.line(&format!("{} = {}", var.name.text, string(&var.value)))
                });
            }
            StepItem::Resources(resources) => {
                return self.block("resources", resources, |p, r| {
                    p.line(&match r {
                        Resource::Cpus(n) => format!("cpus {}", n.value),
                        Resource::Gpus(n) => format!("gpus {}", n.value),
                        Resource::Memory(q) => format!("memory {}", q.text),
                        Resource::Time(q) => format!("time {}", q.text),
                    })
                });
            }
            StepItem::Executor { name, settings } => match settings {
                Some(block) => {
                    return self.block(&format!("executor {}", name.text), block, |p, s| {
                        p.line(&format!("{} {}", s.name.text, string(&s.value)))
                    });
                }
                None => format!("executor {}", name.text),
            },
        };
        self.line(&text);
    }
}

fn trigger(t: &Trigger) -> String {
    match t {
        Trigger::Manual => "trigger manual".to_string(),
        Trigger::Cron { expr, tz, missed } => {
            let mut text = format!("trigger cron {}", string(expr));
            if let Some(tz) = tz {
                text.push_str(&format!(" tz {}", string(tz)));
            }
            if let Some(missed) = missed {
                text.push_str(&format!(" missed {}", missed.text));
            }
            text
        }
        Trigger::Continuous {
            cooldown,
            max_wait,
            poll,
        } => {
            let mut text = "trigger continuous".to_string();
            if let Some(c) = cooldown {
                text.push_str(&format!(" cooldown {}", c.text));
            }
            if let Some(m) = max_wait {
                text.push_str(&format!(" max {}", m.text));
            }
            if let Some(p) = poll {
                text.push_str(&format!(" poll {}", p.text));
            }
            text
        }
    }
}

fn param(p: &Param) -> String {
    let ty = match &p.ty {
        ParamType::Named(name) => name.text.clone(),
        ParamType::Enum { members, .. } => {
            format!(
                "enum({})",
                members
                    .iter()
                    .map(|m| m.text.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    let mut text = format!("param {}: {ty}", p.name.text);
    if let Some(d) = &p.default {
        text.push_str(&format!(" = {}", value(d)));
    }
    match &p.constraint {
        Some(Constraint::Range { min, max, .. }) => {
            let bound = |n: &Option<Number>| n.as_ref().map(|n| n.text.clone()).unwrap_or_default();
            text.push_str(&format!(" in {}..{}", bound(min), bound(max)));
        }
        Some(Constraint::Matches(s)) => text.push_str(&format!(" matches {}", string(s))),
        None => {}
    }
    text
}

fn source_item(item: &SourceItem) -> String {
    let strings = |list: &[Str]| list.iter().map(string).collect::<Vec<_>>().join(", ");
    match item {
        SourceItem::Root(s) => format!("root {}", string(s)),
        SourceItem::Glob(list) => format!("glob {}", strings(list)),
        SourceItem::Exclude(list) => format!("exclude {}", strings(list)),
        SourceItem::Items(kind) => format!("items {}", kind.text),
        SourceItem::Group { name, by } => match by {
            GroupBy::Regex(re) => format!("group {} by regex {}", name.text, string(re)),
            GroupBy::Segment(n) => format!("group {} by segment {}", name.text, n.value),
        },
    }
}

fn expr(e: &Expr) -> String {
    match e {
        Expr::Or(all) => all.iter().map(expr).collect::<Vec<_>>().join(" or "),
        Expr::And(all) => all
            .iter()
            .map(|e| match e {
                Expr::Or(_) => format!("({})", expr(e)),
                _ => expr(e),
            })
            .collect::<Vec<_>>()
            .join(" and "),
        Expr::Not(inner) => match **inner {
            Expr::Or(_) | Expr::And(_) => format!("not ({})", expr(inner)),
            _ => format!("not {}", expr(inner)),
        },
        Expr::Compare { field, test, .. } => {
            let field = format!("{}.{}", field.scope.text, field.name.text);
            match test {
                Some((op, v)) => format!("{field} {} {}", op.as_str(), value(v)),
                None => field,
            }
        }
    }
}

fn value(v: &Value) -> String {
    match &v.kind {
        ValueKind::Str(s) => string(s),
        ValueKind::Quantity(t) | ValueKind::Number(t) | ValueKind::Ident(t) => t.clone(),
        ValueKind::Bool(b) => b.to_string(),
    }
}

/// A string literal that parses back to the same value, escaping as little as possible.
pub fn string(s: &Str) -> String {
    if s.triple && !s.value.contains("\"\"\"") && !s.value.ends_with('"') {
        return format!("\"\"\"{}\"\"\"", s.value);
    }
    let mut out = String::with_capacity(s.value.len() + 2);
    out.push('"');
    let mut chars = s.value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\\' => match chars.peek() {
                // A backslash that would read as an escape (or end the string) is doubled;
                // any other stays single, as the user wrote it.
                None | Some('"' | '\\' | 'n' | 't') => out.push_str("\\\\"),
                Some(_) => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;
    use crate::span::FileId;

    fn fmt(text: &str) -> String {
        format_module(&parse(FileId(0), text).unwrap())
    }

    #[test]
    fn lays_out_and_keeps_comments() {
        let text = "# top\npipeline p { # about p\n step a {run \"x\"   # the command\n}\n\n\n # lonely\n}";
        assert_eq!(
            fmt(text),
            "# top\npipeline p { # about p\n  step a {\n    run \"x\" # the command\n  }\n\n  # lonely\n}\n"
        );
    }

    #[test]
    fn strings_escape_minimally() {
        let formatted = fmt(r#"pipeline p { source s { root "a\\b" glob "\d+\"x" } }"#);
        assert!(formatted.contains(r#"root "a\b""#), "{formatted}");
        assert!(formatted.contains(r#"glob "\d+\"x""#), "{formatted}");
    }

    #[test]
    fn conditions_keep_their_grouping() {
        let formatted = fmt("pipeline p { step a { when (params.x or params.y) and not (params.z and params.w) run \"x\" } }");
        assert!(
            formatted.contains("when (params.x or params.y) and not (params.z and params.w)"),
            "{formatted}"
        );
    }

    #[test]
    fn absent_optional_tails_keep_the_next_comment_on_its_own_line() {
        let text = "use stage\n\n# about p\npipeline p {\n  trigger cron \"0 2 * * *\"\n\n  # about x\n  param x: int = 1\n  # own line\n  step s using stage.copy()\n\n  # after\n}\n";
        assert_eq!(fmt(text), text);
    }

    #[test]
    fn is_idempotent() {
        let once = fmt("use checksum\npipeline p {\n trigger continuous cooldown 2m\n param x: int = 3 in 1..\n step a each s using checksum.sha256(\"x\", b = 2) }");
        assert_eq!(fmt(&once), once);
    }
}
