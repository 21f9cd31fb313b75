use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dsl::model::source::{ItemKind, SourceDef};

use super::{scan_source, scan_source_at};
use crate::scan::{Fingerprint, Item, ScanError, ScanStats};

fn source(globs: &[&str], excludes: &[&str], items: ItemKind) -> SourceDef {
    SourceDef {
        name: "reads".to_string(),
        root: "data".to_string(),
        globs: globs.iter().map(|g| g.to_string()).collect(),
        excludes: excludes.iter().map(|g| g.to_string()).collect(),
        items,
        grouping: None,
    }
}

fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn touch(path: &Path, ago: Duration) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - ago)
        .unwrap();
}

type Known = HashMap<PathBuf, (Fingerprint, String)>;

fn record(items: &[Item]) -> Known {
    items
        .iter()
        .map(|item| (item.path.clone(), (item.fingerprint, item.hash.clone())))
        .collect()
}

/// Scans as if every timestamp were settled (no racy fingerprints), on 4 threads.
fn scan(source: &SourceDef, root: &Path, known: &Known) -> (Vec<Item>, ScanStats) {
    let lookup = |path: &Path| known.get(path).cloned();
    scan_source_at(source, root, &lookup, 4, i128::MAX).unwrap()
}

fn rels(items: &[Item]) -> Vec<&str> {
    items.iter().map(|item| item.rel.as_str()).collect()
}

#[test]
fn globs_excludes_and_depth() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for rel in [
        "a.txt",
        "b.log",
        ".hidden.txt",
        "d1/c.txt",
        "d1/tmp_c.txt",
        "d1/d2/e.txt",
        ".engine/x.txt",
        "d1/.engine/y.txt",
    ] {
        write(root, rel, rel);
    }
    let shallow = source(&["*.txt", "*/*.txt"], &["*/tmp_*"], ItemKind::Files);
    let (items, stats) = scan(&shallow, root, &Known::new());
    assert_eq!(rels(&items), vec![".hidden.txt", "a.txt", "d1/c.txt"]);
    assert_eq!(stats.items, 3);
    assert_eq!(stats.hashed, 3);
    assert_eq!(stats.reused, 0);
    assert_eq!(stats.bytes_hashed, (11 + 5 + 8) as u64);
    for item in &items {
        assert_eq!(item.path, root.join(&item.rel));
        assert_eq!(item.kind, ItemKind::Files);
        assert_eq!(
            item.hash,
            blake3::hash(item.rel.as_bytes()).to_hex().to_string()
        );
    }

    let deep = source(&["**/*.txt"], &["**/tmp_*"], ItemKind::Files);
    let (items, _) = scan(&deep, root, &Known::new());
    assert_eq!(
        rels(&items),
        vec![".hidden.txt", "a.txt", "d1/c.txt", "d1/d2/e.txt"]
    );
}

#[test]
fn items_are_sorted_by_relative_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a/b.txt", "1");
    write(root, "a.txt", "2");
    write(root, "a-b.txt", "3");
    let (items, _) = scan(&source(&["**"], &[], ItemKind::Files), root, &Known::new());
    assert_eq!(rels(&items), vec!["a-b.txt", "a.txt", "a/b.txt"]);
}

#[test]
fn directories_as_items() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "run1/x.bin", "x");
    write(root, "run1/lane/y.bin", "y");
    write(root, "run1/run3/z.bin", "z");
    write(root, "run2/z.bin", "z");
    write(root, "run9.txt", "not a directory");
    write(root, "old/run4/w.bin", "w");
    let runs = source(&["**/run*"], &[], ItemKind::Directories);
    let (items, stats) = scan(&runs, root, &Known::new());
    // run1/run3 is inside a matched directory: part of run1, not an item of its own.
    assert_eq!(rels(&items), vec!["old/run4", "run1", "run2"]);
    assert!(items.iter().all(|item| item.kind == ItemKind::Directories));
    assert_eq!(stats.hashed, 3);
    assert_eq!(stats.bytes_hashed, 5);
    assert_eq!(items[1].fingerprint.size, 3);
    assert_eq!(
        items[1].hash,
        crate::scan::hash_path(&root.join("run1")).unwrap()
    );

    // Only touched: the fingerprint changes, so run1 is rehashed, to the same hash.
    touch(&root.join("run1/lane/y.bin"), Duration::from_secs(60));
    let known = record(&items);
    let (touched, stats) = scan(&runs, root, &known);
    assert_eq!(stats.hashed, 1);
    assert_eq!(stats.reused, 2);
    assert_ne!(touched[1].fingerprint, items[1].fingerprint);
    assert_eq!(touched[1].hash, items[1].hash);

    // A nested file changes: a new hash for run1 only.
    write(root, "run1/lane/y.bin", "Y");
    let (changed, stats) = scan(&runs, root, &record(&touched));
    assert_eq!(stats.hashed, 1);
    assert_ne!(changed[1].hash, items[1].hash);
    assert_eq!(changed[0].hash, items[0].hash);
    assert_eq!(changed[2].hash, items[2].hash);

    // Unchanged: nothing hashed.
    let (_, stats) = scan(&runs, root, &record(&changed));
    assert_eq!((stats.hashed, stats.reused, stats.bytes_hashed), (0, 3, 0));
}

