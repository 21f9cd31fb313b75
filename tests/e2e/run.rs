//! `engine run`, `plan`, `show`, `logs`, `resume`, `rerun`, `retry`, `lineage`: real pipelines on
//! real files in temp dirs, run by the real binary.

use crate::support::Env;

/// Three text files counted one task per file, then summed.
const COUNT: &str = r#"pipeline count {
  param greeting: string = "hi"

  source texts {
    root "data"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }

  step words each file {
    input texts
    run "wc -w < {inputs} > {out}/n && echo {params.greeting} >> {out}/n"
  }

  step total {
    input words
    run "cat {inputs} > {out}/total.txt"
    output "total.txt"
  }
}
"#;

fn count_env() -> Env {
    let env = Env::new();
    env.write("count.pipe", COUNT);
    env.write("data/a.txt", "one two three\n");
    env.write("data/b.txt", "four five\n");
    env.write("data/c.txt", "six\n");
    env
}

fn show(env: &Env, run: u64) -> serde_json::Value {
    let shown = env.engine(&["show", &run.to_string(), "--json"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    serde_json::from_str(&shown.stdout).expect("show --json prints JSON")
}

fn statuses(env: &Env, run: u64) -> Vec<(String, String)> {
    show(env, run)["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let label = format!(
                "{}[{}]",
                t["step"].as_str().unwrap(),
                t["group"].as_str().unwrap_or("")
            );
            (label, t["status"].as_str().unwrap().to_string())
        })
        .collect()
}

fn count_status(env: &Env, run: u64, status: &str) -> usize {
    statuses(env, run)
        .iter()
        .filter(|(_, s)| s == status)
        .count()
}

