//! Groups: sorting a source's items by a key taken from their relative path, with a regex capture
//! or a path segment, as the source's `group` setting says.

use std::collections::BTreeMap;

use dsl::model::source::{GroupBy, Grouping, ItemKind};
use regex::Regex;
use serde::Serialize;

use super::error::ScanError;
use super::Item;

/// A group: the items sharing a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The key, never empty.
    pub key: String,
    /// The group's fields, always including one named after the group, equal to the key. For a
    /// regex grouping, every named capture of the regex is a field (empty when that capture did not
    /// take part in the match); when the items of one group disagree on a field, the item first by
    /// `rel` gives the value (and a warning is logged).
    pub fields: BTreeMap<String, String>,
    /// The group's items, in the order they were given (sorted by `rel` as `scan_source` returns them).
    pub items: Vec<Item>,
}

/// A source's grouping, compiled once to group many items.
#[derive(Debug, Clone)]
pub struct Grouper {
    group: String,
    by: By,
}

#[derive(Debug, Clone)]
enum By {
    /// The regex and its capture names, the group's among them.
    Regex {
        regex: Regex,
        names: Vec<String>,
    },
    Segment(usize),
}

impl Grouper {
    /// Compiles the grouping. Fails only on a regex that does not compile, which the language's
    /// checks reject first.
    pub fn new(grouping: &Grouping) -> Result<Grouper, ScanError> {
        let by = match &grouping.by {
            GroupBy::Regex { pattern, .. } => {
                let regex = Regex::new(pattern).map_err(|error| ScanError::BadRegex {
                    group: grouping.group.clone(),
                    pattern: pattern.clone(),
                    error,
                })?;
                let names = regex
                    .capture_names()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                By::Regex { regex, names }
            }
            GroupBy::Segment(n) => By::Segment(*n),
        };
        Ok(Grouper {
            group: grouping.group.clone(),
            by,
        })
    }

    /// The group's name, as in `each NAME`.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The key and fields of an item with this relative path, or `None` when it belongs to no group.
    ///
    /// - Regex: the regex is searched in `rel` (not anchored); the capture named after the group is
    ///   the key. No match, a match without that capture, or an empty key: no group.
    /// - Segment N: the N-th directory of `rel`, counting from 0. For a file the directories are
    ///   every component but the last (its name); for a directory item, every component, its own
    ///   name included. Fewer directories than N + 1: no group.
    pub fn key(&self, rel: &str, kind: ItemKind) -> Option<(String, BTreeMap<String, String>)> {
        match &self.by {
            By::Regex { regex, names } => {
                let captures = regex.captures(rel)?;
                let key = captures.name(&self.group)?.as_str();
                if key.is_empty() {
                    return None;
                }
                let fields = names
                    .iter()
                    .map(|name| {
                        let value = captures.name(name).map_or("", |m| m.as_str());
                        (name.clone(), value.to_string())
                    })
                    .collect();
                Some((key.to_string(), fields))
            }
            By::Segment(n) => {
                let mut components: Vec<&str> = rel.split('/').collect();
                if kind == ItemKind::Files {
                    components.pop();
                }
                let key = components.get(*n).filter(|key| !key.is_empty())?;
                let fields = BTreeMap::from([(self.group.clone(), key.to_string())]);
                Some((key.to_string(), fields))
            }
        }
    }

    /// Sorts items into groups by key; the items that belong to no group come back apart, in
    /// their order, so the planner can report them. Every item ends up in exactly one place.
    pub fn group_items(&self, items: Vec<Item>) -> (BTreeMap<String, Group>, Vec<Item>) {
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut ungrouped = Vec::new();
        for item in items {
            let Some((key, fields)) = self.key(&item.rel, item.kind) else {
                ungrouped.push(item);
                continue;
            };
            match groups.get_mut(&key) {
                Some(group) => {
                    if group.fields != fields {
                        tracing::warn!(
                            group = %self.group,
                            key = %key,
                            item = %item.rel,
                            "items of one group disagree on its fields; keeping the first item's"
                        );
                    }
                    group.items.push(item);
                }
                None => {
                    groups.insert(
                        key.clone(),
                        Group {
                            key,
                            fields,
                            items: vec![item],
                        },
                    );
                }
            }
        }
        (groups, ungrouped)
    }
}

