//! The one place where pest's failures become diagnostics. Grammar rule names never reach a
//! user: each rule is turned into the words a person would use ("a step setting", "a name").
//! The parser reads a file unit by unit; when a unit fails, this module runs pest once more,
//! with its error details on, to find what was expected and where.

use std::sync::{Mutex, PoisonError};

use pest::error::{Error, ErrorVariant, InputLocation};
use pest::Parser as _;

use crate::diagnostic::{Code, Diagnostic};
use crate::parser::{PipeParser, Rule};
use crate::span::{FileId, Span};

/// Runs `rule` on `text[from..]` to explain the syntax error the parser met at `at` (`from` is
/// at or before it), and turns pest's failure into a diagnostic.
pub(crate) fn explain(file: FileId, text: &str, rule: Rule, from: usize, at: usize) -> Diagnostic {
    match with_error_detail(|| PipeParser::parse(rule, &text[from..])) {
        Err(error) => from_pest(file, text, from, error),
        Ok(_) => unexpected(file, text, at),
    }
}

/// The diagnostic for pest's failure to parse `text[offset..]`, where pest's positions are
/// relative to `offset`.
///
/// pest reports where the rules it expected would have started, which for a missing `:` or
/// `=` is the start of the whole declaration. When the failure's details show that the
/// parse got further and then missed a literal of the grammar (`:`, `=`, `{`, `)`...), that
/// literal is reported where it is missing instead.
fn from_pest(file: FileId, text: &str, offset: usize, error: Error<Rule>) -> Diagnostic {
    let pest_at = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    };
    if let ErrorVariant::CustomError { message } = &error.variant {
        // pest stops before its recursion would overflow the stack: only nesting gets there.
        if message.contains("stack limit") {
            let at = offset + pest_at;
            let (_, width) = found_at(text, at);
            return Diagnostic::new(Code::Syntax, "this is nested too deeply to be read")
                .label(Span::new(file, at, at + width), "nested too deeply here")
                .help("write the condition with fewer levels of parentheses and `not` (a few hundred at most)");
        }
    }
    let (at, expected) = match missed_literals(&error).filter(|(pos, _)| *pos > pest_at) {
        Some((pos, literals)) => (pos, literals),
        None => {
            let expected = match &error.variant {
                ErrorVariant::ParsingError { positives, .. } => expected_phrase(positives),
                ErrorVariant::CustomError { message } => message.clone(),
            };
            (pest_at, expected)
        }
    };
    let at = offset + at;
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

/// The literals the parse missed at the furthest position it reached, in words, when only
/// literals of normal (non-atomic) rules were tried there; `None` when that is not the case
/// (a token cut short, such as the `2` of `2.5` where a whole number is wanted, is better
/// described by the rule it belongs to) or when pest kept no details.
fn missed_literals(error: &Error<Rule>) -> Option<(usize, String)> {
    let attempts = error.parse_attempts()?;
    let all_in_normal_rules = attempts.call_stacks().iter().all(|stack| {
        stack
            .deepest
            .get_rule()
            .is_some_and(|rule| !is_token_rule(*rule))
    });
    if !all_in_normal_rules || !attempts.unexpected_tokens().is_empty() {
        return None;
    }
    let mut literals = Vec::new();
    for token in attempts.expected_tokens() {
        // pest does not export the token type by name; a literal's `Debug` says `Sensitive`,
        // and its `Display` is the literal itself (character classes print otherwise).
        if !format!("{token:?}").starts_with("Sensitive") {
            return None;
        }
        let literal = token.to_string();
        if !WHITESPACE.contains(&literal.as_str()) {
            literals.push(format!("`{literal}`"));
        }
    }
    let phrase = match literals.as_slice() {
        [] => return None,
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    };
    Some((attempts.max_position, phrase))
}

/// What the grammar's `WHITESPACE` matches; pest tries these before every token.
const WHITESPACE: [&str; 4] = [" ", "\t", "\r", "\n"];

/// Atomic rules: tokens such as names, numbers, strings and keywords (every `kw_*` rule),
/// whose insides pest does not report.
fn is_token_rule(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        comment
            | template_ref
            | env_name
            | field_ref
            | quantity
            | number
            | integer
            | boolean
            | string
            | triple_string
            | quoted_string
            | ident
            | ident_char
            | WHITESPACE
    ) || format!("{rule:?}").starts_with("kw_")
}

