//! `engine check`: exit codes, positions in messages, every error of a file at once.

use crate::support::Env;

const VALID: &str = r#"pipeline hello {
  source words {
    root "data"
    glob "*.txt"
  }

  step count {
    input words
    run "wc -w {inputs} > {out}/count.txt"
  }
}
"#;

#[test]
fn valid_file_exits_zero() {
    let env = Env::new();
    env.write("hello.pipe", VALID);
    let run = env.engine(&["check", "hello.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "ok: 1 file, 1 pipeline: 0 errors, 0 warnings\n");
}

#[test]
fn syntax_error_names_line_column_and_source_line() {
    let env = Env::new();
    let mut text = VALID.replace("    run \"wc", "    rn \"wc");
    text.insert_str(0, "# a comment\n# another\n");
    env.write("broken.pipe", &text);
    let run = env.engine(&["check", "broken.pipe"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("[broken.pipe:11:5]"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("    rn \"wc -w {inputs} > {out}/count.txt\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("    :     ^"),
        "a caret under the span: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expected a step setting"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("kw_"),
        "no raw rule names: {}",
        run.stderr
    );
}

#[test]
fn cycle_names_every_step() {
    let env = Env::new();
    env.write(
        "cycle.pipe",
        r#"pipeline p {
  step a { input c run "x > {out}/a" }
  step b { input a run "x > {out}/b" }
  step c { input b run "x > {out}/c" }
}
"#,
    );
    let run = env.engine(&["check", "cycle.pipe"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("pipe::cycle"), "{}", run.stderr);
    assert!(run.stderr.contains("a -> b -> c -> a"), "{}", run.stderr);
    for step in ["needed by `b`", "needed by `c`", "needed by `a`"] {
        assert!(run.stderr.contains(step), "{step}: {}", run.stderr);
    }
}

#[test]
fn bad_default_names_param_value_and_constraint() {
    let env = Env::new();
    env.write(
        "p.pipe",
        r#"pipeline p {
  param threads: int = 100 in 1..64
  step a { run "echo {params.threads} > {out}/t" }
}
"#,
    );
    let run = env.engine(&["check", "p.pipe"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "the default of param `threads` is `100`, which is not a whole number between 1 and 64"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("[p.pipe:2:24]"), "{}", run.stderr);
}

#[test]
fn all_errors_are_reported_at_once_and_warnings_do_not_fail() {
    let env = Env::new();
    env.write(
        "many.pipe",
        r#"pipeline p {
  param unused: int = 1
  trigger cron "0 25 * * *" tz "Mars/Olympus"
  source extra { root "x" glob "*" }
  step a { run "cat {inptus} > {out}/a" timeout 5x }
}
"#,
    );
    let run = env.engine(&["check", "--json", "many.pipe"]);
    assert_eq!(run.code, 1);
    let diagnostics: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    let codes: Vec<&str> = diagnostics
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    for code in [
        "pipe::invalid-cron",
        "pipe::invalid-timezone",
        "pipe::unknown-placeholder",
        "pipe::invalid-duration",
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    let first = &diagnostics[0];
    assert_eq!(first["file"], "many.pipe");
    assert!(first["line"].as_u64().unwrap() >= 1);

    env.write(
        "warn.pipe",
        &VALID.replace(
            "pipeline hello {",
            "pipeline hello {\n  param unused: int = 1",
        ),
    );
    let run = env.engine(&["check", "warn.pipe"]);
    assert_eq!(run.code, 0, "warnings alone pass: {}", run.stderr);
    assert!(run.stderr.contains("pipe::unused-param"), "{}", run.stderr);
    let run = env.engine(&["check", "--deny-warnings", "warn.pipe"]);
    assert_eq!(run.code, 1);
}

#[test]
fn usage_errors_exit_two() {
    let env = Env::new();
    assert_eq!(env.engine(&["check"]).code, 2);
    let run = env.engine(&["check", "missing.pipe"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cannot read `missing.pipe`"),
        "{}",
        run.stderr
    );
    std::fs::create_dir(env.path().join("empty")).unwrap();
    let run = env.engine(&["check", "empty"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no .pipe files in `empty`"),
        "{}",
        run.stderr
    );
}

#[test]
fn directories_are_searched_and_relative_uses_resolve() {
    let env = Env::new();
    env.write(
        "flows/lib/common.pipe",
        "template count() {\n  run \"wc -l {inputs} > {out}/n\"\n}\n",
    );
    env.write(
        "flows/main.pipe",
        r#"use "lib/common.pipe"
use checksum

pipeline p {
  source s { root "d" glob "*" }
  step n using common.count() { input s }
  step sums using checksum.sha256() { input n }
}
"#,
    );
    let run = env.engine(&["check", "flows"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("2 files, 1 pipeline"), "{}", run.stderr);

    env.write(
        "flows/main.pipe",
        "use \"lib/nope.pipe\"\npipeline p { step a { run \"true\" } }\n",
    );
    let run = env.engine(&["check", "flows/main.pipe"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("pipe::use-not-found"), "{}", run.stderr);
}
