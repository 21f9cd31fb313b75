//! Any name the OS allows, through scan -> plan -> run -> publish (issue 15): a property test over
//! random byte strings as file names, run by the real binary. A name that is UTF-8 is an item,
//! its own group and its own output directory, published under its own name; one that is not is
//! skipped with a warning; nothing panics, and a second run finds everything cached.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use proptest::prelude::*;

use crate::support::Env;

const PIPE: &str = r#"pipeline names {
  source files {
    root "data"
    glob "*"
    group f by regex "^(?P<f>[^/]+)$"
  }
  step each each f {
    input files
    run "cp {inputs} {out}/"
  }
  step all {
    input files
    run "cp {inputs} {out}/"
  }
}
"#;

/// A file name: any bytes but `/` and NUL, not `.` or `..`; printable ones, odd characters and
/// raw bytes (mostly not UTF-8) alike.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..10),
        "[ -~\n\t\u{1}Ωé%._\\\\-]{1,8}".prop_map(String::into_bytes),
    ]
    .prop_map(|bytes| {
        bytes
            .into_iter()
            .filter(|b| *b != b'/' && *b != 0)
            .collect::<Vec<u8>>()
    })
    .prop_filter("a name", |name| {
        !name.is_empty() && name != b"." && name != b".."
    })
}

/// The files under `dir`, by name, with their content.
fn files_in(dir: &std::path::Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().as_bytes().to_vec();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_file_name_is_processed_or_skipped_and_nothing_runs_twice(
        names in proptest::collection::btree_set(name(), 1..5)
    ) {
        let env = Env::new();
        env.write("names.pipe", PIPE);
        let data = env.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        for name in &names {
            std::fs::write(data.join(OsStr::from_bytes(name)), name).unwrap();
        }
        let utf8: BTreeMap<Vec<u8>, Vec<u8>> = names
            .iter()
            .filter(|n| std::str::from_utf8(n).is_ok())
            .map(|n| (n.clone(), n.clone()))
            .collect();
        let skipped = names.len() - utf8.len();

        let first = env.engine(&["run", "names.pipe"]);
        prop_assert_eq!(first.code, 0, "{}", first.stderr);
        prop_assert!(!first.stderr.contains("panicked"), "{}", first.stderr);
        prop_assert_eq!(
            first.stderr.matches("skipping").count() >= skipped,
            true,
            "{}",
            first.stderr
        );
        let out = env.path().join("out/names");
        if !utf8.is_empty() {
            // The aggregate got every item, published under its own name.
            prop_assert_eq!(files_in(&out.join("all/_all")), utf8.clone());
            // One directory per group, each holding that group's file: distinct names never
            // share a directory.
            let mut each = BTreeMap::new();
            let mut dirs = BTreeSet::new();
            for entry in std::fs::read_dir(out.join("each")).unwrap() {
                let dir = entry.unwrap().path();
                dirs.insert(dir.clone());
                each.extend(files_in(&dir));
            }
            prop_assert_eq!(dirs.len(), utf8.len());
            prop_assert_eq!(each, utf8.clone());
        }

        let second = env.engine(&["run", "names.pipe"]);
        prop_assert_eq!(second.code, 0, "{}", second.stderr);
        let tasks = if utf8.is_empty() { 0 } else { utf8.len() + 1 };
        let summary = if tasks == 0 {
            "nothing to do".to_string()
        } else {
            format!("({tasks} cached)")
        };
        prop_assert!(second.stderr.contains(&summary), "{}\n{}", summary, second.stderr);
    }
}
