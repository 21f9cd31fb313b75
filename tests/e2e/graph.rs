//! `engine graph`: DOT and Mermaid output, choosing a pipeline.

use crate::support::Env;

const TWO: &str = r#"pipeline seq {
  source reads {
    root "data"
    glob "*/*.fq"
    group sample by regex "(?P<sample>[^/]+)/"
  }
  step qc each sample { input reads run "wc -l {inputs} > {out}/qc" }
  step report { input qc after setup run "cat {inputs} > {out}/report" }
  step setup { run "true" }
}

pipeline other {
  step only { run "true" }
}
"#;

#[test]
fn dot_and_mermaid() {
    let env = Env::new();
    env.write("seq.pipe", TWO);
    let run = env.engine(&["graph", "seq.pipe", "--pipeline", "seq"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("graph_dot", run.stdout);
    let run = env.engine(&["graph", "seq.pipe", "-p", "seq", "--format", "mermaid"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("graph_mermaid", run.stdout);
}

#[test]
fn several_pipelines_need_a_choice() {
    let env = Env::new();
    env.write("seq.pipe", TWO);
    let run = env.engine(&["graph", "seq.pipe"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("has 2 pipelines (seq, other); choose one with --pipeline NAME"),
        "{}",
        run.stderr
    );
    let run = env.engine(&["graph", "seq.pipe", "-p", "nope"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no pipeline `nope`"), "{}", run.stderr);
}

#[test]
fn invalid_file_is_reported() {
    let env = Env::new();
    env.write("bad.pipe", "pipeline p { step a { input b run \"x\" } }\n");
    let run = env.engine(&["graph", "bad.pipe"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("pipe::unknown-step"), "{}", run.stderr);
}
