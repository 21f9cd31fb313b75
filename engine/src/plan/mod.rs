//! The planner: from a checked pipeline, its params and the files on disk, the tasks a run
//! consists of. It scans every source (rehashing only items whose stat fingerprint moved),
//! forms groups, applies `when`, and links each task to the upstream tasks it consumes.
//!
//! A task's key depends on its inputs' content, and an upstream task that runs may change its
//! products, so keys and cache decisions are made per task when it becomes ready
//! ([`key::task_key`], used by the scheduler and by `engine plan`'s dry run).

pub mod decide;
pub mod key;
pub mod preview;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use dsl::model::source::Grouping;
use dsl::model::{ParamValue, Pipeline};

use crate::scan::{self, Item, ScanError, ScanStats};
use crate::store::{InputRef, ItemRecord, ProductRecord, Store, StoreError};

/// Which steps ignore the cache.
#[derive(Debug, Clone, Default)]
pub enum Force {
    #[default]
    None,
    All,
    /// These steps (a step given with `--from` and everything downstream of it).
    Steps(BTreeSet<String>),
}

impl Force {
    pub fn applies_to(&self, step: &str) -> bool {
        match self {
            Force::None => false,
            Force::All => true,
            Force::Steps(steps) => steps.contains(step),
        }
    }

    /// `step` and every step downstream of it.
    pub fn from_step(pipeline: &Pipeline, step: &str) -> Force {
        let mut steps = BTreeSet::from([step.to_string()]);
        // Steps are in topological order, so one pass finds every descendant.
        for s in &pipeline.steps {
            if s.inputs.iter().chain(&s.after).any(|i| steps.contains(i)) {
                steps.insert(s.name.clone());
            }
        }
        Force::Steps(steps)
    }
}

/// One task of a run, before it runs.
#[derive(Debug, Clone)]
pub struct PlannedTask {
    /// Index into `pipeline.steps`.
    pub step: usize,
    /// The group key; `None` for an aggregate step.
    pub group: Option<String>,
    pub fields: BTreeMap<String, String>,
    /// Items from sources, by source name, sorted by path.
    pub source_inputs: Vec<(String, Vec<Item>)>,
    /// Indices (into [`Plan::tasks`]) of the tasks whose products this task consumes.
    pub upstream: Vec<usize>,
    /// Indices of tasks that must finish first without being consumed (`after`).
    pub after: Vec<usize>,
}

impl PlannedTask {
    /// When the newest of its source inputs arrived (see [`arrival_ns`]); `None` without any.
    pub fn arrived_ns(&self) -> Option<i128> {
        newest_arrival(&self.source_inputs)
    }
}

/// When the newest of `inputs` arrived; `None` without any.
fn newest_arrival(inputs: &[(String, Vec<Item>)]) -> Option<i128> {
    inputs
        .iter()
        .flat_map(|(_, items)| items)
        .map(arrival_ns)
        .max()
}

/// When an input arrived, in nanoseconds since the Unix epoch: the newest of its modification
/// time, its change time (a file copied or moved in with its old mtime, by `rsync -a`, `cp -p`,
/// `tar x` or `mv`, has a new ctime) and the time the engine first saw its content, when that
/// is known (see [`Item::seen_ms`]).
pub fn arrival_ns(item: &Item) -> i128 {
    let seen_ns = item.seen_ms.map_or(0, |ms| i128::from(ms) * 1_000_000);
    item.fingerprint
        .mtime_ns
        .max(item.fingerprint.ctime_ns)
        .max(seen_ns)
}

/// Records what the scan found of a source whose recorded items are `known`, and sets each
/// item's [`Item::seen_ms`]: new content is seen now, unless the source was never looked at
/// before (then nothing says the files are new); content already recorded keeps its time.
fn record_items(
    store: &Store,
    known: &HashMap<String, ItemRecord>,
    items: &mut [Item],
) -> Result<(), StoreError> {
    let now = crate::store::now_ms();
    let first_look = known.is_empty();
    let mut changed = Vec::new();
    for item in items.iter_mut() {
        let path = item.path.to_string_lossy();
        let record = known.get(path.as_ref());
        item.seen_ms = match record {
            Some(record) if record.hash == item.hash => record.seen_ms,
            _ if first_look => None,
            _ => Some(now),
        };
        if record.is_none_or(|r| {
            r.fingerprint != item.fingerprint || r.hash != item.hash || r.seen_ms != item.seen_ms
        }) {
            let record = ItemRecord {
                fingerprint: item.fingerprint,
                hash: item.hash.clone(),
                seen_ms: item.seen_ms,
            };
            changed.push((path.into_owned(), record));
        }
    }
    if !changed.is_empty() {
        store.write(|tx| {
            changed
                .iter()
                .try_for_each(|(path, record)| tx.put_item(path, record))
        })?;
    }
    Ok(())
}

