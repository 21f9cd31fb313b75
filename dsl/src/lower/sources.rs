//! Checks and lowers sources: root and globs present, globs and grouping regexes valid, the
//! grouping regex capturing the group's key.

use crate::ast::{self, SourceItem};
use crate::diagnostic::{Code, Diagnostic};
use crate::lower::duplicate_setting;
use crate::lower::params::{bounded, first_line};
use crate::model::source::{GroupBy, Grouping, ItemKind, SourceDef};
use crate::span::Span;

pub(super) fn lower_source(
    source: &ast::Source,
    span: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<SourceDef> {
    let mut ok = true;
    let mut root: Option<(String, Span)> = None;
    let mut globs = Vec::new();
    let mut excludes = Vec::new();
    let mut items: Option<(ItemKind, Span)> = None;
    let mut grouping: Option<(Grouping, Span)> = None;
    for (item, item_span) in source.body.nodes() {
        match item {
            SourceItem::Root(dir) => match &root {
                Some((_, first)) => {
                    diags.push(duplicate_setting("root", item_span, *first));
                    ok = false;
                }
                None => root = Some((dir.value.clone(), item_span)),
            },
            SourceItem::Glob(patterns) | SourceItem::Exclude(patterns) => {
                for pattern in patterns {
                    if let Err(error) = globset::Glob::new(&pattern.value) {
                        diags.push(
                            Diagnostic::new(Code::InvalidGlob, format!("`{}` is not a valid glob", pattern.value))
                                .label(pattern.span, error.kind().to_string())
                                .help("`*` matches within a directory, `**` across directories, `?` one character, `[abc]` a set, `{a,b}` alternatives"),
                        );
                        ok = false;
                    }
                }
                let values = patterns.iter().map(|p| p.value.clone());
                if matches!(item, SourceItem::Glob(_)) {
                    globs.extend(values);
                } else {
                    excludes.extend(values);
                }
            }
            SourceItem::Items(kind) => {
                if let Some((_, first)) = &items {
                    diags.push(duplicate_setting("items", item_span, *first));
                    ok = false;
                    continue;
                }
                let kind_value = match kind.text.as_str() {
                    "files" => ItemKind::Files,
                    "directories" => ItemKind::Directories,
                    _ => {
                        diags.push(
                            Diagnostic::new(
                                Code::UnknownSetting,
                                format!("unknown item kind `{}`", kind.text),
                            )
                            .label(kind.span, "expected `files` or `directories`"),
                        );
                        ok = false;
                        continue;
                    }
                };
                items = Some((kind_value, item_span));
            }
            SourceItem::Group { name, by } => {
                if let Some((_, first)) = &grouping {
                    diags.push(duplicate_setting("group", item_span, *first));
                    ok = false;
                    continue;
                }
                match lower_grouping(name, by, diags) {
                    Some(g) => grouping = Some((g, item_span)),
                    None => ok = false,
                }
            }
        }
    }
    let mut missing = Vec::new();
    if root.is_none() {
        missing.push("root");
    }
    if globs.is_empty() {
        missing.push("glob");
    }
    if !missing.is_empty() {
        diags.push(
            Diagnostic::new(
                Code::MissingSetting,
                format!(
                    "source `{}` has no `{}`",
                    source.name.text,
                    missing.join("` and no `")
                ),
            )
            .label(source.name.span, "declared here")
            .label(span, "missing settings")
            .help("a source needs `root \"dir\"` and at least one `glob \"pattern\"`"),
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(SourceDef {
        name: source.name.text.clone(),
        root: root.map(|(r, _)| r).unwrap_or_default(),
        globs,
        excludes,
        items: items.map(|(k, _)| k).unwrap_or_default(),
        grouping: grouping.map(|(g, _)| g),
    })
}

fn lower_grouping(
    name: &ast::Name,
    by: &ast::GroupBy,
    diags: &mut Vec<Diagnostic>,
) -> Option<Grouping> {
    let by = match by {
        ast::GroupBy::Segment(n) => {
            GroupBy::Segment(bounded(n, "a path segment", 0, 1024, diags)? as usize)
        }
        ast::GroupBy::Regex(pattern) => {
            let regex = match regex::Regex::new(&pattern.value) {
                Ok(regex) => regex,
                Err(error) => {
                    diags.push(
                        Diagnostic::new(Code::InvalidRegex, "the grouping regex does not compile")
                            .label(pattern.span, first_line(&error.to_string()))
                            .help("the syntax is that of Rust's regex crate; named captures are `(?P<name>...)`"),
                    );
                    return None;
                }
            };
            let fields: Vec<String> = regex
                .capture_names()
                .flatten()
                .map(str::to_string)
                .collect();
            if !fields.contains(&name.text) {
                diags.push(
                    Diagnostic::new(
                        Code::InvalidRegex,
                        format!(
                            "the grouping regex has no capture named `{}`, the group's key",
                            name.text
                        ),
                    )
                    .label(pattern.span, format!("no `(?P<{}>...)` here", name.text))
                    .help(format!(
                        "capture the key with `(?P<{}>...)`; other named captures become fields",
                        name.text
                    )),
                );
                return None;
            }
            GroupBy::Regex {
                pattern: pattern.value.clone(),
                fields,
            }
        }
    };
    Some(Grouping {
        group: name.text.clone(),
        by,
    })
}
