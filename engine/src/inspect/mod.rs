//! Read models built from the store for people and programs: a run with its tasks and attempts
//! (`engine show --json`, `GET /runs/{id}`) and a product's lineage (`engine lineage`,
//! `GET /lineage`). One function builds each shape, so the CLI and the HTTP API agree.

mod lineage;
mod run_detail;

pub use lineage::{lineage, LineageNode};
pub use run_detail::{run_detail, RunDetail, TaskDetail};