/// The tasks of a run, upstream before downstream.
#[derive(Debug)]
pub struct Plan {
    pub tasks: Vec<PlannedTask>,
    /// Items a grouping regex did not match, by source: they belong to no group.
    pub unmatched: Vec<(String, String)>,
    /// Tasks left out because their inputs are still changing: within their step's cooldown, or
    /// downstream of such a task.
    pub waiting: Vec<Waiting>,
    pub scan: ScanStats,
}

/// A task that waits for its inputs to settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub step: String,
    pub group: Option<String>,
    /// How long until its newest input is older than the cooldown; `None` when it waits for an
    /// upstream task that waits.
    pub remaining_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Scan(#[from] ScanError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Plan {
    /// Keeps the tasks `keep` selects and every task they need (transitively upstream or
    /// `after`), dropping the rest; indices are renumbered.
    pub fn restrict(self, pipeline: &Pipeline, keep: impl Fn(&str, Option<&str>) -> bool) -> Plan {
        let mut wanted = vec![false; self.tasks.len()];
        for index in (0..self.tasks.len()).rev() {
            let task = &self.tasks[index];
            if keep(&pipeline.steps[task.step].name, task.group.as_deref()) {
                wanted[index] = true;
            }
            if wanted[index] {
                for &up in task.upstream.iter().chain(&task.after) {
                    wanted[up] = true;
                }
            }
        }
        let mut renumber = vec![usize::MAX; self.tasks.len()];
        let mut tasks = Vec::new();
        for (index, task) in self.tasks.into_iter().enumerate() {
            if wanted[index] {
                renumber[index] = tasks.len();
                tasks.push(task);
            }
        }
        for task in &mut tasks {
            task.upstream = task.upstream.iter().map(|&u| renumber[u]).collect();
            task.after = task.after.iter().map(|&u| renumber[u]).collect();
        }
        Plan {
            tasks,
            unmatched: self.unmatched,
            waiting: self.waiting,
            scan: self.scan,
        }
    }
}

/// What an upstream task made, as a downstream task sees it.
pub struct Produced<'a> {
    pub task: u64,
    pub step: &'a str,
    pub group: Option<&'a str>,
    pub out_dir: &'a Path,
    pub products: &'a [ProductRecord],
}

/// The inputs of a planned task: its source items, then its upstream tasks' products. Each gets
/// a stable name for the task key: the path relative to its source root, or `GROUP/PATH` relative
/// to the producing task's output directory.
pub fn inputs_of<'a>(
    planned: &PlannedTask,
    upstream: impl Fn(usize) -> Produced<'a>,
) -> Vec<InputRef> {
    let mut inputs = Vec::new();
    for (source, items) in &planned.source_inputs {
        for item in items {
            inputs.push(InputRef {
                from: source.clone(),
                name: item.rel.clone(),
                path: item.path.clone(),
                hash: item.hash.clone(),
                task: None,
            });
        }
    }
    for &index in &planned.upstream {
        let up = upstream(index);
        for product in up.products {
            let name = product
                .path
                .strip_prefix(up.out_dir)
                .unwrap_or(&product.path);
            inputs.push(InputRef {
                from: up.step.to_string(),
                name: format!("{}/{}", up.group.unwrap_or("_all"), name.to_string_lossy()),
                path: product.path.clone(),
                hash: product.hash.clone(),
                task: Some(up.task),
            });
        }
    }
    inputs
}

/// Where a pipeline's relative paths (source roots, the working directory of its commands) start:
/// the directory of its `.pipe` file.
pub fn base_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir.to_path_buf()
    }
}

