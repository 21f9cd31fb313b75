//! The shipped workflows and stdlib: every file checks without warnings and is formatted.

use crate::support::{repo_root, run_in};

#[test]
fn workflows_and_stdlib_check_clean() {
    let run = run_in(
        &repo_root(),
        &["check", "--deny-warnings", "workflows", "stdlib"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn workflows_and_stdlib_are_formatted() {
    let run = run_in(&repo_root(), &["fmt", "--check", "workflows", "stdlib"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn there_are_at_least_four_workflows() {
    let count = std::fs::read_dir(repo_root().join("workflows"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "pipe")
        })
        .count();
    assert!(count >= 4, "only {count} workflows");
}

/// Every shipped workflow runs to success on its shipped data, and a second run is all cached
/// (the README's first command, for hello).
#[test]
fn every_workflow_runs_and_then_is_cached() {
    let root = repo_root();
    let scratch = tempfile::tempdir().unwrap();
    for name in ["hello", "sequencing", "observatory", "nightly"] {
        let state = scratch.path().join(format!("{name}-state"));
        let out = scratch.path().join(format!("{name}-out"));
        let file = format!("workflows/{name}.pipe");
        let args = [
            "run",
            &file,
            "--state",
            state.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ];
        let first = run_in(&root, &args);
        assert_eq!(first.code, 0, "{name}: {}", first.stderr);
        let second = run_in(&root, &args);
        assert_eq!(second.code, 0, "{name}: {}", second.stderr);
        let summary = second.stderr.lines().last().unwrap_or_default().to_string();
        assert!(
            summary.contains("cached)"),
            "{name}: second run should be all cached: {summary}"
        );
        assert!(
            !summary.contains("ran"),
            "{name}: second run ran something: {summary}"
        );
    }
    let words =
        std::fs::read_to_string(scratch.path().join("hello-out/hello/total/_all/words.txt"))
            .unwrap();
    assert!(words.ends_with("total 102\n"), "{words}");
}