#[test]
fn directory_items_depth_is_bounded_by_the_glob() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "2024/run1/x", "x");
    write(root, "2024/deeper/run2/x", "x");
    let (items, _) = scan(
        &source(&["*/run*"], &[], ItemKind::Directories),
        root,
        &Known::new(),
    );
    assert_eq!(rels(&items), vec!["2024/run1"]);
}

#[test]
fn unchanged_fingerprints_reuse_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..50 {
        write(
            root,
            &format!("d{}/f{i}.txt", i % 5),
            &format!("content {i}"),
        );
    }
    let src = source(&["*/*.txt"], &[], ItemKind::Files);
    let (first, stats) = scan(&src, root, &Known::new());
    assert_eq!((stats.items, stats.hashed, stats.reused), (50, 50, 0));
    let (second, stats) = scan(&src, root, &record(&first));
    assert_eq!(
        stats,
        ScanStats {
            items: 50,
            hashed: 0,
            reused: 50,
            bytes_hashed: 0
        }
    );
    assert_eq!(first, second);
}

#[test]
fn touched_files_are_rehashed_to_the_same_hash_and_changed_ones_to_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.txt", "alpha");
    write(root, "b.txt", "beta");
    write(root, "c.txt", "gamma");
    let src = source(&["*.txt"], &[], ItemKind::Files);
    let (first, _) = scan(&src, root, &Known::new());

    touch(&root.join("a.txt"), Duration::from_secs(60));
    write(root, "b.txt", "BETA");
    let (second, stats) = scan(&src, root, &record(&first));
    assert_eq!((stats.hashed, stats.reused), (2, 1));
    assert_eq!(stats.bytes_hashed, 9);
    assert_ne!(second[0].fingerprint, first[0].fingerprint);
    assert_eq!(second[0].hash, first[0].hash, "touched, same content");
    assert_ne!(second[1].hash, first[1].hash, "changed content");
    assert_eq!(second[1].hash, blake3::hash(b"BETA").to_hex().to_string());
    assert_eq!(second[2], first[2]);
}

#[test]
fn a_recorded_hash_is_not_trusted_for_a_fingerprint_that_was_racy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let before = crate::scan::fingerprint::now_ns();
    write(root, "a.txt", "alpha");
    let src = source(&["*.txt"], &[], ItemKind::Files);
    // Scanned as it is written: racy, so hashed however often it is scanned.
    let none = |_: &Path| None;
    let (first, _) = scan_source_at(&src, root, &none, 2, before).unwrap();
    assert!(first[0].fingerprint.racy);
    let known = record(&first);
    let lookup = |path: &Path| known.get(path).cloned();
    let (second, stats) = scan_source_at(&src, root, &lookup, 2, before).unwrap();
    assert_eq!(stats.hashed, 1);
    assert_eq!(second[0].hash, first[0].hash);
    // Settled: the fingerprint is no longer racy, so it differs from the recorded one; hashed
    // once more, then trusted.
    let (third, stats) = scan(&src, root, &known);
    assert_eq!(stats.hashed, 1);
    assert!(!third[0].fingerprint.racy);
    let (_, stats) = scan(&src, root, &record(&third));
    assert_eq!((stats.hashed, stats.reused), (0, 1));
}

#[test]
fn missing_root_names_the_source_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nope");
    let none = |_: &Path| None;
    let error = scan_source(&source(&["*"], &[], ItemKind::Files), &root, &none, 1).unwrap_err();
    assert!(matches!(error, ScanError::MissingRoot { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "source `reads`: root directory {} does not exist",
            root.display()
        )
    );

    let file = dir.path().join("file");
    fs::write(&file, "").unwrap();
    let error = scan_source(&source(&["*"], &[], ItemKind::Files), &file, &none, 1).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("source `reads`: root {} is not a directory", file.display())
    );
}

#[test]
fn symlinks_are_followed_and_special_files_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let elsewhere = dir.path().join("elsewhere");
    write(&elsewhere, "sub/real.txt", "real");
    fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("sub/real.txt"), root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("sub"), root.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(root.join("missing"), root.join("broken.txt")).unwrap();
    nix::unistd::mkfifo(&root.join("fifo.txt"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (items, _) = scan(
        &source(&["**/*.txt"], &[], ItemKind::Files),
        &root,
        &Known::new(),
    );
    assert_eq!(rels(&items), vec!["link.txt", "linkdir/real.txt"]);
    assert_eq!(items[0].path, root.join("link.txt"));
    assert_eq!(items[0].hash, items[1].hash);
    assert_eq!(items[0].hash, blake3::hash(b"real").to_hex().to_string());
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "secret.txt", "s");
    fs::set_permissions(root.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(root.join("secret.txt")).is_ok() {
        return; // running as root, which reads anything
    }
    let none = |_: &Path| None;
    let error = scan_source(&source(&["*"], &[], ItemKind::Files), root, &none, 2).unwrap_err();
    assert!(error.to_string().contains("secret.txt"), "{error}");
}

#[test]
fn thread_count_does_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..300 {
        write(root, &format!("g{}/f{i:03}.dat", i % 7), &"x".repeat(i));
    }
    let src = source(&["**/*.dat"], &[], ItemKind::Files);
    let lookup = |_: &Path| None;
    let one = scan_source_at(&src, root, &lookup, 1, i128::MAX).unwrap();
    let many = scan_source_at(&src, root, &lookup, 8, i128::MAX).unwrap();
    assert_eq!(one, many);
    assert_eq!(one.0.len(), 300);
}
