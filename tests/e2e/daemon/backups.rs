//! Issue 16.A: the daemon's rolling backups, `engine store backup` and `check` while the daemon
//! has the store open, and `engine store restore` of a backup in place of a damaged store.

use std::time::Duration;

use super::{wait_for, Daemon};
use crate::support::Env;

const HELLO: &str = "pipeline hello {\n  step greet { run \"echo hi > {out}/hi\" }\n}\n";

fn backups(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.path().join(".engine/backups"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".redb"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn the_daemon_keeps_rolling_backups_and_a_damaged_store_is_restored_from_one() {
    let env = Env::new();
    env.write("hello.pipe", HELLO);
    let ran = env.engine(&["run", "hello.pipe", "-q"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let original = env.engine(&["runs", "--json"]).stdout;

    let daemon = Daemon::start(&env, &["--backup-every", "1s", "--backups", "2"]);
    // One at start (there was none), then one a second, the newest two kept.
    assert!(
        wait_for(Duration::from_secs(10), || backups(&env).len() == 2),
        "{:?}\n{}",
        backups(&env),
        daemon.log()
    );
    let first = backups(&env)[0].clone();
    assert!(
        wait_for(Duration::from_secs(10), || !backups(&env).contains(&first)),
        "the oldest backup was never removed: {:?}",
        backups(&env)
    );
    assert!(backups(&env).len() <= 2, "{:?}", backups(&env));

    // By hand, while the daemon has the store open.
    let backup = env.engine(&["store", "backup", "copy.redb"]);
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    assert!(backup.stdout.contains("1 runs"), "{}", backup.stdout);
    let check = env.engine(&["store", "check"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(
        check.stdout.contains("is intact: 1 runs"),
        "{}",
        check.stdout
    );
    let refused = env.engine(&["store", "restore", "copy.redb"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("open in another engine"),
        "{}",
        refused.stderr
    );
    assert_eq!(daemon.stop(), 0);

    // Damage the store: every command says so, and names what to do. (A write within the file
    // system's clock tick of the engine's last one would not be told apart by its change time.)
    std::thread::sleep(Duration::from_millis(50));
    let store = env.path().join(".engine/state.redb");
    let mut bytes = std::fs::read(&store).unwrap();
    let len = bytes.len();
    bytes[4096..len].fill(0xa5);
    std::fs::write(&store, bytes).unwrap();
    for args in [&["runs"][..], &["store", "check"], &["run", "hello.pipe"]] {
        let said = env.engine(args);
        assert_eq!(said.code, 2, "{args:?}: {}", said.stderr);
        assert!(
            said.stderr.contains("is damaged") && said.stderr.contains("engine store restore"),
            "{args:?}: {}",
            said.stderr
        );
    }

    let newest = env
        .path()
        .join(".engine/backups")
        .join(backups(&env).pop().unwrap());
    let restored = env.engine(&["store", "restore", newest.to_str().unwrap()]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(
        restored.stdout.contains("kept the store it replaces as"),
        "{}",
        restored.stdout
    );
    let kept: Vec<_> = std::fs::read_dir(env.path().join(".engine"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.redb.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(env.engine(&["runs", "--json"]).stdout, original);
    let again = env.engine(&["run", "hello.pipe"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("1 task (1 cached)"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_backup_that_is_damaged_is_not_restored() {
    let env = Env::new();
    env.write("hello.pipe", HELLO);
    assert_eq!(env.engine(&["run", "hello.pipe", "-q"]).code, 0);
    assert_eq!(env.engine(&["store", "backup", "b.redb"]).code, 0);
    let path = env.path().join("b.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    bytes.truncate(len / 2);
    std::fs::write(&path, bytes).unwrap();
    let refused = env.engine(&["store", "restore", "b.redb"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("b.redb` is damaged"),
        "{}",
        refused.stderr
    );
    // The store is untouched.
    assert_eq!(env.engine(&["store", "check"]).code, 0);
}
