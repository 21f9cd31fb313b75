//! `engine fmt`: stdout by default, `--check`, `--write`; comments kept; syntax errors refused.

use crate::support::Env;

const MESSY: &str = "# greeting pipeline\npipeline hello{ # trailing\n\n\n   step greet {run \"echo hi > {out}/hi.txt\"   # say hi\n retries 2}}\n";
const TIDY: &str = "# greeting pipeline\npipeline hello { # trailing\n  step greet {\n    run \"echo hi > {out}/hi.txt\" # say hi\n    retries 2\n  }\n}\n";

#[test]
fn prints_canonical_layout_keeping_comments() {
    let env = Env::new();
    env.write("hello.pipe", MESSY);
    let run = env.engine(&["fmt", "hello.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, TIDY);
    assert_eq!(
        env.read("hello.pipe"),
        MESSY,
        "printing changes nothing on disk"
    );
}

#[test]
fn check_and_write() {
    let env = Env::new();
    env.write("hello.pipe", MESSY);
    let run = env.engine(&["fmt", "--check", "hello.pipe"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not formatted: hello.pipe"),
        "{}",
        run.stderr
    );

    let run = env.engine(&["fmt", "--write", "hello.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.read("hello.pipe"), TIDY);
    assert_eq!(env.engine(&["fmt", "--check", "hello.pipe"]).code, 0);
    assert_eq!(env.engine(&["check", "hello.pipe"]).code, 0);
}

#[test]
fn refuses_a_file_with_a_syntax_error() {
    let env = Env::new();
    env.write("bad.pipe", "pipeline p {\n  step {\n}\n");
    let run = env.engine(&["fmt", "--write", "bad.pipe"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("[bad.pipe:2:8]"), "{}", run.stderr);
    assert_eq!(
        env.read("bad.pipe"),
        "pipeline p {\n  step {\n}\n",
        "left alone"
    );
}

#[test]
fn check_and_write_conflict() {
    let env = Env::new();
    env.write("hello.pipe", TIDY);
    assert_eq!(
        env.engine(&["fmt", "--check", "--write", "hello.pipe"])
            .code,
        2
    );
}
