//! Issue 16.A: a damaged store is reported, never a panic, never silent. A real store is made
//! by running a small pipeline with the real binary; then many damaged copies of it (single bit
//! flips, zeroed and garbage pages, truncations, an empty and a missing file) are each read with
//! `engine runs --json` and `engine show 1 --json` and run with `engine run`. Every answer must
//! be intact (the same runs as the original, and every task cached) or a clear refusal (exit 2,
//! naming the store file and what to do); a panic, or an answer that differs with no error, or a
//! task run again, fails the test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::support::{run_in, Env, Run};

/// Four files counted one task per file, then summed: five tasks per run.
const COUNT: &str = r#"pipeline count {
  source texts {
    root "data"
    glob "*.txt"
    group file by regex "^(?P<file>[^/]+)[.]txt$"
  }

  step words each file {
    input texts
    run "wc -w < {inputs} > {out}/n"
  }

  step total {
    input words
    run "cat {inputs} > {out}/total.txt"
    output "total.txt"
  }
}
"#;

const TASKS: usize = 5;
const PAGE: usize = 4096;

/// A damage done to the store file.
#[derive(Debug, Clone)]
enum Damage {
    /// Flip bit `bit` of the byte at `offset`.
    Flip { offset: usize, bit: u8 },
    /// Zero the 4 KiB page `page`.
    Zero { page: usize },
    /// Write pseudo-random bytes over the page `page`.
    Garble { page: usize },
    /// Cut the file to `len` bytes (0: an empty file).
    Truncate { len: usize },
    /// Remove the file.
    Missing,
}

impl Damage {
    /// The damaged bytes, or `None` for no file at all.
    fn apply(&self, original: &[u8]) -> Option<Vec<u8>> {
        let mut bytes = original.to_vec();
        match *self {
            Damage::Flip { offset, bit } => bytes[offset] ^= 1 << bit,
            Damage::Zero { page } => page_of(&mut bytes, page).fill(0),
            Damage::Garble { page } => {
                let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ page as u64;
                for byte in page_of(&mut bytes, page) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *byte = state as u8;
                }
            }
            Damage::Truncate { len } => bytes.truncate(len),
            Damage::Missing => return None,
        }
        Some(bytes)
    }
}

fn page_of(bytes: &mut [u8], page: usize) -> &mut [u8] {
    let end = ((page + 1) * PAGE).min(bytes.len());
    &mut bytes[page * PAGE..end]
}

/// The variants over a file of `len` bytes: deterministic, spread over the whole file, the
/// header page looked at closely.
fn variants(len: usize) -> Vec<Damage> {
    let pages = len.div_ceil(PAGE);
    let mut out = Vec::new();
    // The header: the magic number, the god byte, both commit slots.
    for offset in [
        0, 5, 9, 10, 16, 32, 40, 64, 72, 96, 128, 160, 200, 256, 300, 400, 512,
    ] {
        out.push(Damage::Flip {
            offset: offset.min(len - 1),
            bit: (offset % 8) as u8,
        });
    }
    // Two flips in each page (of 64 pages spread evenly), at different places in each.
    let step = pages.div_ceil(64).max(1);
    for page in (0..pages).step_by(step) {
        for (at, salt) in [(61, 1237), (2113, 811)] {
            let offset = (page * PAGE + (page * salt + at) % PAGE).min(len - 1);
            out.push(Damage::Flip {
                offset,
                bit: ((page + at) % 8) as u8,
            });
        }
    }
    let step = pages.div_ceil(32).max(1);
    for page in (0..pages).step_by(step) {
        out.push(Damage::Zero { page });
        out.push(Damage::Garble { page });
    }
    for len in [
        0,
        1,
        100,
        PAGE,
        2 * PAGE,
        len / 4,
        len / 2,
        3 * len / 4,
        len - PAGE,
        len - 1,
    ] {
        out.push(Damage::Truncate { len });
    }
    out.push(Damage::Missing);
    out
}

/// What a variant came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Intact,
    Refused,
    /// Refused, but without naming the store or saying what to do.
    Unclear,
    Silent,
    Panicked,
}

/// The original: its directory (pipeline, data, products, state) and its answers.
struct Original {
    env: Env,
    store: Vec<u8>,
    runs: String,
    show: String,
}