/// Groups a source's items by its grouping (see [`Grouper::key`]): a map from key to group, and
/// the items that belong to no group (returned so the planner can report them).
///
/// The language's checks guarantee the regex compiles; should it not, every item is returned
/// ungrouped and an error is logged. Use [`Grouper::new`] to see that error.
pub fn group_items(grouping: &Grouping, items: Vec<Item>) -> (BTreeMap<String, Group>, Vec<Item>) {
    match Grouper::new(grouping) {
        Ok(grouper) => grouper.group_items(items),
        Err(error) => {
            tracing::error!(%error, "cannot group items");
            (BTreeMap::new(), items)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Fingerprint;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn item(rel: &str, kind: ItemKind) -> Item {
        Item {
            path: PathBuf::from("/data").join(rel),
            rel: rel.to_string(),
            kind,
            fingerprint: Fingerprint {
                size: 0,
                mtime_ns: 0,
                ctime_ns: 0,
                inode: 0,
                dev: 0,
                tree: 0,
                racy: false,
            },
            hash: String::new(),
            seen_ms: None,
        }
    }

    fn files(rels: &[&str]) -> Vec<Item> {
        rels.iter().map(|rel| item(rel, ItemKind::Files)).collect()
    }

    fn regex(group: &str, pattern: &str) -> Grouping {
        Grouping {
            group: group.to_string(),
            by: GroupBy::Regex {
                pattern: pattern.to_string(),
                fields: Vec::new(),
            },
        }
    }

    fn segment(group: &str, n: usize) -> Grouping {
        Grouping {
            group: group.to_string(),
            by: GroupBy::Segment(n),
        }
    }

    fn rels(items: &[Item]) -> Vec<&str> {
        items.iter().map(|item| item.rel.as_str()).collect()
    }

    #[test]
    fn by_regex_with_fields() {
        let grouping = regex(
            "sample",
            r"(?P<batch>[A-Z]+\d+)/(?P<sample>S\d+)(_R(?P<read>\d))?\.f(ast)?q",
        );
        let items = files(&[
            "BATCH7/S12.fastq",
            "BATCH7/S12_R2.fastq",
            "BATCH7/S13_R1.fq",
            "notes/readme.txt",
            "x/BATCH8/S14.fq.gz",
        ]);
        let (groups, ungrouped) = group_items(&grouping, items);
        assert_eq!(groups.keys().collect::<Vec<_>>(), vec!["S12", "S13", "S14"]);
        let s12 = &groups["S12"];
        assert_eq!(s12.key, "S12");
        assert_eq!(
            rels(&s12.items),
            vec!["BATCH7/S12.fastq", "BATCH7/S12_R2.fastq"]
        );
        assert_eq!(
            s12.fields,
            BTreeMap::from([
                ("batch".to_string(), "BATCH7".to_string()),
                ("read".to_string(), String::new()),
                ("sample".to_string(), "S12".to_string()),
            ])
        );
        assert_eq!(groups["S13"].fields["read"], "1");
        // Searched, not anchored: a prefix and a suffix around the match are fine.
        assert_eq!(groups["S14"].fields["batch"], "BATCH8");
        assert_eq!(rels(&ungrouped), vec!["notes/readme.txt"]);
    }

    #[test]
    fn a_capture_that_does_not_take_part_or_is_empty_means_no_group() {
        let grouping = regex("sample", r"^(?:(?P<sample>S\d*)|other)\.txt$");
        let (groups, ungrouped) = group_items(&grouping, files(&["other.txt", "S.txt", "S1.txt"]));
        assert_eq!(groups.keys().collect::<Vec<_>>(), vec!["S", "S1"]);
        assert_eq!(rels(&ungrouped), vec!["other.txt"]);
        let grouping = regex("sample", r"^(?P<sample>\d*)x");
        let (groups, ungrouped) = group_items(&grouping, files(&["x", "1x"]));
        assert_eq!(groups.keys().collect::<Vec<_>>(), vec!["1"]);
        assert_eq!(rels(&ungrouped), vec!["x"]);
    }

    #[test]
    fn by_segment() {
        let items = files(&[
            "2024-03-01/scan_001.fits",
            "2024-03-01/scan_002.fits",
            "2024-03-02/deep/scan_003.fits",
            "top.fits",
        ]);
        let (groups, ungrouped) = group_items(&segment("night", 0), items.clone());
        assert_eq!(
            groups.keys().collect::<Vec<_>>(),
            vec!["2024-03-01", "2024-03-02"]
        );
        assert_eq!(groups["2024-03-01"].items.len(), 2);
        assert_eq!(
            groups["2024-03-02"].fields,
            BTreeMap::from([("night".to_string(), "2024-03-02".to_string())])
        );
        // A file's own name is not a directory: `top.fits` has no segment 0.
        assert_eq!(rels(&ungrouped), vec!["top.fits"]);

        let (groups, ungrouped) = group_items(&segment("night", 1), items);
        assert_eq!(groups.keys().collect::<Vec<_>>(), vec!["deep"]);
        assert_eq!(ungrouped.len(), 3);
    }

    #[test]
    fn by_segment_for_directory_items_counts_the_directory_itself() {
        let items = vec![
            item("2024/run1", ItemKind::Directories),
            item("2024/run2", ItemKind::Directories),
            item("run3", ItemKind::Directories),
        ];
        let (groups, ungrouped) = group_items(&segment("run", 1), items);
        assert_eq!(groups.keys().collect::<Vec<_>>(), vec!["run1", "run2"]);
        assert_eq!(rels(&ungrouped), vec!["run3"]);
    }

    #[test]
    fn disagreeing_fields_keep_the_first_items() {
        let grouping = regex("sample", r"(?P<batch>B\d)/(?P<sample>S\d)");
        let (groups, _) = group_items(&grouping, files(&["B1/S1.fq", "B2/S1.fq"]));
        assert_eq!(groups["S1"].fields["batch"], "B1");
        assert_eq!(groups["S1"].items.len(), 2);
    }

    #[test]
    fn a_bad_regex_is_an_error_from_the_grouper_and_ungroups_everything() {
        let grouping = regex("sample", r"(?P<sample>");
        let error = Grouper::new(&grouping).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("group `sample`: `(?P<sample>` is not a valid regex"));
        let (groups, ungrouped) = group_items(&grouping, files(&["a", "b"]));
        assert!(groups.is_empty());
        assert_eq!(ungrouped.len(), 2);
    }

    fn rel_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "S1", "S2", "B7", "x.fq", ""]),
            1..5,
        )
        .prop_map(|parts| parts.join("/"))
    }

    fn grouping_strategy() -> impl Strategy<Value = Grouping> {
        prop_oneof![
            (0usize..4).prop_map(|n| segment("g", n)),
            prop::sample::select(vec![
                r"(?P<g>S\d)",
                r"^(?P<g>[ab])/",
                r"(?P<b>B\d)?/(?P<g>[^/]*)$",
                r"(?P<g>x)?\.fq",
            ])
            .prop_map(|pattern| regex("g", pattern)),
        ]
    }

    proptest! {
        #[test]
        fn grouping_is_a_partition_of_the_items(
            rels in prop::collection::vec(rel_strategy(), 0..40),
            grouping in grouping_strategy(),
            directories in any::<bool>(),
        ) {
            let kind = if directories { ItemKind::Directories } else { ItemKind::Files };
            let items: Vec<Item> = rels.iter().map(|rel| item(rel, kind)).collect();
            let grouper = Grouper::new(&grouping).unwrap();
            let (groups, ungrouped) = grouper.group_items(items.clone());

            let mut seen: Vec<&str> = groups
                .values()
                .flat_map(|group| group.items.iter())
                .chain(ungrouped.iter())
                .map(|item| item.rel.as_str())
                .collect();
            let mut expected: Vec<&str> = rels.iter().map(String::as_str).collect();
            seen.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(seen, expected);

            for (key, group) in &groups {
                prop_assert_eq!(key, &group.key);
                prop_assert!(!key.is_empty());
                prop_assert!(!group.items.is_empty());
                prop_assert_eq!(group.fields.get("g"), Some(key));
                for item in &group.items {
                    let (item_key, _) = grouper.key(&item.rel, item.kind).unwrap();
                    prop_assert_eq!(&item_key, key);
                }
            }
            for item in &ungrouped {
                prop_assert!(grouper.key(&item.rel, item.kind).is_none());
            }
        }
    }
}