/// Runs `parse` with pest's error details (the furthest position reached and the literals
/// tried there) switched on. The switch is global to the process, so it is counted: it stays
/// on while any thread is inside, and other threads' parses only keep more details meanwhile.
fn with_error_detail<T>(parse: impl FnOnce() -> T) -> T {
    static INSIDE: Mutex<usize> = Mutex::new(0);
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            let mut inside = INSIDE.lock().unwrap_or_else(PoisonError::into_inner);
            *inside -= 1;
            if *inside == 0 {
                pest::set_error_detail(false);
            }
        }
    }
    {
        let mut inside = INSIDE.lock().unwrap_or_else(PoisonError::into_inner);
        if *inside == 0 {
            pest::set_error_detail(true);
        }
        *inside += 1;
    }
    let _leave = Leave;
    parse()
}

/// A syntax error at `at` when pest gave no failure to explain it (not expected to happen).
fn unexpected(file: FileId, text: &str, at: usize) -> Diagnostic {
    let (found, width) = found_at(text, at);
    Diagnostic::new(Code::Syntax, format!("unexpected {found}"))
        .label(Span::new(file, at, at + width), "not expected here")
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
    if is_unclosed_triple(rest) {
        return ("a `\"\"\"` string that is never closed".to_string(), 3);
    }
    if first == '"' {
        let line = rest.lines().next().unwrap_or(rest);
        return match quoted_len(line) {
            Some(len) => ("a string".to_string(), len),
            None => ("a string that is never closed".to_string(), line.len()),
        };
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
    if is_unclosed_triple(rest) {
        return Some(
            "a string opened with `\"\"\"` ends at the next `\"\"\"`, and there is none: add `\"\"\"` where its text ends"
                .to_string(),
        );
    }
    if rest.starts_with('"') && quoted_len(rest.lines().next().unwrap_or("")).is_none() {
        return Some(
            "close the string with `\"` on the same line, or use \"\"\"triple quotes\"\"\" for text over several lines"
                .to_string(),
        );
    }
    None
}

/// The length of the one-line string `line` starts with, through its closing quote.
fn quoted_len(line: &str) -> Option<usize> {
    let mut chars = line.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// `rest` opens a `"""` string with no `"""` after it to close it.
fn is_unclosed_triple(rest: &str) -> bool {
    rest.strip_prefix("\"\"\"")
        .is_some_and(|body| !body.contains("\"\"\""))
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
        file | file_body | top_item | top_unit | kw_use | kw_template | kw_pipeline => {
            "`pipeline`, `template` or `use`"
        }
        use_decl => "`use`",
        kw_as => "`as`",
        template_decl => "a template",
        template_params => "the template's parameters in parentheses",
        template_param => "a template parameter",
        pipeline_decl | pipeline_head => "a pipeline",
        pipeline_body | pipeline_item | pipeline_items | kw_trigger | kw_param | kw_source
        | kw_step | kw_overlap | kw_notify => {
            "`trigger`, `param`, `source`, `step`, `overlap`, `notify` or `}`"
        }
        trigger => "a trigger",
        trigger_manual | trigger_cron | trigger_continuous | kw_manual | kw_cron
        | kw_continuous => "a trigger kind (`manual`, `cron` or `continuous`)",
        kw_tz => "`tz`",
        kw_poll => "`poll`",
        kw_max => "`max`",
        kw_missed => "`missed`",
        overlap_decl => "an overlap policy",
        notify_decl => "a webhook",
        kw_on => "`on`",
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
    fn nesting_too_deep_for_the_parser_is_said_in_words() {
        let when = format!(
            "{}group.g == \"x\"{}",
            "(".repeat(20_000),
            ")".repeat(20_000)
        );
        let text =
            format!("pipeline p {{\n  step a {{\n    when {when}\n    run \"true\"\n  }}\n}}\n");
        assert_eq!(message(&text), "this is nested too deeply to be read");
        let text = format!(
            "pipeline p {{ step a {{ when {}group.g run \"true\" }} }}",
            "not ".repeat(100_000)
        );
        assert_eq!(message(&text), "this is nested too deeply to be read");
    }

    #[test]
    fn unterminated_string_is_named() {
        let text = "pipeline p {\n  step a {\n    run \"echo\n  }\n}\n";
        assert!(message(text).ends_with("found a string that is never closed"));
    }
}
