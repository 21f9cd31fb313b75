//! The store: every state change of the engine, in one redb file (`.engine/state.redb`).
//!
//! Every transition is a write transaction committed (durably) before the engine acts on it;
//! docs/design.md lists the tables and key encodings. The database is opened in redb's
//! multi-writer mode, so `engine cancel`, `runs` or `show` in another process can read and write
//! it while a run holds it open; one write transaction runs at a time across all processes.

mod backup;
mod check;
mod damage;
mod records;
mod stamp;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redb::{
    ConcurrencyMode, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use backup::{check_dir, restore, utc_stamp, Restored};
pub use check::{verify, Summary};
pub use records::*;
pub use tx::Tx;

use crate::lifecycle::{self, Entity, Event, EventKind, IllegalTransition};

/// The version of the tables and records below. Bump it, and add a migration in `open`, for any
/// change an older engine would misread.
pub const SCHEMA_VERSION: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const RUNS: TableDefinition<u64, &str> = TableDefinition::new("runs");
const TASKS: TableDefinition<u64, &str> = TableDefinition::new("tasks");
/// (run, task) -> (): the tasks of a run, in creation order.
const RUN_TASKS: TableDefinition<(u64, u64), ()> = TableDefinition::new("run_tasks");
/// (task, attempt number) -> attempt.
const ATTEMPTS: TableDefinition<(u64, u32), &str> = TableDefinition::new("attempts");
/// absolute item path -> fingerprint and hash.
const ITEMS: TableDefinition<&str, &str> = TableDefinition::new("items");
/// absolute product path -> product.
const PRODUCTS: TableDefinition<&str, &str> = TableDefinition::new("products");
/// task key -> the completed task with that key.
const CACHE: TableDefinition<&str, u64> = TableDefinition::new("cache");
/// (pipeline, step, group) as `pipeline\0step\0group` -> the latest completed task.
const LATEST: TableDefinition<&str, u64> = TableDefinition::new("latest");
const EVENTS: TableDefinition<u64, &str> = TableDefinition::new("events");
/// run -> pipeline, for each run not finished: what recovery and a new run look at, without
/// reading the whole history. Kept by `put_run` (schema 2).
const LIVE_RUNS: TableDefinition<u64, &str> = TableDefinition::new("live_runs");
/// (pipeline, run) -> (): each pipeline's runs in creation order (schema 2).
const PIPELINE_RUNS: TableDefinition<(&str, u64), ()> = TableDefinition::new("pipeline_runs");
/// (run, hook) -> the webhook deliveries not yet over (added without a version change: an older
/// engine leaves the table alone).
/// task key -> the task with that key that failed after its retries, until a task with the key
/// completes: what a trigger's run holds for a retry by hand (added without a version change).
const FAILED: TableDefinition<&str, u64> = TableDefinition::new("failed");
const WEBHOOKS: TableDefinition<(u64, u32), &str> = TableDefinition::new("webhooks");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state directory `{path}`: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the store `{path}`: {source}")]
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    #[error(
        "the store `{path}` was written by a newer engine (schema {found}, this engine knows {known}); \
         use that engine, or move the state directory aside to start afresh"
    )]
    NewerSchema {
        path: PathBuf,
        found: u64,
        known: u64,
    },
    #[error(
        "the store `{path}` is damaged ({detail}); see what is wrong with `engine store check`, \
         then restore a backup with `engine store restore FILE` (the daemon keeps them in \
         `{backups}`), or move the file aside to start afresh",
        backups = backups_of(path).display()
    )]
    Damaged { path: PathBuf, detail: String },
    #[error("the store `{path}` is open in another engine (a run or the daemon); stop it first")]
    InUse { path: PathBuf },
    #[error("cannot read or write the store `{path}` (is the disk full or failing?): {detail}")]
    Unusable { path: PathBuf, detail: String },
    /// A panic inside redb, before the store names its file.
    #[error("{0}")]
    Panicked(String),
    /// A table or counter that every store has is missing, before the store names its file.
    #[error("{0}")]
    Missing(String),
    #[error("store transaction failed: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("store table error: {0}")]
    Table(#[from] redb::TableError),
    #[error("store storage error: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("store commit failed: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("cannot record a value in table `{table}` (a path that is not UTF-8?): {source}")]
    Unencodable {
        table: &'static str,
        source: serde_json::Error,
    },
    #[error("corrupt record in table `{table}`: {source}")]
    Corrupt {
        table: &'static str,
        source: serde_json::Error,
    },
    #[error("no run {0}")]
    NoRun(u64),
    #[error("no task {0}")]
    NoTask(u64),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("{entity} {id}: `{event}` leads to {expected}, but the record says {written} (a bug: please report it)")]
    StatusMismatch {
        entity: &'static str,
        id: u64,
        event: EventKind,
        expected: &'static str,
        written: &'static str,
    },
    #[error("`{0}` changes a status: record it with `run_event` or `task_event`, not as a note (a bug: please report it)")]
    NotANote(EventKind),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Keeps the run indexes in step with `run`'s record.
