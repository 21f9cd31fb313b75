//! Fixture-driven snapshots: every file in `tests/fixtures/invalid` renders its diagnostics
//! (without colour) into a snapshot; every file in `tests/fixtures/valid` checks with no
//! diagnostic at all and snapshots its lowered pipelines. Each valid fixture, workflow and
//! stdlib module is also formatted, and must stay the same meaning and be a fixpoint.

use std::path::{Path, PathBuf};

fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .to_path_buf()
}

#[test]
fn invalid_fixtures() {
    insta::glob!("fixtures/invalid/*.pipe", |path| {
        let text = std::fs::read_to_string(path).expect("fixture is readable");
        let loaded = dsl::load_source(relative(path), text);
        assert!(
            !loaded.diagnostics.is_empty(),
            "{} has no diagnostic",
            path.display()
        );
        let rendered = dsl::render::render_all(&loaded.diagnostics, &loaded.sources, false);
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn valid_fixtures() {
    insta::glob!("fixtures/valid/*.pipe", |path| {
        let text = std::fs::read_to_string(path).expect("fixture is readable");
        let loaded = dsl::load_source(relative(path), text);
        let rendered = dsl::render::render_all(&loaded.diagnostics, &loaded.sources, false);
        assert!(
            loaded.diagnostics.is_empty(),
            "{}:\n{rendered}",
            path.display()
        );
        insta::assert_json_snapshot!(loaded.pipelines);
    });
}

/// Formatting keeps the meaning and is a fixpoint, on every file we ship or test with.
#[test]
fn format_is_a_meaning_preserving_fixpoint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["tests/fixtures/valid", "../workflows", "../stdlib"] {
        collect(&root.join(dir), &mut files);
    }
    assert!(
        files.len() >= 5,
        "expected fixtures, workflows and stdlib modules"
    );
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let before = dsl::load_source(&path, text.clone());
        assert!(before.is_valid(), "{} does not check", path.display());
        let module = dsl::parser::parse(before.root, &text).expect("parses");
        let formatted = dsl::format::format_module(&module);
        let after = dsl::load_source(&path, formatted.clone());
        assert!(
            after.is_valid(),
            "formatted {} does not check:\n{formatted}",
            path.display()
        );
        assert_eq!(
            before.pipelines,
            after.pipelines,
            "formatting changed the meaning of {}",
            path.display()
        );
        let again = dsl::format::format_module(
            &dsl::parser::parse(after.root, &formatted).expect("parses"),
        );
        assert_eq!(
            formatted,
            again,
            "fmt is not idempotent on {}",
            path.display()
        );
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "pipe") {
            files.push(path);
        }
    }
}
