//! Where the library's log lines go: stderr, for every command, filtered by `ENGINE_LOG`
//! (warnings and errors when it is unset).

use crate::support::Env;

/// One task per text file under `data`, at any depth.
const LIST: &str = r#"pipeline list {
  source texts {
    root "data"
    glob "**/*.txt"
    group file by regex "(?P<file>[^/]+)[.]txt$"
  }

  step copy each file {
    input texts
    run "cat {inputs} > {out}/copy.txt"
    output "copy.txt"
  }
}
"#;

fn list_env() -> Env {
    let env = Env::new();
    env.write("list.pipe", LIST);
    env.write("data/a.txt", "a\n");
    env
}

#[test]
fn a_warning_of_the_library_reaches_stderr_under_run() {
    let env = list_env();
    // A link back to its own directory: the scan warns and skips it.
    std::os::unix::fs::symlink(".", env.path().join("data/again")).unwrap();
    let run = env.engine(&["run", "list.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|line| line.starts_with("warning: skipping a symlink loop path=")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("1 task"), "{}", run.stderr);
}

#[test]
fn engine_log_debug_prints_debug_lines() {
    let env = list_env();
    let quiet = env.engine(&["run", "list.pipe"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(!quiet.stderr.contains("debug"), "{}", quiet.stderr);

    env.write("data/b.txt", "b\n");
    let run = env.engine_with(&[("ENGINE_LOG", "debug")], &["run", "list.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|line| line.starts_with("debug engine::exec::local: attempt started pid=")),
        "{}",
        run.stderr
    );
    // Every transition, as the store records it.
    for kind in [
        "run.created",
        "run.planned",
        "run.started",
        "attempt.started",
        "task.succeeded",
        "run.succeeded",
    ] {
        assert!(
            run.stderr
                .lines()
                .any(|line| line.starts_with(&format!("debug engine::store: {kind} "))),
            "no {kind} in:\n{}",
            run.stderr
        );
    }
}
