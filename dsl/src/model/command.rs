//! Command templates: the text of a `run` (or an `env` value) split into literal text and
//! placeholders, and the one function that renders it with every value shell-quoted.
//!
//! The rules, in order: `{{` opens an escaped brace and `}}` closes it (both print one brace);
//! `${` is the shell's and is left alone; `{name}` or `{name.name}` is a placeholder;
//! any other brace is literal, so `awk '{ print $1 }'` needs no escaping.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Placeholder {
    /// `{inputs}`: every input path.
    Inputs,
    /// `{inputs.NAME}`: the paths of one input.
    InputsOf(String),
    /// `{out}`: the task's output directory.
    Out,
    /// `{group}`: the group key.
    Group,
    /// `{group.FIELD}`.
    GroupField(String),
    /// `{params.NAME}`.
    Param(String),
    /// `{args.NAME}`: a template argument, replaced when the template is instantiated.
    Arg(String),
    /// `{pipeline}`.
    Pipeline,
    /// `{step}`.
    Step,
}

impl Placeholder {
    fn from_text(text: &str) -> Option<Placeholder> {
        Some(match text.split_once('.') {
            None => match text {
                "inputs" => Placeholder::Inputs,
                "out" => Placeholder::Out,
                "group" => Placeholder::Group,
                "pipeline" => Placeholder::Pipeline,
                "step" => Placeholder::Step,
                _ => return None,
            },
            Some(("inputs", name)) => Placeholder::InputsOf(name.to_string()),
            Some(("group", name)) => Placeholder::GroupField(name.to_string()),
            Some(("params", name)) => Placeholder::Param(name.to_string()),
            Some(("args", name)) => Placeholder::Arg(name.to_string()),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Text(String),
    Placeholder(Placeholder),
}

/// A parsed command template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandTemplate {
    pub parts: Vec<Part>,
}

/// A `{name}` that is not a placeholder, with its byte range in the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlaceholder {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

impl CommandTemplate {
    /// Splits `text` into literal parts and placeholders. Unknown `{name}`s are returned
    /// (with their positions) instead of being taken literally.
    pub fn parse(text: &str) -> Result<CommandTemplate, Vec<UnknownPlaceholder>> {
        let bytes = text.as_bytes();
        // Each placeholder makes at most two parts (with the text before it), and one more
        // holds the text after the last: room for that many saves growing the vector.
        let opening = bytes.iter().filter(|&&b| b == b'{').count();
        let mut parts = Vec::with_capacity(2 * opening + 1);
        let mut literal = String::with_capacity(text.len());
        let mut unknown = Vec::new();
        let mut escaped_depth = 0usize;
        let mut i = 0;
        while i < bytes.len() {
            // Only a brace or a `$` can start anything but literal text: copy up to the next one.
            let plain = bytes[i..]
                .iter()
                .position(|b| matches!(b, b'{' | b'}' | b'$'))
                .unwrap_or(bytes.len() - i);
            literal.push_str(&text[i..i + plain]);
            i += plain;
            let rest = &text[i..];
            if rest.is_empty() {
                break;
            } else if rest.starts_with("{{") {
                literal.push('{');
                escaped_depth += 1;
                i += 2;
            } else if rest.starts_with("}}") && escaped_depth > 0 {
                literal.push('}');
                escaped_depth -= 1;
                i += 2;
            } else if rest.starts_with("${") {
                literal.push_str("${");
                i += 2;
            } else if let Some(name) = rest.strip_prefix('{').and_then(placeholder_name) {
                let end = i + name.len() + 2;
                match Placeholder::from_text(name) {
                    Some(placeholder) => {
                        if !literal.is_empty() {
                            // A copy takes no more memory than the text; the buffer is reused.
                            parts.push(Part::Text(literal.clone()));
                            literal.clear();
                        }
                        parts.push(Part::Placeholder(placeholder));
                    }
                    None => unknown.push(UnknownPlaceholder {
                        text: name.to_string(),
                        start: i,
                        end,
                    }),
                }
                i = end;
            } else {
                let c = rest.chars().next().expect("not at the end");
                literal.push(c);
                i += c.len_utf8();
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal.clone()));
        }
        if unknown.is_empty() {
            parts.shrink_to_fit();
            Ok(CommandTemplate { parts })
        } else {
            Err(unknown)
        }
    }

    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.parts.iter().filter_map(|part| match part {
            Part::Placeholder(p) => Some(p),
            Part::Text(_) => None,
        })
    }

    /// Replaces each placeholder for which `part` gives a replacement (literal text already in
    /// final form, or another placeholder), keeping the others.
    pub fn substitute(
        &self,
        mut part: impl FnMut(&Placeholder) -> Option<Part>,
    ) -> CommandTemplate {
        let mut parts: Vec<Part> = Vec::new();
        for original in &self.parts {
            let replaced = match original {
                Part::Placeholder(p) => part(p).unwrap_or_else(|| original.clone()),
                Part::Text(_) => original.clone(),
            };
            match (parts.last_mut(), replaced) {
                (Some(Part::Text(previous)), Part::Text(text)) => previous.push_str(&text),
                (_, replaced) => parts.push(replaced),
            }
        }
        CommandTemplate { parts }
    }