/// Scans the sources of `pipeline` (relative to `base`) and lays out its tasks.
pub fn plan(
    pipeline: &Pipeline,
    params: &BTreeMap<String, ParamValue>,
    base: &Path,
    store: &Store,
    threads: usize,
) -> Result<Plan, PlanError> {
    let mut stats = ScanStats::default();
    let mut unmatched = Vec::new();
    // Per source: its items, grouped when it has a grouping.
    let mut source_items: HashMap<&str, SourceItems> = HashMap::new();
    for source in &pipeline.sources {
        let root = base.join(&source.root);
        let prefix = root.to_string_lossy().into_owned();
        let known = store.items_under(&prefix)?;
        let lookup = |path: &Path| -> Option<(scan::Fingerprint, String)> {
            known
                .get(path.to_string_lossy().as_ref())
                .map(|r| (r.fingerprint, r.hash.clone()))
        };
        let (mut items, source_stats) = scan::scan_source(source, &root, &lookup, threads)?;
        stats.items += source_stats.items;
        stats.hashed += source_stats.hashed;
        stats.reused += source_stats.reused;
        stats.bytes_hashed += source_stats.bytes_hashed;
        record_items(store, &known, &mut items)?;
        let entry = match &source.grouping {
            Some(grouping) => {
                let (groups, loose) = scan::group_items(grouping, items);
                unmatched.extend(
                    loose
                        .into_iter()
                        .map(|item| (source.name.clone(), item.rel)),
                );
                SourceItems::Grouped(grouping.clone(), groups)
            }
            None => SourceItems::All(items),
        };
        source_items.insert(source.name.as_str(), entry);
    }

    let mut tasks: Vec<PlannedTask> = Vec::new();
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut waiting_steps: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    // Per step: its tasks by group key ("" for an aggregate step).
    let mut step_tasks: HashMap<&str, BTreeMap<String, usize>> = HashMap::new();
    for (step_index, step) in pipeline.steps.iter().enumerate() {
        let mut by_group: BTreeMap<String, usize> = BTreeMap::new();
        let candidates: Vec<(Option<String>, BTreeMap<String, String>)> = match &step.each {
            None => vec![(None, BTreeMap::new())],
            Some(group) => groups_of(step, group, &source_items, &step_tasks, &tasks)
                .into_iter()
                .map(|(key, fields)| (Some(key), fields))
                .collect(),
        };
        for (group, fields) in candidates {
            if let Some(condition) = &step.when {
                if !condition.eval(&fields, params) {
                    continue;
                }
            }
            let mut source_inputs = Vec::new();
            let mut upstream = Vec::new();
            for input in &step.inputs {
                if let Some(items) = source_items.get(input.as_str()) {
                    source_inputs.push((input.clone(), items.for_group(group.as_deref())));
                } else if let Some(producers) = step_tasks.get(input.as_str()) {
                    let upstream_each = pipeline.step(input).and_then(|s| s.each.as_ref());
                    match (group.as_deref(), upstream_each) {
                        // Same group: that group's task, if the upstream step has one.
                        (Some(key), Some(_)) => upstream.extend(producers.get(key)),
                        // Aggregate upstream, or an aggregate consuming per-group tasks: all of them.
                        _ => upstream.extend(producers.values()),
                    }
                }
            }
            let declared_inputs = !step.inputs.is_empty();
            let has_inputs =
                source_inputs.iter().any(|(_, items)| !items.is_empty()) || !upstream.is_empty();
            if step.each.is_none() && declared_inputs && !has_inputs {
                continue; // an aggregate step with nothing to aggregate yet
            }
            // Inputs still arriving: a group waits until its newest input arrived longer ago
            // than the cooldown; whatever consumes a waiting step waits with it.
            let settling = step.policy.cooldown_ms.and_then(|cooldown| {
                let newest = newest_arrival(&source_inputs)?;
                let age_ms = (now_ns - newest).max(0) / 1_000_000;
                (age_ms < cooldown as i128).then(|| cooldown - age_ms as u64)
            });
            let upstream_waits = step
                .inputs
                .iter()
                .chain(&step.after)
                .any(|i| waiting_steps.contains(i.as_str()));
            if settling.is_some() || (upstream_waits && step.each.is_none()) {
                waiting.push(Waiting {
                    step: step.name.clone(),
                    group: group.clone(),
                    remaining_ms: settling,
                });
                waiting_steps.insert(step.name.as_str());
                continue;
            }
            let after = step
                .after
                .iter()
                .filter_map(|name| step_tasks.get(name.as_str()))
                .flat_map(|producers| producers.values().copied())
                .collect();
            by_group.insert(group.clone().unwrap_or_default(), tasks.len());
            tasks.push(PlannedTask {
                step: step_index,
                group,
                fields,
                source_inputs,
                upstream,
                after,
            });
        }
        step_tasks.insert(step.name.as_str(), by_group);
    }
    Ok(Plan {
        tasks,
        unmatched,
        waiting,
        scan: stats,
    })
}

