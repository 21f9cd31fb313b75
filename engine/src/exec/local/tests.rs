//! Tests of the local executor with real processes in temporary directories. Time bounds are
//! generous (seconds where milliseconds are expected) so a loaded machine does not fail them.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use super::*;

/// An upper bound for things expected within milliseconds.
const PROMPTLY: Duration = Duration::from_secs(5);

fn spec(dir: &TempDir, command: &str) -> AttemptSpec {
    let workdir = dir.path().join("work");
    fs::create_dir_all(&workdir).unwrap();
    AttemptSpec {
        command: command.to_owned(),
        tag: "1-1".to_string(),
        ended_log: dir.path().join("logs/ended.jsonl"),
        script: dir.path().join("tmp/out.sh"),
        env: Vec::new(),
        workdir,
        out_dir: dir.path().join("tmp/out"),
        stdout_path: dir.path().join("logs/a/stdout"),
        stderr_path: dir.path().join("logs/a/stderr"),
        prepared: false,
        timeout: None,
        kill_grace: Duration::from_secs(5),
    }
}

/// The executor under test; its supervisor is a thread of the test process.
fn executor() -> LocalExecutor {
    LocalExecutor::new(Path::new("state"))
}

async fn run(spec: &AttemptSpec) -> AttemptOutcome {
    run_with(spec, CancellationToken::new()).await
}

async fn run_with(spec: &AttemptSpec, cancel: CancellationToken) -> AttemptOutcome {
    let attempt = executor().start(spec, false).unwrap();
    attempt.wait(cancel).await
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// The pids of the live (non-zombie) processes whose process group is `pgid`, read from `/proc`
/// independently of the code under test.
fn live_members(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields[2] == pgid.to_string() && fields[0] != "Z" && fields[0] != "X" {
            members.push(pid);
        }
    }
    members
}

/// The pids a command wrote, one a line, into `file`.
fn pids_in(file: &Path) -> Vec<u32> {
    read(file)
        .lines()
        .map(|line| line.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn success_captures_logs_outputs_env_and_workdir() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "echo hello; echo oops >&2; echo \"$SAMPLE\" > \"$ENGINE_OUT/sample\"; pwd -P > \"$ENGINE_OUT/cwd\"");
    spec.env.push(("SAMPLE".into(), "MTX-01".into()));
    fs::create_dir_all(&spec.out_dir).unwrap();
    fs::write(spec.out_dir.join("stale"), "from an earlier attempt").unwrap();
    fs::create_dir_all(spec.stdout_path.parent().unwrap()).unwrap();
    fs::write(
        &spec.stdout_path,
        "an earlier, longer log that must not survive",
    )
    .unwrap();

    let outcome = run(&spec).await;

    assert_eq!(outcome.ending, Ending::Exited(0));
    assert!(outcome.succeeded());
    assert_eq!(read(&spec.stdout_path), "hello\n");
    assert_eq!(read(&spec.stderr_path), "oops\n");
    assert_eq!(read(&spec.out_dir.join("sample")), "MTX-01\n");
    let workdir = spec.workdir.canonicalize().unwrap();
    assert_eq!(
        read(&spec.out_dir.join("cwd")).trim_end(),
        workdir.to_str().unwrap()
    );
    assert!(!spec.out_dir.join("stale").exists());
}

#[tokio::test]
async fn engine_out_wins_over_the_spec_env_and_env_overrides_the_engine() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "echo \"$ENGINE_OUT $HOME\"");
    spec.env.push(("ENGINE_OUT".into(), "/elsewhere".into()));
    spec.env.push(("HOME".into(), "/home/pipeline".into()));

    run(&spec).await;

    let expected = format!("{} /home/pipeline\n", spec.out_dir.display());
    assert_eq!(read(&spec.stdout_path), expected);
}

#[tokio::test]
async fn stdout_and_stderr_may_share_one_file() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "echo one; echo two >&2; echo three");
    spec.stderr_path = spec.stdout_path.clone();

    run(&spec).await;

    assert_eq!(read(&spec.stdout_path), "one\ntwo\nthree\n");
}

