//! Rendering a task's command and environment from its step's templates: each placeholder's
//! values (inputs, output directory, group and its fields, params), shell-quoted by the
//! template.

use std::collections::BTreeMap;
use std::path::Path;

use dsl::model::command::Placeholder;
use dsl::model::{ParamValue, StepDef};

use crate::plan::PlannedTask;
use crate::store::TaskRecord;

/// What a task's placeholders are filled from.
pub struct Values<'a> {
    pub task: &'a TaskRecord,
    pub planned: &'a PlannedTask,
    /// The attempt's output directory: `{out}`.
    pub out: &'a Path,
    pub pipeline: &'a str,
    pub params: &'a BTreeMap<String, ParamValue>,
}

impl Values<'_> {
    /// The text of one placeholder.
    fn of(&self, p: &Placeholder) -> Vec<String> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let task = self.task;
        match p {
            Placeholder::Inputs => task.inputs.iter().map(|i| path(&i.path)).collect(),
            Placeholder::InputsOf(name) => task
                .inputs
                .iter()
                .filter(|i| &i.from == name)
                .map(|i| path(&i.path))
                .collect(),
            Placeholder::Out => vec![path(self.out)],
            Placeholder::Group => task.group.iter().cloned().collect(),
            Placeholder::GroupField(field) => self
                .planned
                .fields
                .get(field)
                .cloned()
                .into_iter()
                .collect(),
            Placeholder::Param(name) => self
                .params
                .get(name)
                .map(|v| v.render())
                .into_iter()
                .collect(),
            Placeholder::Arg(_) => Vec::new(),
            Placeholder::Pipeline => vec![self.pipeline.to_string()],
            Placeholder::Step => vec![task.step.clone()],
        }
    }

    /// The step's command, every value shell-quoted.
    pub fn command(&self, step: &StepDef) -> String {
        step.run.render_shell(|p| self.of(p))
    }

    /// The step's `env`, each value's pieces joined by spaces.
    pub fn env(&self, step: &StepDef) -> Vec<(String, String)> {
        step.env
            .iter()
            .map(|(name, template)| (name.clone(), template.render(|p| self.of(p).join(" "))))
            .collect()
    }
}

/// `step [group]`, for messages.
pub fn label(task: &TaskRecord) -> String {
    match &task.group {
        Some(group) => format!("{} [{}]", task.step, printable(group)),
        None => task.step.clone(),
    }
}

/// `text` for a terminal or a table: control characters (a newline in a group key, an escape
/// sequence in a file name) are written as escapes (`\n`, `\u{1b}`), so that one value stays
/// on one line and cannot drive the terminal. JSON output keeps the text exact.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("S01 é"), "S01 é");
        assert_eq!(printable("a\nb\tc\u{1b}[31m"), "a\\nb\\tc\\u{1b}[31m");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
