//! Checks and lowers `when` conditions: every field must exist for the step, every compared
//! value must fit the field's type, and a comparison that can never hold is an error.

use crate::ast::{self, CmpOp, Expr, ValueKind};
use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::lower::params::display;
use crate::lower::pattern_cache::PatternCache;
use crate::lower::Scope;
use crate::model::condition::{Condition, Field, Literal};
use crate::model::param::ParamType;
use crate::model::quantity::{parse_duration, parse_size};

pub(super) fn lower_condition(
    expr: &Expr,
    each: Option<&str>,
    scope: &Scope,
    patterns: &mut PatternCache,
    diags: &mut Vec<Diagnostic>,
) -> Option<Condition> {
    match expr {
        Expr::Or(all) | Expr::And(all) => {
            let lowered: Vec<Option<Condition>> = all
                .iter()
                .map(|e| lower_condition(e, each, scope, patterns, diags))
                .collect();
            let lowered: Option<Vec<Condition>> = lowered.into_iter().collect();
            let lowered = lowered?;
            Some(if matches!(expr, Expr::Or(_)) {
                Condition::Or(lowered)
            } else {
                Condition::And(lowered)
            })
        }
        Expr::Not(inner) => Some(Condition::Not(Box::new(lower_condition(
            inner, each, scope, patterns, diags,
        )?))),
        Expr::Compare { field, test, span } => {
            lower_compare(field, test.as_ref(), *span, each, scope, patterns, diags)
        }
    }
}

fn lower_compare(
    field: &ast::FieldRef,
    test: Option<&(CmpOp, ast::Value)>,
    span: crate::span::Span,
    each: Option<&str>,
    scope: &Scope,
    patterns: &mut PatternCache,
    diags: &mut Vec<Diagnostic>,
) -> Option<Condition> {
    let name = &field.name.text;
    match field.scope.text.as_str() {
        "group" => {
            let Some(group) = each else {
                diags.push(
                    Diagnostic::new(
                        Code::GroupMismatch,
                        "this step runs once over everything, so `when` cannot read a group field",
                    )
                    .label(field.span, "a group field")
                    .help("make the step per-group with `each GROUP`, or test a param instead"),
                );
                return None;
            };
            let fields = scope.groups.get(group)?;
            if !fields.contains(name) {
                let known: Vec<&str> = fields.iter().map(String::as_str).collect();
                diags.push(
                    Diagnostic::new(
                        Code::UnknownField,
                        format!("group `{group}` has no field `{name}`"),
                    )
                    .label(field.name.span, "not a field of the group")
                    .help(
                        did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                            format!(
                                "its fields are the named captures of its sources' regexes: {}",
                                known.join(", ")
                            )
                        }),
                    ),
                );
                return None;
            }
            let Some((op, value)) = test else {
                diags.push(
                    Diagnostic::new(Code::TypeMismatch, format!("`group.{name}` is text, not a yes/no value"))
                        .label(field.span, "needs a comparison")
                        .help(format!("compare it, e.g. `group.{name} == \"value\"` or `group.{name} ~ \"^prefix\"`")),
                );
                return None;
            };
            let literal = match (op, &value.kind) {
                (CmpOp::Matches | CmpOp::NotMatches, ValueKind::Str(s)) => {
                    regex_literal(s, patterns, diags)?
                }
                (CmpOp::Eq | CmpOp::Ne, ValueKind::Str(s)) => Literal::Text(s.value.clone()),
                _ => {
                    diags.push(mismatch(
                        span,
                        value,
                        &format!("group.{name}"),
                        "text",
                        "`==`, `!=` with a quoted string (`\"05\"`), or `~`, `!~` with a regex string",
                    ));
                    return None;
                }
            };
            Some(Condition::Compare {
                field: Field::Group(name.clone()),
                op: *op,
                value: literal,
            })
        }
        "params" => {
            let Some(def) = scope.params.get(name.as_str()) else {
                if scope.param_names.contains(name.as_str()) {
                    return None; // declared, with its errors already reported
                }
                let known: Vec<&str> = scope.params.keys().map(String::as_str).collect();
                diags.push(
                    Diagnostic::new(Code::UnknownField, format!("unknown param `{name}`"))
                        .label(field.name.span, "not a param of this pipeline")
                        .help(
                            did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                                "declare it with `param NAME: TYPE`".to_string()
                            }),
                        ),
                );
                return None;
            };
            let Some((op, value)) = test else {
                if def.ty == ParamType::Bool {
                    return Some(Condition::Flag(name.clone()));
                }
                diags.push(
                    Diagnostic::new(Code::TypeMismatch, format!("param `{name}` is {}, not a bool", def.ty))
                        .label(field.span, "used as a yes/no value")
                        .help("only a bool param can stand alone in a condition; compare this one with a value"),
                );
                return None;
            };
            let ty = &def.ty;
            let literal = match (ty, op, &value.kind) {
                (ParamType::Bool, CmpOp::Eq | CmpOp::Ne, ValueKind::Bool(b)) => {
                    Some(Literal::Bool(*b))
                }
                (ParamType::Int | ParamType::Float, _, ValueKind::Number(t))
                    if !is_regex_op(*op) =>
                {
                    t.parse().ok().map(Literal::Number)
                }
                (ParamType::Duration, _, ValueKind::Quantity(t)) if !is_regex_op(*op) => {
                    parse_duration(t).ok().map(|ms| Literal::Number(ms as f64))
                }
                (ParamType::Size, _, ValueKind::Quantity(t)) if !is_regex_op(*op) => {
                    parse_size(t).ok().map(|b| Literal::Number(b as f64))
                }
                (
                    ParamType::String | ParamType::Path | ParamType::Enum(_),
                    CmpOp::Matches | CmpOp::NotMatches,
                    ValueKind::Str(s),
                ) => Some(regex_literal(s, patterns, diags)?),
                (ParamType::String | ParamType::Path, CmpOp::Eq | CmpOp::Ne, ValueKind::Str(s)) => {
                    Some(Literal::Text(s.value.clone()))
                }
                (
                    ParamType::Enum(members),
                    CmpOp::Eq | CmpOp::Ne,
                    ValueKind::Ident(t) | ValueKind::Str(ast::Str { value: t, .. }),
                ) => {
                    if !members.contains(t) {
                        diags.push(
                            Diagnostic::new(Code::UnreachableWhen, format!("`{t}` is not a value of param `{name}`, so this comparison is always {}", *op == CmpOp::Ne))
                                .label(value.span, format!("not one of {}", members.join(", ")))
                                .help(did_you_mean(t, members.iter().map(String::as_str)).unwrap_or_else(|| format!("the values of `{name}` are {}", members.join(", ")))),
                        );
                        return None;
                    }
                    Some(Literal::Text(t.clone()))
                }
                _ => None,
            };
            let Some(literal) = literal else {
                diags.push(mismatch(
                    span,
                    value,
                    &format!("params.{name}"),
                    &ty.to_string(),
                    &expected_for(ty),
                ));
                return None;
            };
            Some(Condition::Compare {
                field: Field::Param(name.clone()),
                op: *op,
                value: literal,
            })
        }
        other => {
            diags.push(
                Diagnostic::new(
                    Code::UnknownSetting,
                    format!("unknown field scope `{other}`"),
                )
                .label(field.scope.span, "expected `group` or `params`")
                .help("a condition reads `group.FIELD` or `params.NAME`"),
            );
            None
        }
    }
}