enum SourceItems {
    All(Vec<Item>),
    Grouped(Grouping, BTreeMap<String, scan::Group>),
}

impl SourceItems {
    /// The items a task of `group` receives: its group's items from a source grouped the same
    /// way, everything otherwise.
    fn for_group(&self, group: Option<&str>) -> Vec<Item> {
        match (self, group) {
            (SourceItems::All(items), _) => items.clone(),
            (SourceItems::Grouped(_, groups), Some(key)) => {
                groups.get(key).map(|g| g.items.clone()).unwrap_or_default()
            }
            (SourceItems::Grouped(_, groups), None) => {
                groups.values().flat_map(|g| g.items.clone()).collect()
            }
        }
    }
}

/// The groups an `each GROUP` step runs for, with their fields: every group that has items in a
/// source grouped by GROUP that the step consumes, or a task in a per-group step it consumes.
fn groups_of(
    step: &dsl::model::StepDef,
    group: &str,
    sources: &HashMap<&str, SourceItems>,
    step_tasks: &HashMap<&str, BTreeMap<String, usize>>,
    tasks: &[PlannedTask],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for input in &step.inputs {
        if let Some(SourceItems::Grouped(grouping, groups)) = sources.get(input.as_str()) {
            if grouping.group == group {
                for (key, g) in groups {
                    let fields = out.entry(key.clone()).or_default();
                    for (name, value) in &g.fields {
                        fields.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        } else if let Some(producers) = step_tasks.get(input.as_str()) {
            for (key, &task) in producers {
                if tasks[task].group.as_deref() == Some(key.as_str()) {
                    let fields = out.entry(key.clone()).or_default();
                    for (name, value) in &tasks[task].fields {
                        fields.entry(name.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Fingerprint;

    fn item(path: &str, hash: &str, time_ns: i128) -> Item {
        Item {
            path: PathBuf::from(path),
            rel: path.rsplit('/').next().unwrap().to_string(),
            kind: dsl::model::source::ItemKind::Files,
            fingerprint: Fingerprint {
                size: 1,
                mtime_ns: time_ns,
                ctime_ns: time_ns,
                inode: 1,
                dev: 1,
                tree: 0,
                racy: false,
            },
            hash: hash.to_string(),
            seen_ms: None,
        }
    }

    fn seen(store: &Store, items: &mut [Item]) -> Vec<Option<u64>> {
        let known = store.items_under("/in/").unwrap();
        record_items(store, &known, items).unwrap();
        let recorded: Vec<Option<u64>> = items
            .iter()
            .map(|i| {
                store
                    .item(&i.path.to_string_lossy())
                    .unwrap()
                    .unwrap()
                    .seen_ms
            })
            .collect();
        assert_eq!(
            recorded,
            items.iter().map(|i| i.seen_ms).collect::<Vec<_>>()
        );
        recorded
    }

    #[test]
    fn a_file_that_appears_in_a_source_looked_at_before_arrives_when_first_seen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = 1_000_000_000_000_000_000; // 2001: mtime and ctime both old
                                             // The first look at a source: nothing says its files are new.
        assert_eq!(seen(&store, &mut [item("/in/a", "h1", old)]), [None]);

        // A file with an old mtime and ctime appears later: it arrives when it is first seen.
        let before = crate::store::now_ms();
        let mut items = [item("/in/a", "h1", old), item("/in/b", "h2", old)];
        let times = seen(&store, &mut items);
        assert_eq!(times[0], None);
        let first_seen = times[1].expect("b is new");
        assert!(first_seen >= before);
        assert_eq!(arrival_ns(&items[1]), i128::from(first_seen) * 1_000_000);
        assert_eq!(arrival_ns(&items[0]), old);

        // Looked at again with the same content (even a new fingerprint): the time stays.
        let mut touched = item("/in/b", "h2", old + 5);
        touched.fingerprint.racy = true;
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut items = [item("/in/a", "h1", old), touched];
        assert_eq!(seen(&store, &mut items), [None, Some(first_seen)]);

        // New content at the path is seen anew.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut items = [item("/in/a", "h1", old), item("/in/b", "h3", old)];
        let times = seen(&store, &mut items);
        assert!(times[1].unwrap() > first_seen, "{times:?}");
    }
}
