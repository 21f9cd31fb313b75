//! Verifying a store file: redb's integrity check (the checksum of every page of the committed
//! trees) and then every record of every table decoded. What `engine store check` runs on a copy
//! of the store, and what a backup and a restore run on the file they make, so the store itself
//! is never modified by a check.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;

use super::records::*;
use super::{damage, decode, Result, StoreError, REQUIRED_TABLES};
use super::{
    ATTEMPTS, CACHE, EVENTS, FAILED, ITEMS, LATEST, LIVE_RUNS, META, PIPELINE_RUNS, PRODUCTS, RUNS,
    RUN_TASKS, TASKS, WEBHOOKS,
};

/// What a verified store holds: the records of each table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: BTreeMap<&'static str, u64>,
}

impl Summary {
    pub fn count(&self, table: &str) -> u64 {
        self.records.get(table).copied().unwrap_or(0)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.records.values().sum();
        write!(
            f,
            "{} runs, {} tasks, {} attempts, {} products, {} events ({total} records in {} tables)",
            self.count("runs"),
            self.count("tasks"),
            self.count("attempts"),
            self.count("products"),
            self.count("events"),
            self.records.len()
        )
    }
}

/// Verifies the store file `path`, which no engine may have open (a copy, a backup): every page,
/// then every record. The check may repair the file's allocator state, never its records.
pub fn verify(path: &Path) -> Result<Summary> {
    let damaged = |detail: String| StoreError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(damaged("the file is empty".to_string()));
    }
    damage::contain(|| {
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_repair_callback(|session| {
                if session.progress() > 0.0 && session.progress() < 0.5 {
                    session.abort();
                }
            })
            .open(path)
            .map_err(|source| match damage::open_damage(&source) {
                Some(detail) => StoreError::Missing(detail),
                None => StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        records(&db)
    })
    .map_err(|error| match damage::damage_of(&error) {
        Some(detail) => damaged(detail),
        None => error,
    })
}

/// Decodes every record of every table of `db`.
fn records(db: &Database) -> Result<Summary> {
    let txn = db.begin_read()?;
    let mut summary = Summary::default();
    let version = txn
        .open_table(META)?
        .get("schema_version")?
        .map(|v| v.value());
    if version.is_none_or(|v| v > super::SCHEMA_VERSION) {
        return Err(StoreError::Missing(format!(
            "schema version {version:?} is not one this engine knows"
        )));
    }
    let tables: Vec<String> = redb::ReadTransaction::list_tables(&txn)?
        .map(|t| redb::TableHandle::name(&t).to_string())
        .collect();
    if let Some(lost) = REQUIRED_TABLES
        .iter()
        .find(|t| !tables.iter().any(|n| n == *t))
    {
        return Err(StoreError::Missing(format!("the `{lost}` table is lost")));
    }
    summary.records.insert("meta", txn.open_table(META)?.len()?);
    summary
        .records
        .insert("runs", json::<u64, RunRecord>(&txn, RUNS, "runs")?);
    summary
        .records
        .insert("tasks", json::<u64, TaskRecord>(&txn, TASKS, "tasks")?);
    summary.records.insert(
        "attempts",
        json::<(u64, u32), AttemptRecord>(&txn, ATTEMPTS, "attempts")?,
    );
    summary
        .records
        .insert("items", json::<&str, ItemRecord>(&txn, ITEMS, "items")?);
    summary.records.insert(
        "products",
        json::<&str, ProductRecord>(&txn, PRODUCTS, "products")?,
    );
    summary
        .records
        .insert("events", json::<u64, EventRecord>(&txn, EVENTS, "events")?);
    summary.records.insert("cache", plain(&txn, CACHE)?);
    summary.records.insert("latest", plain(&txn, LATEST)?);
    summary.records.insert("run_tasks", plain(&txn, RUN_TASKS)?);
    summary.records.insert("live_runs", plain(&txn, LIVE_RUNS)?);
    summary
        .records
        .insert("pipeline_runs", plain(&txn, PIPELINE_RUNS)?);
    if tables.iter().any(|t| t == "failed") {
        summary.records.insert("failed", plain(&txn, FAILED)?);
    }
    if tables.iter().any(|t| t == "webhooks") {
        summary.records.insert(
            "webhooks",
            json::<(u64, u32), DeliveryRecord>(&txn, WEBHOOKS, "webhooks")?,
        );
    }
    Ok(summary)
}

/// Reads and decodes every record of a table of JSON values; how many there are.
fn json<K: redb::Key + 'static, T: DeserializeOwned>(
    txn: &redb::ReadTransaction,
    def: TableDefinition<K, &str>,
    name: &'static str,
) -> Result<u64> {
    let table = txn.open_table(def)?;
    let mut count = 0;
    for entry in table.iter()? {
        let (_, value) = entry?;
        decode::<T>(name, value.value())?;
        count += 1;
    }
    Ok(count)
}

/// Reads every entry of a table of plain values; how many there are.
fn plain<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64> {
    let table = txn.open_table(def)?;
    let mut count = 0;
    for entry in table.iter()? {
        let (key, value) = entry?;
        // Reading is what finds a broken entry; the values themselves say nothing more.
        let _ = (key.value(), value.value());
        count += 1;
    }
    Ok(count)
}
