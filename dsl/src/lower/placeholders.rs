//! Checks the placeholders of a `run` or `env` string against what the step can see:
//! its inputs, its group and that group's fields, the pipeline's params.

use crate::ast;
use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::lower::span_in_string;
use crate::lower::steps::StepContext;
use crate::model::command::{CommandTemplate, Placeholder};

const PLACEHOLDERS: &str = "{inputs}, {inputs.NAME}, {out}, {group}, {group.FIELD}, {params.NAME}, {pipeline}, {step} (and {args.NAME} in templates)";

/// Parses a command template, reporting each unknown `{name}`.
pub(crate) fn parse_command(s: &ast::Str, diags: &mut Vec<Diagnostic>) -> Option<CommandTemplate> {
    match CommandTemplate::parse(&s.value) {
        Ok(command) => Some(command),
        Err(unknown) => {
            for u in unknown {
                let known = ["inputs", "out", "group", "pipeline", "step"];
                let help = did_you_mean(&u.text, known)
                    .map(|s| format!("{s} For a literal brace, write `{{{{` and `}}}}`."))
                    .unwrap_or_else(|| format!("the placeholders are {PLACEHOLDERS}; for a literal brace, write `{{{{` and `}}}}`"));
                diags.push(
                    Diagnostic::new(
                        Code::UnknownPlaceholder,
                        format!("unknown placeholder `{{{}}}`", u.text),
                    )
                    .label(span_in_string(s, u.start, u.end), "not a placeholder")
                    .help(help),
                );
            }
            None
        }
    }
}

/// Checks each placeholder; returns false if any was reported.
pub(crate) fn check_placeholders(
    s: &ast::Str,
    command: &CommandTemplate,
    context: &StepContext<'_>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut ok = true;
    for placeholder in command.placeholders() {
        let placeholder = &placeholder;
        let problem = match placeholder {
            Placeholder::Inputs | Placeholder::Out | Placeholder::Pipeline | Placeholder::Step => None,
            Placeholder::InputsOf(name) => (!context.inputs.contains(name)).then(|| {
                let d = Diagnostic::new(
                    Code::UnknownField,
                    format!("`{{inputs.{name}}}`: `{name}` is not an input of step `{}`", context.step),
                );
                let help = did_you_mean(name, context.inputs.iter().map(String::as_str)).unwrap_or_else(|| {
                    format!("add `input {name}` to the step, or use one of its inputs: {}", context.inputs.join(", "))
                });
                (d.help(help), format!("inputs.{name}"))
            }),
            Placeholder::Group | Placeholder::GroupField(_) if context.each.is_none() => Some((
                Diagnostic::new(
                    Code::GroupMismatch,
                    format!("step `{}` runs once over everything, so it has no group", context.step),
                )
                .help("make it a per-group step with `each GROUP`, or remove the placeholder"),
                placeholder_text(placeholder),
            )),
            Placeholder::Group => None,
            Placeholder::GroupField(field) => {
                let group = context.each.unwrap_or_default();
                let fields = context.scope.groups.get(group);
                let known = fields.is_some_and(|f| f.contains(field));
                (!known && fields.is_some()).then(|| {
                    let fields = fields.map(|f| f.iter().map(String::as_str).collect::<Vec<_>>()).unwrap_or_default();
                    (
                        Diagnostic::new(Code::UnknownField, format!("group `{group}` has no field `{field}`")).help(
                            did_you_mean(field, fields.iter().copied())
                                .unwrap_or_else(|| format!("its fields are the named captures of its sources' regexes: {}", fields.join(", "))),
                        ),
                        format!("group.{field}"),
                    )
                })
            }
            Placeholder::Param(name) => (!context.scope.param_names.contains(name.as_str())).then(|| {
                let names: Vec<&str> = context.scope.param_names.iter().map(|n| &**n).collect();
                (
                    Diagnostic::new(Code::UnknownField, format!("unknown param `{name}`")).help(
                        did_you_mean(name, names.iter().copied())
                            .unwrap_or_else(|| "declare it with `param NAME: TYPE = DEFAULT`".to_string()),
                    ),
                    format!("params.{name}"),
                )
            }),
            Placeholder::Arg(name) => Some((
                Diagnostic::new(Code::UnknownPlaceholder, format!("`{{args.{name}}}` can only be used inside a template"))
                    .help("template arguments exist only in `template` bodies; a step reads params with {params.NAME}"),
                format!("args.{name}"),
            )),
        };
        if let Some((mut diagnostic, text)) = problem {
            let needle = format!("{{{text}}}");
            let at = s.value.find(&needle).unwrap_or(0);
            diagnostic.labels.insert(
                0,
                crate::diagnostic::Label {
                    span: span_in_string(s, at, at + needle.len()),
                    message: "used here".to_string(),
                },
            );
            if let Some(using) = context.using_span {
                if using.file != s.span.file
                    || !(using.start()..using.end()).contains(&s.span.start())
                {
                    diagnostic = diagnostic.label(
                        using,
                        format!("in step `{}`, which uses the template here", context.step),
                    );
                }
            }
            diags.push(diagnostic);
            ok = false;
        }
    }
    ok
}

fn placeholder_text(p: &Placeholder) -> String {
    match p {
        Placeholder::GroupField(f) => format!("group.{f}"),
        _ => "group".to_string(),
    }
}
