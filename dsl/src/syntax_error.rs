//! The one place where pest's failures become diagnostics. Grammar rule names never reach a
//! user: each rule is turned into the words a person would use ("a step setting", "a name").

use pest::error::{Error, ErrorVariant, InputLocation};

use crate::diagnostic::{Code, Diagnostic};
use crate::parser::Rule;
use crate::span::{FileId, Span};

pub(crate) fn from_pest(file: FileId, text: &str, error: Error<Rule>) -> Diagnostic {
    let at = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    };
    let expected = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => expected_phrase(positives),
        ErrorVariant::CustomError { message } => message.clone(),
    };
    let (found, width) = found_at(text, at);
    let span = Span::new(file, at, at + width);
    let mut diagnostic =
        Diagnostic::new(Code::Syntax, format!("expected {expected}, found {found}"))
            .label(span, format!("expected {expected}"));
    if let Some(help) = help_for(text, at) {
        diagnostic = diagnostic.help(help);
    }
    diagnostic
}

/// What stands at `at`, in words, and how many bytes to underline.
fn found_at(text: &str, at: usize) -> (String, usize) {
    let rest = &text[at.min(text.len())..];
    let Some(first) = rest.chars().next() else {
        return ("the end of the file".to_string(), 0);
    };
    if first == '\n' || first == '\r' {
        return ("the end of the line".to_string(), 0);
    }
    if first == '"' {
        let line = rest.lines().next().unwrap_or(rest);
        if line[1..].find('"').is_none() {
            return ("a string that is never closed".to_string(), line.len());
        }
    }
    let word: String = if first.is_alphanumeric() || first == '_' {
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .collect()
    } else {
        first.to_string()
    };
    (format!("`{word}`"), word.len())
}

fn help_for(text: &str, at: usize) -> Option<String> {
    let rest = &text[at.min(text.len())..];
    if rest.starts_with('"') && !rest.lines().next().unwrap_or("")[1..].contains('"') {
        return Some(
            "close the string with `\"` on the same line, or use \"\"\"triple quotes\"\"\" for text over several lines"
                .to_string(),
        );
    }
    None
}

/// Joins the phrases of the rules pest expected into one readable list.
fn expected_phrase(rules: &[Rule]) -> String {
    let mut phrases: Vec<&'static str> = Vec::new();
    for rule in rules.iter().filter(|rule| **rule != Rule::comment) {
        let phrase = phrase(*rule);
        if !phrases.contains(&phrase) {
            phrases.push(phrase);
        }
    }
    match phrases.as_slice() {
        [] => "something else".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The words for one grammar rule.
fn phrase(rule: Rule) -> &'static str {
    use Rule::*;
    match rule {
        EOI => "the end of the file",
        comment => "a comment",
        file | top_item | kw_use | kw_template | kw_pipeline => "`pipeline`, `template` or `use`",
        use_decl => "`use`",
        kw_as => "`as`",
        template_decl => "a template",
        template_params => "the template's parameters in parentheses",
        template_param => "a template parameter",
        pipeline_decl => "a pipeline",
        pipeline_item | kw_trigger | kw_param | kw_source | kw_step => {
            "`trigger`, `param`, `source`, `step` or `}`"
        }
        trigger => "a trigger",
        trigger_manual | trigger_cron | trigger_continuous | kw_manual | kw_cron
        | kw_continuous => "a trigger kind (`manual`, `cron` or `continuous`)",
        kw_tz => "`tz`",
        kw_poll => "`poll`",
        param_decl => "a param",
        param_type | enum_type | kw_enum => {
            "a param type (int, float, string, bool, path, duration, size or enum(...))"
        }
        constraint | range | pattern | kw_in | kw_matches => {
            "a constraint (`in min..max` or `matches \"regex\"`)"
        }
        source_decl => "a source",
        source_item | source_root | source_glob | source_exclude | source_items | source_group
        | kw_root | kw_glob | kw_exclude | kw_items | kw_group => {
            "a source setting (`root`, `glob`, `exclude`, `items`, `group`) or `}`"
        }
        kw_by => "`by`",
        group_regex | group_segment | kw_regex | kw_segment => "`regex` or `segment`",
        step_decl => "a step",
        each_clause | kw_each => "`each`",
        using_clause | kw_using => "`using`",
        template_ref => "a template name",
        call_args => "arguments in parentheses",
        call_arg => "an argument",
        step_body => "`{`",
        step_item | step_input | step_after | step_when | step_run | step_output | step_retries
        | step_backoff | step_timeout | step_cooldown | step_priority | step_concurrency
        | step_env | step_resources | step_executor | step_container | kw_input | kw_after
        | kw_when | kw_run | kw_output | kw_retries | kw_backoff | kw_timeout | kw_cooldown
        | kw_priority | kw_concurrency | kw_env | kw_resources | kw_executor | kw_container => {
            "a step setting (`run`, `input`, `after`, `when`, ...) or `}`"
        }
        backoff_kind | kw_fixed | kw_exponential => "`fixed` or `exponential`",
        env_var | env_name => "an environment variable (`NAME = \"value\"`)",
        resource | kw_cpus | kw_gpus | kw_memory | kw_time => {
            "a resource (`cpus`, `gpus`, `memory` or `time`)"
        }
        executor_setting => "an executor setting (`partition \"name\"`, ...)",
        expr | or_expr | and_expr | not_expr | negation | kw_not => "a condition",
        comparison | field_ref => "a field such as `group.batch` or `params.mode`",
        cmp_op => "a comparison (`==`, `!=`, `~`, `!~`, `<`, `<=`, `>` or `>=`)",
        kw_and | kw_or => "`and` or `or`",
        value => "a value",
        quantity => "a duration or size (`30s`, `8GB`)",
        number => "a number",
        integer => "a whole number",
        boolean => "`true` or `false`",
        string | quoted_string | triple_string => "a quoted string",
        ident | ident_char => "a name",
        WHITESPACE => "a space",
    }
}

#[cfg(test)]
mod tests {
    use crate::parser::parse;
    use crate::span::FileId;

    fn message(text: &str) -> String {
        parse(FileId(0), text).unwrap_err()[0].message.clone()
    }

    #[test]
    fn names_are_words_not_rules() {
        assert_eq!(message("pipeline {"), "expected a name, found `{`");
        let m = message("pipeline p { step a { rn \"x\" } }");
        assert!(m.starts_with("expected a step setting"), "{m}");
    }

    #[test]
    fn unterminated_string_is_named() {
        let text = "pipeline p {\n  step a {\n    run \"echo\n  }\n}\n";
        assert!(message(text).ends_with("found a string that is never closed"));
    }
}