fn original() -> Original {
    let env = Env::new();
    env.write("count.pipe", COUNT);
    for (name, text) in [
        ("a", "one two"),
        ("b", "three"),
        ("c", "four five six"),
        ("d", ""),
    ] {
        env.write(&format!("data/{name}.txt"), text);
    }
    for _ in 0..2 {
        let ran = env.engine(&["run", "count.pipe", "-q"]);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
    }
    let runs = env.engine(&["runs", "--json"]);
    assert_eq!(runs.code, 0, "{}", runs.stderr);
    let show = env.engine(&["show", "1", "--json"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let store = std::fs::read(env.path().join(".engine/state.redb")).unwrap();
    Original {
        env,
        store,
        runs: runs.stdout,
        show: show.stdout,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A refusal that names the store file and says what to do.
fn clear_refusal(run: &Run) -> bool {
    run.code == 2
        && run.stderr.contains("state.redb")
        && (run.stderr.contains("engine store restore") || run.stderr.contains("--fresh-store"))
}

fn judge(run: &Run, intact: impl Fn(&Run) -> bool) -> Verdict {
    if run.code == 101 || run.stderr.contains("panicked") {
        Verdict::Panicked
    } else if run.code == 0 && intact(run) {
        Verdict::Intact
    } else if run.code == 0 {
        Verdict::Silent
    } else if clear_refusal(run) {
        Verdict::Refused
    } else {
        Verdict::Unclear
    }
}

/// Runs the three commands on a copy of the original with the store damaged by `damage`; the
/// worst verdict of the three, with what each said.
fn try_variant(original: &Original, damage: &Damage) -> (Verdict, String) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original.env.path(), dir.path());
    let store: PathBuf = dir.path().join(".engine/state.redb");
    match damage.apply(&original.store) {
        Some(bytes) => std::fs::write(&store, bytes).unwrap(),
        None => std::fs::remove_file(&store).unwrap(),
    }
    let mut verdicts = Vec::new();
    let mut said = String::new();
    let mut record = |name: &str, run: &Run, verdict: Verdict| {
        said += &format!(
            "  {name}: {verdict:?}, exit {}, stderr: {}\n",
            run.code,
            run.stderr.trim()
        );
        verdicts.push(verdict);
    };
    // Reading a missing store says there is none; what matters there is `engine run`.
    if !matches!(damage, Damage::Missing) {
        let runs = run_in(dir.path(), &["runs", "--json"]);
        record("runs", &runs, judge(&runs, |r| r.stdout == original.runs));
        let show = run_in(dir.path(), &["show", "1", "--json"]);
        record("show", &show, judge(&show, |r| r.stdout == original.show));
    }
    let again = run_in(dir.path(), &["run", "count.pipe", "-q"]);
    let all_cached = format!(": {TASKS} tasks ({TASKS} cached)");
    record(
        "run",
        &again,
        judge(&again, |r| {
            r.stderr.contains("run 3 succeeded") && r.stderr.contains(&all_cached)
        }),
    );
    let worst = verdicts.into_iter().max().unwrap_or(Verdict::Intact);
    (worst, said)
}

#[test]
fn a_damaged_store_is_a_clear_error_or_read_intact_never_a_panic_never_silent() {
    let original = original();
    let variants = variants(original.store.len());
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(damage) = variants.get(i) else {
                    break;
                };
                let (verdict, said) = try_variant(&original, damage);
                results.lock().unwrap().push((i, verdict, said));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _, _)| *i);
    let count = |v: Verdict| results.iter().filter(|(_, r, _)| *r == v).count();
    let summary = format!(
        "{} variants of a {}-byte store: {} intact, {} refused clearly, {} refused unclearly, {} silent, {} panicked",
        results.len(),
        original.store.len(),
        count(Verdict::Intact),
        count(Verdict::Refused),
        count(Verdict::Unclear),
        count(Verdict::Silent),
        count(Verdict::Panicked),
    );
    eprintln!("{summary}");
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, v, _)| !matches!(v, Verdict::Intact | Verdict::Refused))
        .map(|(i, v, said)| format!("{:?}: {v:?}\n{said}", variants[*i]))
        .collect();
    assert!(bad.is_empty(), "{summary}\n\n{}", bad.join("\n"));
}

/// Issue 16.A: a store lost beside the products it made is said, not silently redone; the
/// refusal makes no store, and `--fresh-store` accepts the loss.
#[test]
fn a_lost_store_beside_its_products_is_said_and_fresh_store_runs_everything_again() {
    let env = Env::new();
    env.write("count.pipe", COUNT);
    env.write("data/a.txt", "one two");
    assert_eq!(env.engine(&["run", "count.pipe", "-q"]).code, 0);
    let state = env.path().join(".engine");
    std::fs::remove_file(state.join("state.redb")).unwrap();

    let refused = env.engine(&["run", "count.pipe"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("is empty but")
            && refused.stderr.contains("holds products of 2 tasks")
            && refused.stderr.contains("--fresh-store"),
        "{}",
        refused.stderr
    );
    assert!(
        !state.join("state.redb").exists(),
        "the refusal made a store"
    );

    let fresh = env.engine(&["run", "count.pipe", "--fresh-store", "-q"]);
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    assert!(fresh.stderr.contains("2 tasks (2 ran)"), "{}", fresh.stderr);
    let again = env.engine(&["run", "count.pipe", "-q"]);
    assert!(
        again.stderr.contains("2 tasks (2 cached)"),
        "{}",
        again.stderr
    );
}