fn index_run(txn: &redb::WriteTransaction, run: &RunRecord) -> Result<()> {
    txn.open_table(PIPELINE_RUNS)?
        .insert((run.pipeline.as_str(), run.id), ())?;
    let mut live = txn.open_table(LIVE_RUNS)?;
    if run.status.is_finished() {
        live.remove(run.id)?;
    } else {
        live.insert(run.id, run.pipeline.as_str())?;
    }
    Ok(())
}

/// The runs the live index names, oldest first, from the tables of a read or a write
/// transaction.
fn live_runs_in(
    live: &impl ReadableTable<u64, &'static str>,
    runs: &impl ReadableTable<u64, &'static str>,
) -> Result<Vec<RunRecord>> {
    let mut out = Vec::new();
    for entry in live.iter()? {
        let (id, _) = entry?;
        if let Some(value) = runs.get(id.value())? {
            out.push(decode("runs", value.value())?);
        }
    }
    Ok(out)
}

/// What [`Store::cached`] found for a task key.
#[derive(Debug)]
pub enum Found {
    /// The completed task with the key, and its products if they are all still its own.
    Cached(Box<TaskRecord>, Option<Vec<ProductRecord>>),
    /// No completed task has the key, but this task with it failed after its retries.
    Failed(Box<TaskRecord>),
    /// No completed task has the key; the latest completed task of its step and group, if any.
    Latest(Option<Box<TaskRecord>>),
}

/// The tables every store of schema 2 or later has: one missing is damage, never an empty table.
/// (`failed` and `webhooks` came later without a version change and are made when missing.)
const REQUIRED_TABLES: [&str; 11] = [
    "runs",
    "tasks",
    "run_tasks",
    "attempts",
    "items",
    "products",
    "cache",
    "latest",
    "events",
    "live_runs",
    "pipeline_runs",
];

/// Where the daemon keeps the backups of the store `path`.
pub fn backups_of(path: &Path) -> PathBuf {
    path.parent()
        .unwrap_or_else(|| Path::new("."))
        .join("backups")
}

/// An open store.
pub struct Store {
    /// Taken when the store is dropped: a damaged store is never closed (redb would write to
    /// it), and a panic of redb's while closing is contained. Always `Some` before that.
    db: Option<Database>,
    path: PathBuf,
    /// Set once a call found the file damaged: from then on nothing is written back to it.
    damaged: AtomicBool,
}

/// How an open went, beyond its result: what redb's repair callback saw.
#[derive(Default)]
struct Repair {
    /// redb repaired the file: it was not closed cleanly.
    ran: AtomicBool,
    /// The newest commit did not verify, and redb would fall back to the one before it.
    fell_back: AtomicBool,
}