#[test]
fn runs_then_everything_is_cached() {
    let env = count_env();
    let run = env.engine(&["run", "count.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let total = env.read("out/count/total/_all/total.txt");
    assert_eq!(total, "3\nhi\n2\nhi\n1\nhi\n");
    assert_eq!(count_status(&env, 1, "succeeded"), 4);

    let again = env.engine(&["run", "count.pipe"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        count_status(&env, 2, "cached"),
        4,
        "{:?}",
        statuses(&env, 2)
    );
    assert!(
        again.stderr.contains("4 tasks (4 cached)"),
        "{}",
        again.stderr
    );
}

#[test]
fn one_changed_input_reruns_its_task_and_the_aggregate_only() {
    let env = count_env();
    assert_eq!(env.engine(&["run", "count.pipe"]).code, 0);
    env.write("data/b.txt", "four five six seven\n");
    let run = env.engine(&["run", "count.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let second = statuses(&env, 2);
    assert_eq!(
        second
            .iter()
            .filter(|(_, s)| s == "succeeded")
            .map(|(l, _)| l.as_str())
            .collect::<Vec<_>>(),
        vec!["words[b]", "total[]"]
    );
    assert_eq!(
        env.read("out/count/total/_all/total.txt"),
        "3\nhi\n4\nhi\n1\nhi\n"
    );
    let shown = show(&env, 2);
    let b = shown["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["group"] == "b")
        .unwrap();
    assert_eq!(b["reason"]["reason"], "inputs_changed", "{b}");
}

#[test]
fn touching_without_changing_content_reruns_nothing() {
    let env = count_env();
    assert_eq!(env.engine(&["run", "count.pipe"]).code, 0);
    for name in ["a", "b", "c"] {
        let path = env.path().join(format!("data/{name}.txt"));
        let text = std::fs::read(&path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::write(&path, text).unwrap(); // new mtime, same bytes
    }
    let run = env.engine(&["run", "count.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count_status(&env, 2, "cached"), 4);
}

#[test]
fn a_changed_param_reruns_the_steps_that_read_it() {
    let env = count_env();
    assert_eq!(env.engine(&["run", "count.pipe"]).code, 0);
    let run = env.engine(&["run", "count.pipe", "--param", "greeting=hello"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count_status(&env, 2, "succeeded"), 4);
    let plan = env.engine(&["plan", "count.pipe", "--param", "greeting=hello", "--json"]);
    let lines: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["decision"] == "cached"),
        "{lines}"
    );
}

#[test]
fn plan_says_what_would_run_and_why() {
    let env = count_env();
    let plan = env.engine(&["plan", "count.pipe"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("4 tasks: 0 cached, 3 to run, 1 after their upstream"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("words [a]"), "{}", plan.stdout);
    assert!(plan.stdout.contains("new input"), "{}", plan.stdout);
    assert!(!env.path().join("out").exists(), "a plan runs nothing");
    assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    env.write("data/d.txt", "seven\n");
    let plan = env.engine(&["plan", "count.pipe"]);
    assert!(
        plan.stdout
            .contains("5 tasks: 3 cached, 1 to run, 1 after their upstream"),
        "{}",
        plan.stdout
    );
}

#[test]
fn bad_params_are_named_with_value_and_expectation() {
    let env = Env::new();
    env.write(
        "p.pipe",
        "pipeline p {\n  param threads: int = 4 in 1..64\n  param mode: enum(fast, slow) = fast\n  step a { run \"echo {params.threads} {params.mode} > {out}/x\" }\n}\n",
    );
    let run = env.engine(&[
        "run",
        "p.pipe",
        "--param",
        "threads=100",
        "--param",
        "mode=medium",
        "--param",
        "nope=1",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("param `threads`: `100` is not a whole number between 1 and 64"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("param `mode`: `medium` is not one of `fast`, `slow`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unknown param `nope`"),
        "{}",
        run.stderr
    );
    assert!(
        !env.path().join(".engine").exists() || env.engine(&["runs"]).stdout.lines().count() == 1,
        "no run was created"
    );
}

#[test]
fn values_are_quoted_so_no_param_can_inject_a_command() {
    let env = Env::new();
    env.write(
        "q.pipe",
        "pipeline q {\n  param name: string = \"x\"\n  step a { run \"printf '%s' {params.name} > {out}/name\" }\n}\n",
    );
    let evil = "a'; touch pwned; echo '";
    let run = env.engine(&["run", "q.pipe", "--param", &format!("name={evil}")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.read("out/q/a/_all/name"), evil);
    assert!(!env.path().join("pwned").exists());
}

const FAILING: &str = r#"pipeline f {
  source samples {
    root "data"
    glob "*.txt"
    group sample by regex "^(?P<sample>[^.]+)"
  }

  step check each sample {
    input samples
    run "grep -q good {inputs} && cp {inputs} {out}/ok.txt"
  }

  step after_check each sample {
    input check
    run "cat {inputs} > {out}/copy.txt"
  }
}
"#;

#[test]
fn a_failing_group_blocks_only_its_downstream_and_retry_runs_it_again() {
    let env = Env::new();
    env.write("f.pipe", FAILING);
    env.write("data/s1.txt", "good\n");
    env.write("data/s2.txt", "bad\n");
    let run = env.engine(&["run", "f.pipe"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let first = statuses(&env, 1);
    let status_of = |label: &str| first.iter().find(|(l, _)| l == label).unwrap().1.clone();
    assert_eq!(status_of("check[s1]"), "succeeded");
    assert_eq!(status_of("after_check[s1]"), "succeeded");
    assert_eq!(status_of("check[s2]"), "failed");
    assert_eq!(status_of("after_check[s2]"), "blocked");
    assert!(
        run.stderr.contains("FAILED  check [s2] (exit code 1)"),
        "{}",
        run.stderr
    );

    env.write("data/s2.txt", "good now\n");
    let retry = env.engine(&["retry", "1"]);
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    let second = statuses(&env, 2);
    assert_eq!(
        second.len(),
        2,
        "retry runs only the failed task and what it blocked: {second:?}"
    );
    assert!(second.iter().all(|(_, s)| s == "succeeded"), "{second:?}");
}

#[test]
fn retries_with_backoff_then_succeeds() {
    let env = Env::new();
    env.write(
        "r.pipe",
        r#"pipeline r {
  step flaky {
    run "n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count; [ $n -ge 2 ] && echo done > {out}/x"
    retries 3
    backoff fixed 10ms
  }
}
"#,
    );
    let run = env.engine(&["run", "r.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.read("count"), "3\n");
    let shown = show(&env, 1);
    assert_eq!(shown["tasks"][0]["attempts"], 3);
    assert_eq!(
        shown["tasks"][0]["attempts_detail"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn a_timeout_fails_the_task_quickly_and_logs_are_kept() {
    let env = Env::new();
    env.write(
        "t.pipe",
        "pipeline t {\n  step slow {\n    run \"echo starting; echo oops >&2; sleep 30\"\n    timeout 300ms\n  }\n}\n",
    );
    let started = std::time::Instant::now();
    let run = env.engine(&["run", "t.pipe"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    let shown = show(&env, 1);
    assert_eq!(shown["tasks"][0]["attempts_detail"][0]["end"], "timed_out");
    let logs = env.engine(&["logs", "1"]);
    assert!(logs.stdout.contains("starting"), "{}", logs.stdout);
    assert!(logs.stdout.contains("oops"), "{}", logs.stdout);
}

#[test]
fn a_timed_out_command_that_handles_sigterm_gets_its_grace() {
    let env = Env::new();
    env.write(
        "g.pipe",
        "pipeline g {\n  step slow {\n    run \"trap 'echo cleaning up; sleep 0.3; echo cleaned up; exit 0' TERM; sleep 30 & wait\"\n    timeout 300ms\n  }\n}\n",
    );
    let run = env.engine(&["run", "g.pipe"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let shown = show(&env, 1);
    assert_eq!(shown["tasks"][0]["attempts_detail"][0]["end"], "timed_out");
    // The engine waited for the command's own clean-up (within the grace), not SIGKILLed it.
    let logs = env.engine(&["logs", "1"]);
    assert!(logs.stdout.contains("cleaned up"), "{}", logs.stdout);
}

#[test]
fn a_failed_attempt_publishes_nothing() {
    let env = Env::new();
    env.write("a.pipe", "pipeline a {\n  step half {\n    run \"echo partial > {out}/result.txt; exit 1\"\n  }\n}\n");
    assert_eq!(env.engine(&["run", "a.pipe"]).code, 1);
    assert!(
        !env.path().join("out/a/half/_all").exists(),
        "no half result is visible"
    );
}

#[test]
fn a_missing_output_fails_the_task() {
    let env = Env::new();
    env.write("o.pipe", "pipeline o {\n  step s {\n    run \"echo x > {out}/other.txt\"\n    output \"report.txt\"\n  }\n}\n");
    let run = env.engine(&["run", "o.pipe"]);
    assert_eq!(run.code, 1);
    let logs = env.engine(&["logs", "1"]);
    assert!(
        logs.stdout
            .contains("output pattern `report.txt` matched no file"),
        "{}",
        logs.stdout
    );
}

#[test]
fn a_missing_source_root_is_a_clear_error() {
    let env = Env::new();
    env.write("m.pipe", "pipeline m {\n  source s { root \"nowhere\" glob \"*\" }\n  step a { input s run \"cat {inputs} > {out}/x\" }\n}\n");
    let run = env.engine(&["run", "m.pipe"]);
    assert_eq!(
        run.code, 2,
        "an unreadable input is an input error: {}",
        run.stderr
    );
    assert!(run.stderr.contains("nowhere"), "{}", run.stderr);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
}

#[test]
fn rerun_from_a_step_ignores_the_cache_there_and_downstream() {
    let env = count_env();
    assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    let rerun = env.engine(&["rerun", "1", "--from", "total"]);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    let second = statuses(&env, 2);
    assert_eq!(
        second.iter().filter(|(_, s)| s == "cached").count(),
        3,
        "{second:?}"
    );
    assert_eq!(
        second.iter().filter(|(_, s)| s == "succeeded").count(),
        1,
        "{second:?}"
    );
    let all = env.engine(&["rerun", "1"]);
    assert_eq!(all.code, 0);
    assert_eq!(count_status(&env, 3, "succeeded"), 4);
}

#[test]
fn lineage_goes_back_to_the_source_items() {
    let env = count_env();
    assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    let lineage = env.engine(&["lineage", "out/count/total/_all/total.txt"]);
    assert_eq!(lineage.code, 0, "{}", lineage.stderr);
    assert!(
        lineage.stdout.contains("made by task"),
        "{}",
        lineage.stdout
    );
    assert!(
        lineage.stdout.contains("step `words` [a]"),
        "{}",
        lineage.stdout
    );
    assert!(
        lineage.stdout.contains("data/a.txt (source `texts`"),
        "{}",
        lineage.stdout
    );
}

#[test]
fn runs_lists_history_and_filters() {
    let env = count_env();
    assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    let runs = env.engine(&["runs", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], 2, "newest first");
    let failed = env.engine(&["runs", "--status", "failed", "--json"]);
    assert_eq!(failed.stdout.trim(), "[]");
    let succeeded = env.engine(&["runs", "--status", "succeeded", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&succeeded.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // A status no run can have is a usage error that names the ones there are.
    let bad = env.engine(&["runs", "--status", "done"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("invalid value 'done'")
            && bad.stderr.contains("succeeded")
            && bad.stderr.contains("interrupted"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_store_from_a_newer_engine_is_refused_clearly() {
    let env = count_env();
    assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    {
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(env.path().join(".engine/state.redb"))
            .unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
                .unwrap();
            meta.insert("schema_version", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    let run = env.engine(&["run", "count.pipe"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("written by a newer engine (schema 99"),
        "{}",
        run.stderr
    );
}

#[test]
fn switching_a_param_back_never_reuses_products_that_were_replaced() {
    let env = count_env();
    assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    assert_eq!(
        env.engine(&["run", "count.pipe", "-q", "--param", "greeting=hello"])
            .code,
        0
    );
    // Back to the default: the first run's results were replaced on disk by the second's, so
    // they must be made again, not taken from the cache.
    let back = env.engine(&["run", "count.pipe"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(
        env.read("out/count/total/_all/total.txt"),
        "3\nhi\n2\nhi\n1\nhi\n"
    );
    assert_eq!(
        count_status(&env, 3, "succeeded"),
        4,
        "{:?}",
        statuses(&env, 3)
    );
}

#[test]
fn gc_drops_superseded_records_and_keeps_the_latest_products() {
    let env = count_env();
    for text in ["one\n", "one two\n", "one two three four\n"] {
        env.write("data/c.txt", text);
        assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    }
    let gc = env.engine(&["gc", "--keep-runs", "1"]);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    assert!(gc.stdout.contains("removing"), "{}", gc.stdout);
    assert!(
        !gc.stdout.contains("removing 0 superseded"),
        "{}",
        gc.stdout
    );
    assert_eq!(
        env.read("out/count/total/_all/total.txt"),
        "3\nhi\n2\nhi\n4\nhi\n"
    );
    let again = env.engine(&["run", "count.pipe"]);
    assert!(
        again.stderr.contains("4 tasks (4 cached)"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_group_whose_inputs_are_still_changing_waits_out_its_cooldown() {
    let env = Env::new();
    env.write(
        "c.pipe",
        r#"pipeline c {
  source scans {
    root "raw"
    glob "*/*.dat"
    group night by segment 0
  }
  step calibrate each night {
    input scans
    cooldown 2s
    run "cat {inputs} > {out}/night.txt"
  }
  step catalogue {
    input calibrate
    run "cat {inputs} > {out}/all.txt"
  }
}
"#,
    );
    env.write("raw/n1/a.dat", "1\n");
    // n1 has settled: it arrived longer ago than the cooldown; n2 is still being written.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    env.write("raw/n2/a.dat", "2\n");
    let run = env.engine(&["run", "c.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("wait    calibrate [n2]: inputs changed less than its cooldown ago"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("wait    catalogue: an upstream task waits"),
        "{}",
        run.stderr
    );
    assert_eq!(
        statuses(&env, 1),
        vec![("calibrate[n1]".to_string(), "succeeded".to_string())]
    );

    // Once n2 has settled too.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let later = env.engine(&["run", "c.pipe"]);
    assert_eq!(later.code, 0, "{}", later.stderr);
    assert_eq!(env.read("out/c/catalogue/_all/all.txt"), "1\n2\n");
}

/// Reads `start NAME T` / `end NAME T` lines (T in nanoseconds) into (name, start, end).
fn intervals(ledger: &str) -> Vec<(String, u128, u128)> {
    let mut starts = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for line in ledger.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let time: u128 = parts[2].parse().unwrap();
        match parts[0] {
            "start" => {
                starts.insert(parts[1].to_string(), time);
            }
            _ => out.push((parts[1].to_string(), starts[parts[1]], time)),
        }
    }
    out
}

/// A pipeline with one `concurrency 1` step, a task per file of `data/`, running `command`.
fn one_at_a_time(command: &str) -> String {
    format!(
        r#"pipeline p {{
  source items {{
    root "data"
    glob "*"
    group item by regex "^(?P<item>.+)$"
  }}
  step one_at_a_time each item {{
    input items
    concurrency 1
    run "{command}"
  }}
}}
"#
    )
}

#[test]
fn a_concurrency_1_step_never_overlaps_its_tasks() {
    let env = Env::new();
    env.write(
        "p.pipe",
        &one_at_a_time(
            "echo start {group} $(date +%s%N) >> ledger; sleep 0.2; echo end {group} $(date +%s%N) >> ledger; touch {out}/x",
        ),
    );
    for name in ["a", "b", "c"] {
        env.write(&format!("data/{name}"), name);
    }
    let run = env.engine(&["run", "p.pipe", "--jobs", "3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut spans = intervals(&env.read("ledger"));
    spans.sort_by_key(|s| s.1);
    assert_eq!(spans.len(), 3);
    for pair in spans.windows(2) {
        assert!(
            pair[0].2 <= pair[1].1,
            "tasks of a `concurrency 1` step overlapped: {spans:?}"
        );
    }
}

#[test]
fn a_concurrency_limited_step_with_cached_tasks_runs_the_rest() {
    let env = Env::new();
    env.write(
        "p.pipe",
        &one_at_a_time("echo {group} >> ledger; cp {inputs} {out}/x"),
    );
    for name in ["a", "b", "c", "d", "e"] {
        env.write(&format!("data/{name}"), name);
    }
    let first = env.engine(&["run", "p.pipe", "--jobs", "4"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    env.write("data/b", "changed");
    env.write("data/d", "changed");

    // The tasks set aside while one runs are cached as they come back, or run.
    let second = env.engine(&["run", "p.pipe", "--jobs", "4"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("5 tasks (2 ran, 3 cached)"),
        "{}",
        second.stderr
    );
    let mut ledger: Vec<String> = env.read("ledger").lines().map(str::to_string).collect();
    ledger.sort();
    assert_eq!(ledger, ["a", "b", "b", "c", "d", "d", "e"]);
}

#[test]
fn higher_priority_tasks_start_first() {
    let env = Env::new();
    env.write(
        "p.pipe",
        r#"pipeline p {
  source items {
    root "data"
    glob "*"
    group item by regex "^(?P<item>.+)$"
  }
  step later each item {
    input items
    run "echo later >> order; touch {out}/x"
  }
  step urgent each item {
    input items
    priority 10
    run "echo urgent >> order; touch {out}/x"
  }
}
"#,
    );
    for name in ["a", "b", "c"] {
        env.write(&format!("data/{name}"), name);
    }
    let run = env.engine(&["run", "p.pipe", "--jobs", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        env.read("order"),
        "urgent\nurgent\nurgent\nlater\nlater\nlater\n"
    );
}

#[test]
fn logs_filter_by_step_and_group_and_pipelines_run_by_name() {
    let env = count_env();
    env.write(
        "count.pipe",
        &COUNT.replace(
            "wc -w < {inputs}",
            "echo log-of-{group} >&2; wc -w < {inputs}",
        ),
    );
    let run = env.engine(&["run", "count"]);
    assert_eq!(run.code, 0, "running by pipeline name: {}", run.stderr);
    let logs = env.engine(&["logs", "1", "words", "b"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(logs.stdout.contains("log-of-b"), "{}", logs.stdout);
    assert!(!logs.stdout.contains("log-of-a"), "{}", logs.stdout);
    let unknown = env.engine(&["run", "nosuchpipeline"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains(
            "no .pipe file under the current directory defines pipeline `nosuchpipeline`"
        ),
        "{}",
        unknown.stderr
    );
}

#[test]
fn an_aggregate_over_thousands_of_inputs_runs() {
    // 3000 paths of about 70 bytes: the command is far longer than the 128 KiB Linux allows a
    // single argument of exec.
    let env = Env::new();
    env.write(
        "many.pipe",
        r#"pipeline many {
  source items {
    root "data"
    glob "*.txt"
  }

  step all {
    input items
    run "cat {inputs} | wc -l > {out}/lines"
  }
}
"#,
    );
    for n in 0..3000 {
        env.write(
            &format!("data/a-rather-long-file-name-for-item-number-{n:05}.txt"),
            "x\n",
        );
    }
    let run = env.engine(&["run", "many.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.read("out/many/all/_all/lines").trim(), "3000");
}

/// Issue 15: `Ω` and `:9` (and `.x` and `_.x`) were put in one output directory each pair.
#[test]
fn groups_whose_keys_escape_alike_keep_their_own_directories() {
    let env = Env::new();
    env.write(
        "keys.pipe",
        r#"pipeline keys {
  source texts {
    root "data"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }
  step echo each file {
    input texts
    run "cat {inputs} > {out}/v"
  }
  step all {
    input echo
    run "cat {inputs} | sort > {out}/all.txt"
  }
}
"#,
    );
    for key in ["Ω", ":9", ".x", "_.x"] {
        env.write(&format!("data/{key}.txt"), &format!("{key}\n"));
    }
    let run = env.engine(&["run", "keys.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.read("out/keys/all/_all/all.txt"), ".x\n:9\n_.x\nΩ\n");
    let mut dirs: Vec<String> = std::fs::read_dir(env.path().join("out/keys/echo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["%2Ex", "%3A9", "%CE%A9", "_.x"]);
    // Nothing was overwritten, so nothing runs again.
    let again = env.engine(&["run", "keys.pipe"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(count_status(&env, 2, "cached"), 5, "{}", again.stderr);
}

/// Each text file copied into its own task's output directory.
const COPY: &str = r#"pipeline copy {
  source texts {
    root "data"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }
  step copy each file {
    input texts
    run "cp {inputs} {out}/"
  }
}
"#;

/// Issue 15.3: an output named with a backslash was looked for under a directory of that name.
#[test]
fn a_backslash_in_a_name_is_an_ordinary_character() {
    let env = Env::new();
    env.write("copy.pipe", COPY);
    env.write("data/back\\slash.txt", "b\n");
    let run = env.engine(&["run", "copy.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        env.read("out/copy/copy/back%5Cslash/back\\slash.txt"),
        "b\n"
    );
    let again = env.engine(&["run", "copy.pipe"]);
    assert_eq!(count_status(&env, 2, "cached"), 1, "{}", again.stderr);
}

/// Issue 15.4: a newline in a group's key broke `show`'s table and the run's progress lines.
#[test]
fn control_characters_in_names_are_escaped_for_people_and_exact_in_json() {
    let env = Env::new();
    env.write("copy.pipe", COPY);
    env.write("data/two\nlines.txt", "x\n");
    let run = env.engine(&["run", "copy.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("copy [two\\nlines]"), "{}", run.stderr);
    let shown = env.engine(&["show", "1"]);
    let row = shown
        .stdout
        .lines()
        .find(|l| l.starts_with("copy "))
        .unwrap();
    assert!(
        row.contains("two\\nlines") && row.contains("succeeded"),
        "{}",
        shown.stdout
    );
    assert_eq!(show(&env, 1)["tasks"][0]["group"], "two\nlines");
}

/// Issue 15.2: a file whose name is not UTF-8 made `engine run` panic in the store, and every
/// later run with it. Such a file is skipped, with a warning that names it.
#[test]
fn a_file_whose_name_is_not_utf8_is_skipped_with_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let env = count_env();
    let odd = env
        .path()
        .join(std::ffi::OsStr::from_bytes(b"data/caf\xe9.txt"));
    std::fs::write(odd, "latin-1\n").unwrap();
    for run in 1..=2 {
        let ran = env.engine(&["run", "count.pipe"]);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert!(
            ran.stderr.contains("skipping") && ran.stderr.contains("caf\\xe9.txt"),
            "{}",
            ran.stderr
        );
        assert_eq!(statuses(&env, run).len(), 4, "a, b, c and the total");
    }
}

/// Issue 15.2, for products: an output whose name is not UTF-8 fails its task with a clear error.
#[test]
fn an_output_whose_name_is_not_utf8_fails_its_task_clearly() {
    let env = Env::new();
    env.write(
        "odd.pipe",
        "pipeline odd {\n  step make { run \"printf x > {out}/caf$(printf '\\\\351').txt\" }\n}\n",
    );
    let ran = env.engine(&["run", "odd.pipe"]);
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let shown = show(&env, 1);
    let error = shown["tasks"][0]["attempts_detail"][0]["error"]
        .as_str()
        .unwrap();
    assert!(error.contains("not valid UTF-8"), "{error}");
}

/// Issue 15.2: a panic in the run loop left its run `running` for ever. It now ends the run as
/// failed, with what is done kept (this debug build panics where `ENGINE_FAULT` says).
#[test]
fn a_panic_in_the_run_loop_fails_the_run_and_keeps_what_is_done() {
    let env = Env::new();
    env.write(
        "chain.pipe",
        "pipeline chain {\n  step a { run \"echo a > {out}/a\" }\n  step b {\n    input a\n    run \"cat {inputs} > {out}/b\"\n  }\n}\n",
    );
    let ran = env.engine_with(
        &[("ENGINE_FAULT", "panic-deciding:b")],
        &["run", "chain.pipe"],
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("the engine panicked") && ran.stderr.contains("fault injected"),
        "{}",
        ran.stderr
    );
    let shown = show(&env, 1);
    assert_eq!(shown["run"]["status"], "failed", "{shown}");
    assert_eq!(
        statuses(&env, 1)[0].1,
        "succeeded",
        "a ran before the panic"
    );
    // Nothing is left running: the next run goes on from there.
    let again = env.engine(&["run", "chain.pipe"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        statuses(&env, 2),
        [
            ("a[]".to_string(), "cached".to_string()),
            ("b[]".to_string(), "succeeded".to_string())
        ]
    );
}

/// Issue 15.6: a file copied in with its old modification time (`cp -p`, `rsync -a`, `tar x`)
/// was taken as settled at once, while the copy was still going.
#[test]
fn a_file_copied_in_with_an_old_mtime_waits_out_its_cooldown() {
    let env = Env::new();
    env.write(
        "c.pipe",
        "pipeline c {\n  source scans {\n    root \"raw\"\n    glob \"*.dat\"\n  }\n  step calibrate {\n    input scans\n    cooldown 10m\n    run \"cat {inputs} > {out}/all.txt\"\n  }\n}\n",
    );
    env.write("raw/a.dat", "1\n");
    // What `cp -p` does after writing: the modification time of the original, a day ago.
    let file = std::fs::File::options()
        .write(true)
        .open(env.path().join("raw/a.dat"))
        .unwrap();
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    file.set_modified(day_ago).unwrap();
    drop(file);
    let run = env.engine(&["run", "c.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("wait    calibrate: inputs changed less than its cooldown ago"),
        "{}",
        run.stderr
    );
}

/// Issue 15.6: a file whose mtime and ctime are both old arrives when the engine first sees it,
/// here a source root that is a symlink switched to a directory filled earlier (as when a disk
/// is mounted): before, it was taken as settled at once.
#[test]
fn a_file_that_appears_with_an_old_ctime_waits_out_its_cooldown_from_when_it_was_first_seen() {
    let env = Env::new();
    env.write(
        "c.pipe",
        "pipeline c {\n  source scans {\n    root \"raw\"\n    glob \"*.dat\"\n    group scan by regex \"^(?P<scan>[^.]+)[.]dat$\"\n  }\n  step calibrate each scan {\n    input scans\n    cooldown 2s\n    run \"cat {inputs} > {out}/copy\"\n  }\n}\n",
    );
    env.write("first/a.dat", "1\n");
    std::os::unix::fs::symlink("first", env.path().join("raw")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let run = env.engine(&["run", "c.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("1 ran"), "{}", run.stderr);

    // A second directory, filled now and settled by its times when the root moves to it.
    env.write("second/a.dat", "1\n");
    env.write("second/b.dat", "2\n");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    std::fs::remove_file(env.path().join("raw")).unwrap();
    std::os::unix::fs::symlink("second", env.path().join("raw")).unwrap();
    let run = env.engine(&["run", "c.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("wait    calibrate [b]: inputs changed less than its cooldown ago"),
        "{}",
        run.stderr
    );
    // Once the cooldown from the first sight is over, it runs.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let run = env.engine(&["run", "c.pipe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("1 ran"), "{}", run.stderr);
    assert_eq!(env.read("out/c/calibrate/b/copy"), "2\n");
}
