//! Command templates: the text of a `run` (or an `env` value) split into literal text and
//! placeholders, and the one function that renders it with every value shell-quoted.
//!
//! The rules, in order: `{{` opens an escaped brace and `}}` closes it (both print one brace);
//! `${` is the shell's and is left alone; `{name}` or `{name.name}` is a placeholder;
//! any other brace is literal, so `awk '{ print $1 }'` needs no escaping.

use serde::{Deserialize, Serialize};

/// A placeholder of a template. `S` is what holds the name of those that have one: a `String`
/// for one on its own, a `&str` for one read from a [`CommandTemplate`]'s text, and `()` for a
/// template's piece, whose name is in the template's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Placeholder<S = String> {
    /// `{inputs}`: every input path.
    Inputs,
    /// `{inputs.NAME}`: the paths of one input.
    InputsOf(S),
    /// `{out}`: the task's output directory.
    Out,
    /// `{group}`: the group key.
    Group,
    /// `{group.FIELD}`.
    GroupField(S),
    /// `{params.NAME}`.
    Param(S),
    /// `{args.NAME}`: a template argument, replaced when the template is instantiated.
    Arg(S),
    /// `{pipeline}`.
    Pipeline,
    /// `{step}`.
    Step,
}

impl<S> Placeholder<S> {
    /// The same placeholder, its name (if it has one) turned into `f(name)`.
    fn map<'a, T>(&'a self, f: impl FnOnce(&'a S) -> T) -> Placeholder<T> {
        match self {
            Placeholder::Inputs => Placeholder::Inputs,
            Placeholder::InputsOf(name) => Placeholder::InputsOf(f(name)),
            Placeholder::Out => Placeholder::Out,
            Placeholder::Group => Placeholder::Group,
            Placeholder::GroupField(name) => Placeholder::GroupField(f(name)),
            Placeholder::Param(name) => Placeholder::Param(f(name)),
            Placeholder::Arg(name) => Placeholder::Arg(f(name)),
            Placeholder::Pipeline => Placeholder::Pipeline,
            Placeholder::Step => Placeholder::Step,
        }
    }
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

/// A part of a template: literal text or a placeholder. `S` holds the text and names, as in
/// [`Placeholder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part<S = String> {
    Text(S),
    Placeholder(Placeholder<S>),
}

/// A parsed command template: a sequence of [`Part`]s, serialized as `{"parts": [...]}`.
///
/// A pipeline holds one per `run` and `env` value of every step, so the parts are not kept as
/// a vector of strings: their text (literal text, and the names of placeholders) is kept in one
/// string, and each part as its kind and where its text ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandTemplate {
    text: Box<str>,
    /// Empty when the template is one part of literal text (as most `env` values are): all of
    /// `text`, or nothing if `text` is empty too.
    pieces: Box<[Piece]>,
}

/// One part of a [`CommandTemplate`]: its kind (`None` for literal text), and the end of its
/// text in the template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    kind: Option<Placeholder<()>>,
    end: usize,
}

/// Builds a [`CommandTemplate`] part by part.
#[derive(Default)]
struct TemplateBuilder {
    text: String,
    pieces: Vec<Piece>,
}

impl TemplateBuilder {
    /// Literal text, joined to the text part before it if there is one.
    fn text(&mut self, text: &str) {
        self.text.push_str(text);
        match self.pieces.last_mut() {
            Some(Piece { kind: None, end }) => *end = self.text.len(),
            _ => self.piece(None),
        }
    }

    fn placeholder(&mut self, placeholder: &Placeholder) {
        let kind = placeholder.map(|name| self.text.push_str(name));
        self.piece(Some(kind));
    }

    fn part(&mut self, part: &Part) {
        match part {
            Part::Text(text) => self.text(text),
            Part::Placeholder(p) => self.placeholder(p),
        }
    }

    fn piece(&mut self, kind: Option<Placeholder<()>>) {
        self.pieces.push(Piece {
            kind,
            end: self.text.len(),
        });
    }

    fn finish(mut self) -> CommandTemplate {
        if let [Piece { kind: None, .. }] = self.pieces[..] {
            if !self.text.is_empty() {
                self.pieces.clear();
            }
        }
        CommandTemplate {
            text: self.text.into_boxed_str(),
            pieces: self.pieces.into_boxed_slice(),
        }
    }
}

impl Serialize for CommandTemplate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Parts<'a>(&'a CommandTemplate);
        impl Serialize for Parts<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.part_refs())
            }
        }
        let mut state = serializer.serialize_struct("CommandTemplate", 1)?;
        state.serialize_field("parts", &Parts(self))?;
        state.end()
    }
}

