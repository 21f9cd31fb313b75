//! Checks and lowers params: the type, the constraint, and the default against both.
//! Also the helpers that read durations, sizes and bounded integers anywhere in a file.

use crate::ast::{self, ValueKind};
use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::model::param::{ParamConstraint, ParamDef, ParamType, ParamValue};
use crate::model::quantity::{parse_duration, parse_size};

pub(super) fn lower_param(param: &ast::Param, diags: &mut Vec<Diagnostic>) -> Option<ParamDef> {
    let ty = match &param.ty {
        ast::ParamType::Named(name) => match ParamType::from_name(&name.text) {
            Some(ty) => ty,
            None => {
                let mut d = Diagnostic::new(
                    Code::UnknownType,
                    format!("unknown param type `{}`", name.text),
                )
                .label(name.span, "not a param type");
                d = d.help(did_you_mean(&name.text, ParamType::NAMES).unwrap_or_else(|| {
                    "the types are int, float, string, bool, path, duration, size and enum(a, b, ...)".to_string()
                }));
                diags.push(d);
                return None;
            }
        },
        ast::ParamType::Enum { members, .. } => {
            let mut names = super::Names::new("enum member");
            for member in members {
                names.add(member, diags);
            }
            ParamType::Enum(members.iter().map(|m| m.text.clone()).collect())
        }
    };
    let constraint = param
        .constraint
        .as_ref()
        .and_then(|c| lower_constraint(param, &ty, c, diags));
    let mut def = ParamDef {
        name: param.name.text.clone(),
        ty,
        default: None,
        constraint,
    };
    if let Some(default) = &param.default {
        def.default = Some(default_value(
            &def,
            default,
            param.constraint.as_ref(),
            diags,
        )?);
    }
    Some(def)
}

fn lower_constraint(
    param: &ast::Param,
    ty: &ParamType,
    constraint: &ast::Constraint,
    diags: &mut Vec<Diagnostic>,
) -> Option<ParamConstraint> {
    match constraint {
        ast::Constraint::Range { min, max, span } => {
            if !matches!(ty, ParamType::Int | ParamType::Float) {
                diags.push(
                    Diagnostic::new(
                        Code::InvalidConstraint,
                        format!(
                            "a range does not apply to param `{}` of type {ty}",
                            param.name.text
                        ),
                    )
                    .label(*span, "only int and float params take `in min..max`"),
                );
                return None;
            }
            let bound =
                |n: &Option<ast::Number>, diags: &mut Vec<Diagnostic>| -> Result<Option<f64>, ()> {
                    let Some(n) = n else { return Ok(None) };
                    if *ty == ParamType::Int && n.text.contains('.') {
                        diags.push(
                            Diagnostic::new(
                                Code::InvalidConstraint,
                                format!(
                                    "`{}` is not a whole number, but `{}` is an int",
                                    n.text, param.name.text
                                ),
                            )
                            .label(n.span, "expected a whole number"),
                        );
                        return Err(());
                    }
                    n.text.parse().map(Some).map_err(|_| ())
                };
            let (Ok(lo), Ok(hi)) = (bound(min, diags), bound(max, diags)) else {
                return None;
            };
            if let (Some(lo), Some(hi)) = (lo, hi) {
                if lo > hi {
                    diags.push(
                        Diagnostic::new(
                            Code::InvalidConstraint,
                            format!(
                                "the range of `{}` is empty: {lo} is greater than {hi}",
                                param.name.text
                            ),
                        )
                        .label(*span, "min is greater than max")
                        .help("write the smaller bound first: `in min..max`"),
                    );
                    return None;
                }
            }
            Some(ParamConstraint::Range { min: lo, max: hi })
        }
        ast::Constraint::Matches(pattern) => {
            if !ty.is_textual() {
                diags.push(
                    Diagnostic::new(
                        Code::InvalidConstraint,
                        format!(
                            "`matches` does not apply to param `{}` of type {ty}",
                            param.name.text
                        ),
                    )
                    .label(pattern.span, "only string and path params take `matches`"),
                );
                return None;
            }
            if let Err(error) = regex::Regex::new(&pattern.value) {
                diags.push(
                    Diagnostic::new(
                        Code::InvalidConstraint,
                        format!("the pattern of `{}` is not a valid regex", param.name.text),
                    )
                    .label(pattern.span, first_line(&error.to_string()))
                    .help("the syntax is that of Rust's regex crate (like RE2)"),
                );
                return None;
            }
            Some(ParamConstraint::Matches(pattern.value.clone()))
        }
    }
}

