//! Rendering a task's command and environment from its step's templates: each placeholder's
//! values (inputs, output directory, group and its fields, params), shell-quoted by the
//! template.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dsl::model::command::Placeholder;
use dsl::model::ParamValue;

use crate::plan::PlannedTask;
use crate::store::TaskRecord;

/// The text of one placeholder of a task.
fn placeholder_values(
    p: &Placeholder,
    task: &TaskRecord,
    planned: &PlannedTask,
    out: &Path,
    pipeline: &str,
    params: &BTreeMap<String, ParamValue>,
) -> Vec<String> {
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    match p {
        Placeholder::Inputs => task.inputs.iter().map(|i| path(&i.path)).collect(),
        Placeholder::InputsOf(name) => task
            .inputs
            .iter()
            .filter(|i| &i.from == name)
            .map(|i| path(&i.path))
            .collect(),
        Placeholder::Out => vec![path(&out.to_path_buf())],
        Placeholder::Group => task.group.iter().cloned().collect(),
        Placeholder::GroupField(field) => planned.fields.get(field).cloned().into_iter().collect(),
        Placeholder::Param(name) => params.get(name).map(|v| v.render()).into_iter().collect(),
        Placeholder::Arg(_) => Vec::new(),
        Placeholder::Pipeline => vec![pipeline.to_string()],
        Placeholder::Step => vec![task.step.clone()],
    }
}

pub fn render_command(
    step: &dsl::model::StepDef,
    task: &TaskRecord,
    planned: &PlannedTask,
    out: &Path,
    pipeline: &str,
    params: &BTreeMap<String, ParamValue>,
) -> String {
    step.run
        .render_shell(|p| placeholder_values(p, task, planned, out, pipeline, params))
}

pub fn render_env(
    step: &dsl::model::StepDef,
    task: &TaskRecord,
    planned: &PlannedTask,
    out: &Path,
    pipeline: &str,
    params: &BTreeMap<String, ParamValue>,
) -> Vec<(String, String)> {
    step.env
        .iter()
        .map(|(name, template)| {
            let value = template
                .render(|p| placeholder_values(p, task, planned, out, pipeline, params).join(" "));
            (name.clone(), value)
        })
        .collect()
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
