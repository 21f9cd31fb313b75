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