fn default_value(
    def: &ParamDef,
    value: &ast::Value,
    constraint: Option<&ast::Constraint>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ParamValue> {
    let text = value_text(value);
    let fits_kind = matches!(
        (&def.ty, &value.kind),
        (ParamType::Int | ParamType::Float, ValueKind::Number(_))
            | (ParamType::Bool, ValueKind::Bool(_))
            | (ParamType::String | ParamType::Path, ValueKind::Str(_))
            | (
                ParamType::Duration | ParamType::Size,
                ValueKind::Quantity(_)
            )
            | (ParamType::Enum(_), ValueKind::Ident(_) | ValueKind::Str(_))
    );
    let parsed = if fits_kind {
        def.parse_value(&text).ok()
    } else {
        None
    };
    if let Some(v) = parsed {
        return Some(v);
    }
    let type_only = ParamDef {
        constraint: None,
        ..def.clone()
    };
    let breaks_constraint = fits_kind && type_only.parse_value(&text).is_ok();
    let mut d = Diagnostic::new(
        Code::InvalidDefault,
        format!(
            "the default of param `{}` is `{}`, which is not {}",
            def.name,
            display(value),
            def.expected()
        ),
    )
    .label(
        value.span,
        format!(
            "expected {}",
            if breaks_constraint {
                def.expected()
            } else {
                def.ty.expected()
            }
        ),
    );
    if breaks_constraint {
        if let Some(c) = constraint {
            let span = match c {
                ast::Constraint::Range { span, .. } => *span,
                ast::Constraint::Matches(s) => s.span,
            };
            d = d.label(span, "the constraint");
        }
        d = d.help("change the default or widen the constraint");
    } else {
        d = d.help(format!(
            "a {} default looks like {}",
            def.ty,
            example(&def.ty)
        ));
    }
    diags.push(d);
    None
}

fn example(ty: &ParamType) -> String {
    match ty {
        ParamType::Int => "`4`".into(),
        ParamType::Float => "`0.5`".into(),
        ParamType::String => "`\"text\"`".into(),
        ParamType::Bool => "`true`".into(),
        ParamType::Path => "`\"data/ref.fa\"`".into(),
        ParamType::Duration => "`30m`".into(),
        ParamType::Size => "`8GB`".into(),
        ParamType::Enum(members) => format!(
            "`{}`",
            members.first().map(String::as_str).unwrap_or("member")
        ),
    }
}

/// The text of a value as a param would receive it.
pub(crate) fn value_text(value: &ast::Value) -> String {
    match &value.kind {
        ValueKind::Str(s) => s.value.clone(),
        ValueKind::Quantity(t) | ValueKind::Number(t) | ValueKind::Ident(t) => t.clone(),
        ValueKind::Bool(b) => b.to_string(),
    }
}

/// A value as written, for messages.
pub(crate) fn display(value: &ast::Value) -> String {
    match &value.kind {
        ValueKind::Str(s) => format!("\"{}\"", s.value),
        _ => value_text(value),
    }
}

/// Reads a duration, reporting a bad one.
pub(crate) fn duration(q: &ast::Quantity, diags: &mut Vec<Diagnostic>) -> Option<u64> {
    match parse_duration(&q.text) {
        Ok(ms) => Some(ms),
        Err(expected) => {
            diags.push(
                Diagnostic::new(
                    Code::InvalidDuration,
                    format!("`{}` is not a duration", q.text),
                )
                .label(q.span, format!("expected {expected}")),
            );
            None
        }
    }
}

/// Reads a size, reporting a bad one.
pub(crate) fn size(q: &ast::Quantity, diags: &mut Vec<Diagnostic>) -> Option<u64> {
    match parse_size(&q.text) {
        Ok(bytes) => Some(bytes),
        Err(expected) => {
            diags.push(
                Diagnostic::new(Code::InvalidSize, format!("`{}` is not a size", q.text))
                    .label(q.span, format!("expected {expected}")),
            );
            None
        }
    }
}

/// Reads an integer that must lie in `min..=max`.
pub(crate) fn bounded(
    n: &ast::Integer,
    what: &str,
    min: i64,
    max: i64,
    diags: &mut Vec<Diagnostic>,
) -> Option<i64> {
    if (min..=max).contains(&n.value) {
        return Some(n.value);
    }
    let range = if max == i64::MAX {
        format!("at least {min}")
    } else {
        format!("between {min} and {max}")
    };
    diags.push(
        Diagnostic::new(
            Code::InvalidNumber,
            format!("{what} must be {range}, not {}", n.value),
        )
        .label(n.span, format!("expected a number {range}")),
    );
    None
}

pub(crate) fn first_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_string()
}
