//! The examples of docs/language.md are checked: each ```pipe block after a `<!-- check: ok -->`
//! marker loads without an error, each after `<!-- check: parse -->` parses, and each after
//! `<!-- check: CODE -->` reports CODE. Every
//! diagnostic code has its section in the reference.

use std::path::Path;

use dsl::diagnostic::Code;

fn reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/language.md");
    std::fs::read_to_string(path).expect("docs/language.md is readable")
}

/// (line of the marker, what it expects, the example's text).
fn examples(text: &str) -> Vec<(usize, String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(expect) = line
            .trim()
            .strip_prefix("<!-- check: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.get(n + 1).map(|l| l.trim()),
            Some("```pipe"),
            "docs/language.md:{}: a check marker must be followed by a ```pipe block",
            n + 1
        );
        let body: Vec<&str> = lines[n + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .copied()
            .collect();
        found.push((n + 1, expect.to_string(), body.join("\n") + "\n"));
    }
    found
}

#[test]
fn every_marked_example_checks_as_it_says() {
    let text = reference();
    let examples = examples(&text);
    assert!(
        examples.len() > 40,
        "only {} examples found",
        examples.len()
    );
    let mut problems = Vec::new();
    for (line, expect, source) in examples {
        let loaded = dsl::load_source(format!("docs/language.md:{line}"), source.clone());
        let errors: Vec<&str> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.code.as_str())
            .collect();
        let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code.as_str()).collect();
        let ok = match expect.as_str() {
            "ok" => errors.is_empty(),
            // Syntax only: the example names files that are not there.
            "parse" => dsl::parser::parse(dsl::span::FileId(0), &source).is_ok(),
            code => codes.contains(&code),
        };
        if !ok {
            problems.push(format!(
                "docs/language.md:{line}: expected {expect}, got {codes:?}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_code_is_explained() {
    let text = reference();
    for code in Code::ALL {
        assert!(
            text.contains(&format!("### `{}`", code.as_str())),
            "docs/language.md has no section for {code}"
        );
    }
}

/// docs/grammar.md quotes every rule of the grammar as it is in `pipe.pest`.
#[test]
fn the_grammar_reference_quotes_every_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let grammar = std::fs::read_to_string(root.join("src/pipe.pest")).expect("pipe.pest");
    let reference =
        std::fs::read_to_string(root.join("../docs/grammar.md")).expect("docs/grammar.md");
    let quoted: std::collections::HashSet<&str> = reference.lines().map(str::trim_end).collect();
    let rule_lines: Vec<&str> = grammar
        .lines()
        .map(str::trim_end)
        .filter(|line| {
            line.split_once('=').is_some_and(|(name, _)| {
                !name.trim().is_empty()
                    && name.trim().chars().all(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .collect();
    assert!(
        rule_lines.len() > 100,
        "only {} rules found",
        rule_lines.len()
    );
    let missing: Vec<&str> = rule_lines
        .into_iter()
        .filter(|line| !quoted.contains(line))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/grammar.md does not quote these lines of pipe.pest:\n{}",
        missing.join("\n")
    );
}