impl Store {
    /// Opens (creating if needed) the store in `state_dir`. A store not closed cleanly, or whose
    /// file changed since an engine last wrote it (see [`stamp`]), has every page verified
    /// first; a damaged one is [`StoreError::Damaged`], never a panic or an empty store.
    pub fn open(state_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("state.redb");
        let created = !path.exists();
        if !created && std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
            return Err(StoreError::Damaged {
                path,
                detail: "the file is empty".to_string(),
            });
        }
        let verify = !created && !stamp::matches(&path);
        let opened = Self::open_file(&path, verify);
        if opened.is_err() && created {
            // A store that could not be made (a full disk) must not be left half made: the next
            // open would take it for a damaged one and refuse it.
            let _ = std::fs::remove_file(&path);
        }
        let store = opened?;
        stamp::record(&path);
        Ok(store)
    }

    fn open_file(path: &Path, verify: bool) -> Result<Store> {
        let repair = Arc::new(Repair::default());
        let seen = repair.clone();
        let damaged = |detail: String| StoreError::Damaged {
            path: path.to_path_buf(),
            detail,
        };
        let db = damage::contain(|| {
            Database::builder()
                .set_concurrency_mode(ConcurrencyMode::MultiWriter)
                .set_check_integrity_on_open(verify)
                .set_repair_callback(move |session| {
                    seen.ran.store(true, Ordering::SeqCst);
                    // The repair verified the newest commit and found it damaged: refuse,
                    // rather than quietly go back to the commit before it.
                    if session.progress() > 0.0 && session.progress() < 0.5 {
                        seen.fell_back.store(true, Ordering::SeqCst);
                        session.abort();
                    }
                })
                .create(path)
                .map_err(|source| match damage::open_damage(&source) {
                    Some(detail) => StoreError::Missing(detail),
                    None => StoreError::Open {
                        path: path.to_path_buf(),
                        source,
                    },
                })
        })
        .map_err(|error| match error {
            StoreError::Missing(detail) | StoreError::Panicked(detail) => damaged(detail),
            other => other,
        })?;
        if repair.ran.load(Ordering::SeqCst) && !verify {
            tracing::info!(
                "the store `{}` was not closed cleanly (an engine was killed?); redb verified and repaired it",
                path.display()
            );
        }
        let store = Store {
            db: Some(db),
            path: path.to_path_buf(),
            damaged: AtomicBool::new(false),
        };
        store.guard(|| store.init_schema())?;
        Ok(store)
    }

    /// Runs one store call: a storage error or panic becomes [`StoreError::Damaged`] naming
    /// this file (and the file is written to no more), an I/O failure [`StoreError::Unusable`].
    fn guard<T>(&self, call: impl FnOnce() -> Result<T>) -> Result<T> {
        damage::contain(call).map_err(|error| self.classify(error))
    }

    fn classify(&self, error: StoreError) -> StoreError {
        if let Some(detail) = damage::damage_of(&error) {
            self.damaged.store(true, Ordering::SeqCst);
            stamp::forget(&self.path);
            return StoreError::Damaged {
                path: self.path.clone(),
                detail,
            };
        }
        match error {
            StoreError::Storage(e) => self.unusable(e),
            StoreError::Table(redb::TableError::Storage(e)) => self.unusable(e),
            StoreError::Transaction(redb::TransactionError::Storage(e)) => self.unusable(e),
            StoreError::Commit(redb::CommitError::Storage(e)) => self.unusable(e),
            other => other,
        }
    }

    fn unusable(&self, error: redb::StorageError) -> StoreError {
        StoreError::Unusable {
            path: self.path.clone(),
            detail: error.to_string(),
        }
    }

    fn db(&self) -> &Database {
        self.db
            .as_ref()
            .expect("the database is open until the store is dropped")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Compacts the file, giving back the space of deleted records. Returns whether anything was
    /// compacted; fails when another process has the store open.
    pub fn compact(&mut self) -> std::result::Result<bool, redb::CompactionError> {
        self.db
            .as_mut()
            .expect("the database is open until the store is dropped")
            .compact()
    }

    /// Every cache entry: (task key, task id).
    pub fn cache_entries(&self) -> Result<Vec<(String, u64)>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(CACHE)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (key, value) = entry?;
                out.push((key.value().to_string(), value.value()));
            }
            Ok(out)
        })
    }

    /// Every task id some `latest` entry points at.
    pub fn latest_tasks(&self) -> Result<std::collections::HashSet<u64>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(LATEST)?;
            let mut out = std::collections::HashSet::new();
            for entry in table.iter()? {
                out.insert(entry?.1.value());
            }
            Ok(out)
        })
    }

    /// Every item path the store remembers.
    pub fn item_paths(&self) -> Result<Vec<String>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(ITEMS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                out.push(entry?.0.value().to_string());
            }
            Ok(out)
        })
    }

    fn init_schema(&self) -> Result<()> {
        let txn = self.db().begin_write()?;
        {
            // What the file holds, before this transaction makes anything: a table a store of
            // this schema has must never be made afresh, empty, in place of a lost one.
            let tables: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
            let mut meta = txn.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                None if tables.iter().any(|t| t != "meta") => {
                    return Err(StoreError::Missing(
                        "it has tables but no schema version: the `meta` table is lost".into(),
                    ));
                }
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(v) if v >= 2 => {
                    if v > SCHEMA_VERSION {
                        return Err(StoreError::NewerSchema {
                            path: self.path.clone(),
                            found: v,
                            known: SCHEMA_VERSION,
                        });
                    }
                    if let Some(lost) = REQUIRED_TABLES
                        .iter()
                        .find(|t| !tables.iter().any(|n| n == *t))
                    {
                        return Err(StoreError::Missing(format!("the `{lost}` table is lost")));
                    }
                }
                Some(1) => {
                    // Schema 2 indexes the runs by pipeline and keeps the live ones apart.
                    let runs = txn.open_table(RUNS)?;
                    for entry in runs.iter()? {
                        let (_, value) = entry?;
                        index_run(&txn, &decode::<RunRecord>("runs", value.value())?)?;
                    }
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(_) => {}
            }
            // Create every table, so readers never meet a missing one.
            txn.open_table(RUNS)?;
            txn.open_table(TASKS)?;
            txn.open_table(RUN_TASKS)?;
            txn.open_table(ATTEMPTS)?;
            txn.open_table(ITEMS)?;
            txn.open_table(PRODUCTS)?;
            txn.open_table(CACHE)?;
            txn.open_table(LATEST)?;
            txn.open_table(EVENTS)?;
            txn.open_table(LIVE_RUNS)?;
            txn.open_table(PIPELINE_RUNS)?;
            txn.open_table(WEBHOOKS)?;
            txn.open_table(FAILED)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Runs `f` in one write transaction and commits it durably.
    /// Refused once the store was found damaged: nothing is written back to a damaged file.
    pub fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        if self.damaged.load(Ordering::SeqCst) {
            return Err(StoreError::Damaged {
                path: self.path.clone(),
                detail: "found damaged earlier".to_string(),
            });
        }
        let value = self.guard(|| {
            let txn = self.db().begin_write()?;
            let mut tx = Tx::new(&txn);
            let value = f(&mut tx)?;
            txn.commit()?;
            Ok(value)
        })?;
        stamp::record(&self.path);
        Ok(value)
    }

    pub fn run(&self, id: u64) -> Result<RunRecord> {
        self.guard(|| self.by_id(RUNS, "runs", id)?.ok_or(StoreError::NoRun(id)))
    }

    pub fn task(&self, id: u64) -> Result<TaskRecord> {
        self.guard(|| {
            self.by_id(TASKS, "tasks", id)?
                .ok_or(StoreError::NoTask(id))
        })
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(RUNS)?;
            let mut runs = Vec::new();
            for entry in table.iter()?.rev() {
                let (_, value) = entry?;
                runs.push(decode("runs", value.value())?);
            }
            Ok(runs)
        })
    }

    /// The runs not finished, oldest first.
    pub fn live_runs(&self) -> Result<Vec<RunRecord>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            live_runs_in(&txn.open_table(LIVE_RUNS)?, &txn.open_table(RUNS)?)
        })
    }

    /// The runs of `pipeline`, newest first: up to `take` of them, older than `before` if given.
    pub fn runs_of(
        &self,
        pipeline: &str,
        before: Option<u64>,
        take: usize,
    ) -> Result<Vec<RunRecord>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let index = txn.open_table(PIPELINE_RUNS)?;
            let runs = txn.open_table(RUNS)?;
            let mut out = Vec::new();
            let end = before.unwrap_or(u64::MAX);
            for entry in index
                .range((pipeline, 0)..(pipeline, end))?
                .rev()
                .take(take)
            {
                let (key, _) = entry?;
                let (_, id) = key.value();
                if let Some(value) = runs.get(id)? {
                    out.push(decode("runs", value.value())?);
                }
            }
            Ok(out)
        })
    }

    /// Every task, oldest first.
    pub fn tasks(&self) -> Result<Vec<TaskRecord>> {
        self.guard(|| self.all(TASKS, "tasks"))
    }

    /// Every attempt, by task and number.
    pub fn attempts(&self) -> Result<Vec<AttemptRecord>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(ATTEMPTS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (_, value) = entry?;
                out.push(decode("attempts", value.value())?);
            }
            Ok(out)
        })
    }

    /// The whole event log, oldest first.
    pub fn events(&self) -> Result<Vec<EventRecord>> {
        self.guard(|| self.all(EVENTS, "events"))
    }

    /// How many runs there are, and the newest of them from the `skip`-th, at most `take`:
    /// a page of the history without reading all of it.
    pub fn newest_runs(&self, skip: usize, take: usize) -> Result<(usize, Vec<RunRecord>)> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(RUNS)?;
            let total = table.len()? as usize;
            let mut runs = Vec::with_capacity(take.min(total));
            for entry in table.iter()?.rev().skip(skip).take(take) {
                let (_, value) = entry?;
                runs.push(decode("runs", value.value())?);
            }
            Ok((total, runs))
        })
    }

    /// The tasks of a run, in creation order.
    pub fn tasks_of(&self, run: u64) -> Result<Vec<TaskRecord>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let index = txn.open_table(RUN_TASKS)?;
            let tasks = txn.open_table(TASKS)?;
            let mut out = Vec::new();
            for entry in index.range((run, 0)..=(run, u64::MAX))? {
                let (key, _) = entry?;
                let (_, task) = key.value();
                if let Some(value) = tasks.get(task)? {
                    out.push(decode("tasks", value.value())?);
                }
            }
            Ok(out)
        })
    }

    /// The attempts of a task, in order.
    pub fn attempts_of(&self, task: u64) -> Result<Vec<AttemptRecord>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(ATTEMPTS)?;
            let mut out = Vec::new();
            for entry in table.range((task, 0)..=(task, u32::MAX))? {
                let (_, value) = entry?;
                out.push(decode("attempts", value.value())?);
            }
            Ok(out)
        })
    }

    /// The webhook deliveries not yet over, by (run, hook); of one run if `run` is given.
    pub fn deliveries(&self, run: Option<u64>) -> Result<Vec<((u64, u32), DeliveryRecord)>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(WEBHOOKS)?;
            let (first, last) = run.map_or((0, u64::MAX), |run| (run, run));
            let mut out = Vec::new();
            for entry in table.range((first, 0)..=(last, u32::MAX))? {
                let (key, value) = entry?;
                out.push((key.value(), decode("webhooks", value.value())?));
            }
            Ok(out)
        })
    }

    pub fn item(&self, path: &str) -> Result<Option<ItemRecord>> {
        self.guard(|| self.by_path(ITEMS, "items", path))
    }

    /// Every item record whose path starts with `prefix`, for one scan's lookups.
    pub fn items_under(
        &self,
        prefix: &str,
    ) -> Result<std::collections::HashMap<String, ItemRecord>> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let table = txn.open_table(ITEMS)?;
            let mut out = std::collections::HashMap::new();
            for entry in table.range(prefix..)? {
                let (key, value) = entry?;
                if !key.value().starts_with(prefix) {
                    break;
                }
                out.insert(key.value().to_string(), decode("items", value.value())?);
            }
            Ok(out)
        })
    }

    pub fn product(&self, path: &str) -> Result<Option<ProductRecord>> {
        self.guard(|| self.by_path(PRODUCTS, "products", path))
    }

    /// The completed task with this key, with its products as [`Store::products_of`] finds
    /// them; or, when there is none, the latest completed task of `step` for `group` in
    /// `pipeline` (what a run is compared with to say why it runs). One read transaction: the
    /// scheduler asks this for every ready task.
    pub fn cached(
        &self,
        key: &str,
        pipeline: &str,
        step: &str,
        group: Option<&str>,
    ) -> Result<Found> {
        self.guard(|| {
            let txn = self.db().begin_read()?;
            let tasks = txn.open_table(TASKS)?;
            let task = |id: u64| -> Result<TaskRecord> {
                match tasks.get(id)? {
                    Some(value) => decode("tasks", value.value()),
                    None => Err(StoreError::NoTask(id)),
                }
            };
            if let Some(id) = txn.open_table(CACHE)?.get(key)?.map(|v| v.value()) {
                let cached = task(id)?;
                if cached.key != key {
                    return Err(StoreError::Missing(format!(
                        "the cache entry for key {key} names task {id}, whose key is {}",
                        cached.key
                    )));
                }
                let products = products_in(&txn, &cached)?;
                return Ok(Found::Cached(Box::new(cached), products));
            }
            if let Some(id) = txn.open_table(FAILED)?.get(key)?.map(|v| v.value()) {
                // `engine gc` may have dropped the task: then nothing is held.
                if let Some(value) = tasks.get(id)? {
                    return Ok(Found::Failed(Box::new(decode("tasks", value.value())?)));
                }
            }
            let latest = txn
                .open_table(LATEST)?
                .get(latest_key(pipeline, step, group).as_str())?
                .map(|v| v.value());
            Ok(Found::Latest(latest.map(task).transpose()?.map(Box::new)))
        })
    }

    /// The product records of a completed task, if they are all still its own: a later task of
    /// the same step and group publishes into the same directory and takes the paths over.
    pub fn products_of(&self, task: &TaskRecord) -> Result<Option<Vec<ProductRecord>>> {
        self.guard(|| products_in(&self.db().begin_read()?, task))
    }

    fn all<T: DeserializeOwned>(
        &self,
        def: TableDefinition<u64, &str>,
        name: &'static str,
    ) -> Result<Vec<T>> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(def)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, value) = entry?;
            out.push(decode(name, value.value())?);
        }
        Ok(out)
    }

    fn by_id<T: DeserializeOwned>(
        &self,
        def: TableDefinition<u64, &str>,
        name: &'static str,
        id: u64,
    ) -> Result<Option<T>> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(def)?;
        let found = table.get(id)?;
        found.map(|v| decode(name, v.value())).transpose()
    }

    fn by_path<T: DeserializeOwned>(
        &self,
        def: TableDefinition<&str, &str>,
        name: &'static str,
        path: &str,
    ) -> Result<Option<T>> {
        let txn = self.db().begin_read()?;
        let table = txn.open_table(def)?;
        let found = table.get(path)?;
        found.map(|v| decode(name, v.value())).transpose()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else {
            return;
        };
        if self.damaged.load(Ordering::SeqCst) {
            // Closing writes to the file; a damaged one is left as it was found.
            std::mem::forget(db);
            return;
        }
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(db)));
        if closed.is_ok() {
            stamp::record(&self.path);
        }
    }
}