impl<'de> Deserialize<'de> for CommandTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "CommandTemplate")]
        struct Parts {
            parts: Vec<Part>,
        }
        let parts = Parts::deserialize(deserializer)?;
        Ok(CommandTemplate::from_parts(&parts.parts))
    }
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
        let mut template = TemplateBuilder::default();
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
                            template.text(&literal);
                            literal.clear();
                        }
                        template.placeholder(&placeholder);
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
            template.text(&literal);
        }
        if unknown.is_empty() {
            Ok(template.finish())
        } else {
            Err(unknown)
        }
    }

    /// The template made of `parts`.
    pub fn from_parts(parts: &[Part]) -> CommandTemplate {
        let mut template = TemplateBuilder::default();
        for part in parts {
            template.part(part);
        }
        template.finish()
    }

    /// The parts, in order (adjacent literal text always in one part).
    pub fn parts(&self) -> impl Iterator<Item = Part> + '_ {
        self.part_refs().map(|part| match part {
            Part::Text(text) => Part::Text(text.to_string()),
            Part::Placeholder(p) => Part::Placeholder(owned(&p)),
        })
    }

    /// The parts, borrowing their text and names from the template's.
    fn part_refs(&self) -> impl Iterator<Item = Part<&str>> {
        let only_text = self.pieces.is_empty() && !self.text.is_empty();
        let only_text = only_text.then_some(Part::Text(&*self.text));
        let starts = std::iter::once(0).chain(self.pieces.iter().map(|piece| piece.end));
        let parts = self.pieces.iter().zip(starts).map(|(piece, start)| {
            let text = &self.text[start..piece.end];
            match piece.kind {
                None => Part::Text(text),
                Some(kind) => Part::Placeholder(kind.map(|()| text)),
            }
        });
        only_text.into_iter().chain(parts)
    }

    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.parts().filter_map(|part| match part {
            Part::Placeholder(p) => Some(p),
            Part::Text(_) => None,
        })
    }

    /// The names of the params the template reads (`{params.NAME}`), in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.part_refs().filter_map(|part| match part {
            Part::Placeholder(Placeholder::Param(name)) => Some(name),
            _ => None,
        })
    }

    /// Replaces each placeholder for which `part` gives a replacement (literal text already in
    /// final form, or another placeholder), keeping the others.
    pub fn substitute(
        &self,
        mut part: impl FnMut(&Placeholder) -> Option<Part>,
    ) -> CommandTemplate {
        let mut template = TemplateBuilder::default();
        for original in self.parts() {
            match &original {
                Part::Placeholder(p) => match part(p) {
                    Some(replaced) => template.part(&replaced),
                    None => template.part(&original),
                },
                Part::Text(_) => template.part(&original),
            }
        }
        template.finish()
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
        for part in self.part_refs() {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Placeholder(p) => out.push_str(&value(&owned(&p))),
            }
        }
        out
    }

    /// The canonical text of the template: what a user would write to get it.
    pub fn to_source(&self) -> String {
        let mut out = String::new();
        for part in self.parts() {
            match part {
                Part::Text(text) => out.push_str(&escape_literal(&text)),
                Part::Placeholder(p) => {
                    out.push('{');
                    out.push_str(&placeholder_text(&p));
                    out.push('}');
                }
            }
        }
        out
    }
}

/// A placeholder read from a template's text, with its name its own.
fn owned(placeholder: &Placeholder<&str>) -> Placeholder {
    placeholder.map(|name| name.to_string())
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
        CommandTemplate::parse(text).unwrap().parts().collect()
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
    fn serializes_as_its_list_of_parts() {
        #[derive(Serialize)]
        struct Listed {
            parts: Vec<Part>,
        }
        for text in [
            "",
            "plain",
            "{inputs} {inputs.a}{out}/{group}{group.f} {params.p} {args.x} {pipeline}{step}",
            "awk '{{print}}' {inputs} > {out}/x",
            "C",
            "{group}",
        ] {
            let template = CommandTemplate::parse(text).unwrap();
            let listed = Listed {
                parts: template.parts().collect(),
            };
            let json = serde_json::to_string(&template).unwrap();
            assert_eq!(json, serde_json::to_string(&listed).unwrap(), "{text}");
            let back: CommandTemplate = serde_json::from_str(&json).unwrap();
            assert_eq!(back, template, "{text}");
        }
    }

    #[test]
    fn keeps_an_empty_text_part() {
        let template = CommandTemplate::parse("{args.x}").unwrap();
        let empty = template.substitute(|_| Some(Part::Text(String::new())));
        assert_eq!(
            empty.parts().collect::<Vec<_>>(),
            vec![Part::Text(String::new())]
        );
        assert_eq!(CommandTemplate::parse("").unwrap().parts().count(), 0);
        let text = template.substitute(|_| Some(Part::Text("C".into())));
        assert_eq!(text, CommandTemplate::parse("C").unwrap());
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