#[tokio::test]
async fn stdin_is_empty() {
    let dir = TempDir::new().unwrap();
    let spec = spec(&dir, "wc -c");

    run(&spec).await;

    assert_eq!(read(&spec.stdout_path).trim(), "0");
}

#[tokio::test]
async fn exit_status_is_reported() {
    let dir = TempDir::new().unwrap();

    let outcome = run(&spec(&dir, "echo failing >&2; exit 3")).await;

    assert_eq!(outcome.ending, Ending::Exited(3));
    assert!(!outcome.succeeded());
}

#[tokio::test]
async fn a_signal_that_kills_the_command_is_reported() {
    let dir = TempDir::new().unwrap();

    let killed = run(&spec(&dir, "kill -KILL $$")).await;
    // A real-time signal, which `nix`'s `Signal` cannot represent.
    let realtime = run(&spec(&dir, "kill -40 $$")).await;

    assert_eq!(killed.ending, Ending::Signaled(libc::SIGKILL));
    assert!(!killed.succeeded());
    assert_eq!(realtime.ending, Ending::Signaled(40));
}

#[tokio::test]
async fn timeout_terminates_the_command() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "sleep 30");
    spec.timeout = Some(Duration::from_millis(200));
    let begin = Instant::now();

    let outcome = run(&spec).await;

    assert_eq!(outcome.ending, Ending::TimedOut);
    assert!(outcome.wall >= Duration::from_millis(200), "{outcome:?}");
    assert!(begin.elapsed() < PROMPTLY, "took {:?}", begin.elapsed());
}

#[tokio::test]
async fn a_command_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "trap '' TERM; sleep 30; echo survived");
    spec.timeout = Some(Duration::from_millis(100));
    spec.kill_grace = Duration::from_millis(300);
    let begin = Instant::now();

    let outcome = run(&spec).await;

    assert_eq!(outcome.ending, Ending::TimedOut);
    assert!(outcome.wall >= Duration::from_millis(400), "{outcome:?}");
    assert!(begin.elapsed() < PROMPTLY, "took {:?}", begin.elapsed());
    assert_eq!(read(&spec.stdout_path), "");
}

#[tokio::test]
async fn a_stopped_command_is_terminated_without_waiting_for_the_grace() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "kill -STOP $$");
    spec.timeout = Some(Duration::from_millis(100));
    spec.kill_grace = Duration::from_secs(30);
    let begin = Instant::now();

    let outcome = run(&spec).await;

    assert_eq!(outcome.ending, Ending::TimedOut);
    assert!(begin.elapsed() < PROMPTLY, "took {:?}", begin.elapsed());
}