fn is_regex_op(op: CmpOp) -> bool {
    matches!(op, CmpOp::Matches | CmpOp::NotMatches)
}

fn regex_literal(
    s: &ast::Str,
    patterns: &mut PatternCache,
    diags: &mut Vec<Diagnostic>,
) -> Option<Literal> {
    match patterns.regex(&s.value) {
        Ok(pattern) => Some(Literal::Regex(pattern)),
        Err(error) => {
            diags.push(
                Diagnostic::new(Code::InvalidRegex, "this regex does not compile")
                    .label(s.span, error),
            );
            None
        }
    }
}

fn expected_for(ty: &ParamType) -> String {
    match ty {
        ParamType::Bool => "`== true` or `== false`, or the param alone".into(),
        ParamType::Int | ParamType::Float => {
            "`==`, `!=`, `<`, `<=`, `>`, `>=` with a number".into()
        }
        ParamType::Duration => {
            "`==`, `!=`, `<`, `<=`, `>`, `>=` with a duration such as `10m`".into()
        }
        ParamType::Size => "`==`, `!=`, `<`, `<=`, `>`, `>=` with a size such as `8GB`".into(),
        ParamType::String | ParamType::Path => {
            "`==`, `!=` with a string, or `~`, `!~` with a regex string".into()
        }
        ParamType::Enum(members) => format!("`==` or `!=` with one of {}", members.join(", ")),
    }
}

fn mismatch(
    span: crate::span::Span,
    value: &ast::Value,
    field: &str,
    ty: &str,
    expected: &str,
) -> Diagnostic {
    Diagnostic::new(
        Code::TypeMismatch,
        format!(
            "`{field}` is {ty}; it cannot be compared this way with `{}`",
            display(value)
        ),
    )
    .label(span, "this comparison")
    .help(format!("compare it using {expected}"))
}