fn products_in(
    txn: &redb::ReadTransaction,
    task: &TaskRecord,
) -> Result<Option<Vec<ProductRecord>>> {
    let table = txn.open_table(PRODUCTS)?;
    let mut products = Vec::with_capacity(task.products.len());
    for path in &task.products {
        let Some(value) = table.get(path.to_string_lossy().as_ref())? else {
            return Ok(None);
        };
        let product: ProductRecord = decode("products", value.value())?;
        if product.task != task.id {
            return Ok(None);
        }
        products.push(product);
    }
    Ok(Some(products))
}

fn latest_key(pipeline: &str, step: &str, group: Option<&str>) -> String {
    format!("{pipeline}\0{step}\0{}", group.unwrap_or(""))
}

/// A record as JSON. Fails on a path that is not UTF-8 (the records keep paths as text).
fn encode<T: Serialize>(table: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Unencodable { table, source })
}

fn decode<T: DeserializeOwned>(table: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt { table, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(pipeline: &str) -> RunRecord {
        RunRecord::queued(pipeline)
    }

    fn ids(runs: &[RunRecord]) -> Vec<u64> {
        runs.iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_counter_that_went_back_is_damage_never_an_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for _ in 0..3 {
            store.write(|tx| tx.create_run(run_of("p"))).unwrap();
        }
        // Two runs in one transaction: the second id is past the first, as the check says.
        let both = store
            .write(|tx| {
                Ok((
                    tx.create_run(run_of("p"))?.id,
                    tx.create_run(run_of("p"))?.id,
                ))
            })
            .unwrap();
        assert_eq!(both, (4, 5));
        let txn = store.db.as_ref().unwrap().begin_write().unwrap();
        txn.open_table(META).unwrap().insert("next_run", 5).unwrap();
        txn.commit().unwrap();
        let error = store.write(|tx| tx.create_run(run_of("p"))).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("the counter `next_run` is at 5, which is taken"),
            "{error}"
        );
        assert_eq!(store.run(5).unwrap().id, 5, "run 5 is left as it was");
    }

    #[test]
    fn the_indexes_follow_each_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut made = Vec::new();
        for pipeline in ["a", "b", "a", "a", "b"] {
            made.push(store.write(|tx| tx.create_run(run_of(pipeline))).unwrap());
        }
        assert_eq!(ids(&store.live_runs().unwrap()), [1, 2, 3, 4, 5]);
        let id = made[2].id;
        for event in [Event::RunStarted { tasks: 0 }, Event::RunSucceeded] {
            store.write(|tx| tx.run_event(id, &event, |_| {})).unwrap();
        }
        assert_eq!(ids(&store.live_runs().unwrap()), [1, 2, 4, 5]);
        assert_eq!(
            ids(&store.write(|tx| tx.live_runs()).unwrap()),
            [1, 2, 4, 5]
        );
        assert_eq!(ids(&store.runs_of("a", None, 10).unwrap()), [4, 3, 1]);
        assert_eq!(ids(&store.runs_of("a", None, 2).unwrap()), [4, 3]);
        assert_eq!(ids(&store.runs_of("a", Some(4), 10).unwrap()), [3, 1]);
        assert_eq!(ids(&store.runs_of("b", None, 10).unwrap()), [5, 2]);
        assert!(store.runs_of("c", None, 10).unwrap().is_empty());
    }

    #[test]
    fn a_schema_1_store_gets_its_indexes_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            // What an engine of schema 1 left: runs, and no index.
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                txn.open_table(META)
                    .unwrap()
                    .insert("schema_version", 1)
                    .unwrap();
                let mut runs = txn.open_table(RUNS).unwrap();
                for (id, pipeline, status) in [
                    (1, "a", RunStatus::Succeeded),
                    (2, "b", RunStatus::Running),
                    (3, "a", RunStatus::Failed),
                ] {
                    let run = RunRecord {
                        id,
                        status,
                        ..run_of(pipeline)
                    };
                    runs.insert(id, encode("runs", &run).unwrap().as_str())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(ids(&store.live_runs().unwrap()), [2]);
        assert_eq!(ids(&store.runs_of("a", None, 10).unwrap()), [3, 1]);
        let txn = store.db().begin_read().unwrap();
        let version = txn.open_table(META).unwrap().get("schema_version").unwrap();
        assert_eq!(version.unwrap().value(), SCHEMA_VERSION);
    }
}