#[tokio::test]
async fn cancel_kills_the_whole_group() {
    let dir = TempDir::new().unwrap();
    let spec = spec(
        &dir,
        "sleep 100 & echo $! >> \"$ENGINE_OUT/pids\"; sleep 100 & echo $! >> \"$ENGINE_OUT/pids\"; wait",
    );
    let attempt = executor().start(&spec, false).unwrap();
    let pgid = attempt.pgid();
    assert_eq!(pgid, attempt.pid());
    let cancel = CancellationToken::new();
    let waiting = tokio::spawn(attempt.wait(cancel.clone()));
    // Cancel once the leader and both children exist, so there is a group to kill, and both
    // children's pids are written (a child runs a moment before the shell writes its pid).
    let begin = Instant::now();
    let written = || fs::read_to_string(spec.out_dir.join("pids")).unwrap_or_default();
    while live_members(pgid).len() < 3 || written().lines().count() < 2 {
        assert!(begin.elapsed() < PROMPTLY, "the children never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let children = pids_in(&spec.out_dir.join("pids"));
    let cancelled_at = Instant::now();

    cancel.cancel();
    let outcome = waiting.await.unwrap();

    assert_eq!(outcome.ending, Ending::Cancelled);
    assert!(cancelled_at.elapsed() < PROMPTLY);
    assert_eq!(live_members(pgid), Vec::<u32>::new());
    assert_eq!(children.len(), 2);
    for child in children {
        assert!(!process_alive(child), "{child} survived");
    }
}

#[tokio::test]
async fn an_attempt_cancelled_before_waiting_ends_cancelled() {
    let dir = TempDir::new().unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();

    let outcome = run_with(&spec(&dir, "sleep 30"), cancel).await;

    assert_eq!(outcome.ending, Ending::Cancelled);
}

#[tokio::test]
async fn a_daemonized_grandchild_is_killed_when_the_leader_exits() {
    let dir = TempDir::new().unwrap();
    let spec = spec(&dir, "(sleep 100 & echo $! > \"$ENGINE_OUT/pid\"); exit 0");
    let begin = Instant::now();

    let attempt = executor().start(&spec, false).unwrap();
    let pgid = attempt.pgid();
    let outcome = attempt.wait(CancellationToken::new()).await;

    assert_eq!(outcome.ending, Ending::Exited(0));
    assert!(begin.elapsed() < PROMPTLY, "took {:?}", begin.elapsed());
    let grandchild = pids_in(&spec.out_dir.join("pid"));
    assert_eq!(grandchild.len(), 1);
    assert!(!process_alive(grandchild[0]));
    assert_eq!(live_members(pgid), Vec::<u32>::new());
}

#[tokio::test]
async fn max_rss_covers_the_process_tree() {
    let dir = TempDir::new().unwrap();
    // The shell holds the 50 MB of the command substitution in memory.
    let spec = spec(
        &dir,
        "x=$(head -c 50000000 /dev/zero | tr '\\0' a); echo ${#x}",
    );

    let outcome = run(&spec).await;

    assert_eq!(read(&spec.stdout_path), "50000000\n");
    assert!(outcome.max_rss_bytes > 20_000_000, "{outcome:?}");
}

#[tokio::test]
async fn cpu_time_of_a_busy_loop_is_counted() {
    let dir = TempDir::new().unwrap();
    let spec = spec(&dir, "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done");

    let outcome = run(&spec).await;

    assert!(outcome.succeeded());
    assert!(
        outcome.user_cpu + outcome.sys_cpu > Duration::ZERO,
        "{outcome:?}"
    );
    assert!(outcome.wall > Duration::ZERO);
}

#[tokio::test]
async fn the_command_runs_verbatim_through_sh() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(
        &dir,
        r#"printf '[%s]\n' 'single $Q "x"' "double $Q 'y'" \$escaped"#,
    );
    spec.env.push(("Q".into(), "q".into()));

    run(&spec).await;

    assert_eq!(
        read(&spec.stdout_path),
        "[single $Q \"x\"]\n[double q 'y']\n[$escaped]\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_attempts_run_at_once() {
    let dir = TempDir::new().unwrap();
    let executor = executor();
    let mut waiting = Vec::new();
    for n in 0..60 {
        let mut spec = spec(
            &dir,
            &format!("echo {n} > \"$ENGINE_OUT/n\"; exit $(({n} % 3))"),
        );
        spec.out_dir = dir.path().join(format!("out/{n}"));
        spec.script = dir.path().join(format!("out/{n}.sh"));
        spec.stdout_path = dir.path().join(format!("logs/{n}.out"));
        spec.stderr_path = dir.path().join(format!("logs/{n}.err"));
        let attempt = executor.start(&spec, false).unwrap();
        waiting.push((
            n,
            spec,
            tokio::spawn(attempt.wait(CancellationToken::new())),
        ));
    }
    for (n, spec, handle) in waiting {
        let outcome = handle.await.unwrap();
        assert_eq!(outcome.ending, Ending::Exited(n % 3));
        assert_eq!(read(&spec.out_dir.join("n")), format!("{n}\n"));
    }
}

#[tokio::test]
async fn dropping_an_attempt_kills_and_reaps_it() {
    let dir = TempDir::new().unwrap();
    let attempt = executor()
        .start(&spec(&dir, "sleep 100 & sleep 100"), false)
        .unwrap();
    let pid = attempt.pid();

    drop(attempt);

    // Killed at once, and reaped by the waiter thread, which removes the leader's /proc entry.
    let begin = Instant::now();
    while !live_members(pid).is_empty() || Path::new(&format!("/proc/{pid}")).exists() {
        assert!(begin.elapsed() < PROMPTLY, "{pid} was never reaped");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn work_given_to_start_while_is_done_once_while_the_command_starts() {
    let dir = TempDir::new().unwrap();
    let mut calls = 0;
    let attempt = executor()
        .start_while(&spec(&dir, "true"), false, || calls += 1)
        .unwrap();
    assert_eq!(calls, 1);
    assert!(attempt.wait(CancellationToken::new()).await.succeeded());

    // A start refused before the supervisor is asked does not call it.
    let mut spec = spec(&dir, "true");
    spec.out_dir = dir.path().join("file");
    fs::write(&spec.out_dir, "").unwrap();
    spec.out_dir = spec.out_dir.join("below");
    let mut calls = 0;
    assert!(executor().start_while(&spec, false, || calls += 1).is_err());
    assert_eq!(calls, 0);
}

#[test]
fn a_missing_workdir_is_a_spawn_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "true");
    spec.workdir = dir.path().join("missing");

    let error = executor().start(&spec, false).unwrap_err();

    assert!(matches!(error, ExecError::Spawn { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("missing"), "{message}");
}

#[tokio::test]
async fn a_command_longer_than_an_argument_may_be_runs() {
    let dir = TempDir::new().unwrap();
    // Linux limits one argument of exec to 128 KiB; this command is 1 MiB.
    let words = "w".repeat(1023);
    let command = format!(
        "for w in {}; do :; done; echo done",
        vec![words; 1024].join(" ")
    );
    let spec = spec(&dir, &command);

    let outcome = run(&spec).await;

    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(read(&spec.stdout_path), "done\n");
    assert!(read(&spec.script).ends_with(&command));
}

#[test]
fn an_out_dir_that_cannot_be_created_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "true");
    fs::write(dir.path().join("file"), "").unwrap();
    spec.out_dir = dir.path().join("file/out");

    let error = executor().start(&spec, false).unwrap_err();

    assert!(matches!(error, ExecError::OutDir { .. }), "{error:?}");
    assert!(error.to_string().contains("file/out"), "{error}");
}

#[test]
fn a_log_file_that_cannot_be_created_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let mut spec = spec(&dir, "true");
    spec.stderr_path = dir.path().join("work");

    let error = executor().start(&spec, false).unwrap_err();

    assert!(matches!(error, ExecError::LogFile { .. }), "{error:?}");
}

#[test]
fn process_alive_tells_live_from_gone() {
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", "exit 0"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let begin = Instant::now();
    // An exited, unreaped child is a zombie: not alive.
    while process_alive(pid) {
        assert!(begin.elapsed() < PROMPTLY, "{pid} never exited");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait().unwrap();

    assert!(process_alive(std::process::id()));
    assert!(!process_alive(pid));
    assert!(!process_alive(0));
    assert!(!process_alive(u32::MAX));
}

#[test]
fn kill_group_terminates_then_kills() {
    use std::os::unix::process::CommandExt as _;
    let mut leader = std::process::Command::new("/bin/sh")
        .args(["-c", "trap '' TERM; sleep 100 & sleep 100 & wait"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = leader.id();
    let begin = Instant::now();
    while live_members(pgid).len() < 3 {
        assert!(begin.elapsed() < PROMPTLY, "the children never started");
        std::thread::sleep(Duration::from_millis(5));
    }

    kill_group(pgid, Duration::from_millis(200));

    assert_eq!(live_members(pgid), Vec::<u32>::new());
    assert!(begin.elapsed() < PROMPTLY);
    leader.wait().unwrap();
}

#[test]
fn kill_group_refuses_the_pgids_that_hit_more_than_an_attempt() {
    // Each of these would signal the test's own group or init's: returning at all is the test.
    kill_group(0, Duration::ZERO);
    kill_group(1, Duration::ZERO);
    kill_group(u32::MAX, Duration::ZERO);
    kill_group(nix::unistd::getpgrp().as_raw() as u32, Duration::ZERO);
}

#[tokio::test]
async fn the_command_waits_at_the_gate_until_released() {
    let dir = TempDir::new().unwrap();
    let ran = dir.path().join("ran");
    let spec = spec(&dir, &format!("touch '{}'", ran.display()));
    let mut attempt = executor().start(&spec, true).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!ran.exists(), "the command ran before it was released");

    attempt.release();
    let outcome = attempt.wait(CancellationToken::new()).await;

    assert!(outcome.succeeded(), "{outcome:?}");
    assert!(ran.exists());
}

#[test]
fn an_attempt_dropped_at_the_gate_never_runs_its_command() {
    let dir = TempDir::new().unwrap();
    let ran = dir.path().join("ran");
    let spec = spec(&dir, &format!("touch '{}'", ran.display()));
    let attempt = executor().start(&spec, true).unwrap();
    let pid = attempt.pid();
    drop(attempt);
    let deadline = std::time::Instant::now() + PROMPTLY;
    while process_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(!ran.exists(), "the command ran");
}

#[tokio::test]
async fn a_command_that_needs_no_shell_is_the_attempts_only_process() {
    let dir = TempDir::new().unwrap();
    let attempt = executor().start(&spec(&dir, "sleep 30"), false).unwrap();

    // The kernel lets the spawning thread go on a moment before it renames the new process, so
    // the name may still be the spawner's for an instant.
    let comm_file = format!("/proc/{}/comm", attempt.pid());
    let begin = Instant::now();
    let mut comm = read(Path::new(&comm_file));
    while comm.trim() != "sleep" && begin.elapsed() < PROMPTLY {
        std::thread::sleep(Duration::from_millis(1));
        comm = read(Path::new(&comm_file));
    }
    assert_eq!(comm.trim(), "sleep");
    assert_eq!(live_members(attempt.pgid()), vec![attempt.pid()]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    assert_eq!(attempt.wait(cancel).await.ending, Ending::Cancelled);
}

#[tokio::test]
async fn a_program_that_cannot_be_executed_fails_as_the_shell_says() {
    let dir = TempDir::new().unwrap();
    let missing = spec(&dir, "no-such-program-anywhere --flag");
    let outcome = run(&missing).await;
    assert_eq!(outcome.ending, Ending::Exited(127));
    assert!(read(&missing.stderr_path).contains("not found"));

    let script = dir.path().join("work/script");
    fs::write(&script, "echo from a script without a shebang\n").unwrap();
    let no_shebang = spec(&dir, "./script");
    let outcome = run(&no_shebang).await;
    assert_eq!(outcome.ending, Ending::Exited(126), "not executable");
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let outcome = run(&no_shebang).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(
        read(&no_shebang.stdout_path),
        "from a script without a shebang\n"
    );
}

#[tokio::test]
async fn the_end_of_a_command_is_recorded_in_the_ended_log_unless_it_never_ran() {
    let dir = TempDir::new().unwrap();
    let mut failing = spec(&dir, "exit 4");
    failing.tag = "1-1".to_string();
    run(&failing).await;
    let mut direct = spec(&dir, "true");
    direct.tag = "2-1".to_string();
    run(&direct).await;
    let mut held = spec(&dir, "exit 5");
    held.tag = "3-1".to_string();
    let attempt = executor().start(&held, true).unwrap();
    let pid = attempt.pid();
    drop(attempt);
    while Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(5));
    }

    let statuses = supervisor::exit_statuses(&failing.ended_log);
    assert_eq!(statuses.get("1-1"), Some(&Some(4)));
    assert_eq!(statuses.get("2-1"), Some(&Some(0)));
    assert_eq!(statuses.get("3-1"), None, "the held command never ran");
}