    /// Renders the command for a shell: each placeholder becomes its values, each value
    /// shell-quoted, several values separated by spaces.
    pub fn render_shell(&self, mut values: impl FnMut(&Placeholder) -> Vec<String>) -> String {
        self.render(|p| {
            values(p)
                .iter()
                .map(|v| shell_quote(v))
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// Renders the template with `value` giving the text of each placeholder as it is.
    pub fn render(&self, mut value: impl FnMut(&Placeholder) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Placeholder(p) => out.push_str(&value(p)),
            }
        }
        out
    }

    /// The canonical text of the template: what a user would write to get it.
    pub fn to_source(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(&escape_literal(text)),
                Part::Placeholder(p) => {
                    out.push('{');
                    out.push_str(&placeholder_text(p));
                    out.push('}');
                }
            }
        }
        out
    }
}

fn placeholder_text(p: &Placeholder) -> String {
    match p {
        Placeholder::Inputs => "inputs".into(),
        Placeholder::InputsOf(n) => format!("inputs.{n}"),
        Placeholder::Out => "out".into(),
        Placeholder::Group => "group".into(),
        Placeholder::GroupField(n) => format!("group.{n}"),
        Placeholder::Param(n) => format!("params.{n}"),
        Placeholder::Arg(n) => format!("args.{n}"),
        Placeholder::Pipeline => "pipeline".into(),
        Placeholder::Step => "step".into(),
    }
}

/// Escapes literal text so that parsing it gives the same text back.
fn escape_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let is_shell = out.ends_with('$');
        if !is_shell && (after.starts_with('{') || placeholder_name(after).is_some()) {
            // A brace that would read as an escape or a placeholder: escape the whole `{...}`.
            if let Some(close) = after.find('}') {
                out.push_str("{{");
                out.push_str(&after[..close]);
                out.push_str("}}");
                rest = &after[close + 1..];
                continue;
            }
        }
        out.push('{');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// If `rest` (the text after a `{`) starts with `name}` or `name.name}`, the name.
fn placeholder_name(rest: &str) -> Option<&str> {
    // A name holds only word characters and dots, so only the first other character can close
    // it: looking no further keeps a text full of unclosed braces linear.
    let close = rest
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.'))?;
    if rest.as_bytes()[close] != b'}' {
        return None;
    }
    let name = &rest[..close];
    // Of the characters a name may hold, a word starts with anything but a digit, and has no dot.
    let is_word =
        |w: &str| w.bytes().next().is_some_and(|b| !b.is_ascii_digit()) && !w.contains('.');
    let valid = match name.split_once('.') {
        None => is_word(name),
        Some((a, b)) => is_word(a) && is_word(b),
    };
    valid.then_some(name)
}

/// Quotes `value` for a POSIX shell, so it is one word whatever it contains.
pub fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<Part> {
        CommandTemplate::parse(text).unwrap().parts
    }

    #[test]
    fn placeholders_and_literal_braces() {
        assert_eq!(
            parts("awk '{ print $1 }' {inputs} > {out}/x"),
            vec![
                Part::Text("awk '{ print $1 }' ".into()),
                Part::Placeholder(Placeholder::Inputs),
                Part::Text(" > ".into()),
                Part::Placeholder(Placeholder::Out),
                Part::Text("/x".into()),
            ]
        );
        assert_eq!(
            parts("echo ${HOME}"),
            vec![Part::Text("echo ${HOME}".into())]
        );
        assert_eq!(
            parts("awk '{{print}}'"),
            vec![Part::Text("awk '{print}'".into())]
        );
        assert_eq!(
            parts("awk '{a[$1]++} END {for (k in a) {print k}}'"),
            vec![Part::Text(
                "awk '{a[$1]++} END {for (k in a) {print k}}'".into()
            )]
        );
    }

    #[test]
    fn braces_around_what_is_not_a_name_are_literal() {
        let text = "{1a} {a.b.c} {.x} {x.} {a b} {é} {";
        assert_eq!(parts(text), vec![Part::Text(text.into())]);
    }

    #[test]
    fn unknown_placeholders_are_reported_with_positions() {
        let errors = CommandTemplate::parse("cat {input} {params.x}").unwrap_err();
        assert_eq!(
            errors,
            vec![UnknownPlaceholder {
                text: "input".into(),
                start: 4,
                end: 11
            }]
        );
    }

    #[test]
    fn quoting_defeats_injection() {
        let template = CommandTemplate::parse("cat {params.file}").unwrap();
        let rendered = template.render_shell(|_| vec!["x'; rm -rf / #".into()]);
        assert_eq!(rendered, r"cat 'x'\''; rm -rf / #'");
    }

    #[test]
    fn to_source_round_trips() {
        for text in [
            "awk '{{print}}' {inputs}",
            "echo ${X} {{a.b}} {out}",
            "a {b c} {{x}}",
        ] {
            let template = CommandTemplate::parse(text).unwrap();
            let again = CommandTemplate::parse(&template.to_source()).unwrap();
            assert_eq!(template, again, "{text}");
        }
    }
}
