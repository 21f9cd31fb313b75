//! `engine`: runs pipelines written in `.pipe` files, durably.
//!
//! The flow of a run: [`plan`] scans sources and lays out tasks; [`run`] creates the run and
//! schedules its tasks, keying each from its inputs and reusing cached results; [`exec`] runs
//! attempts as processes; every transition is committed to the [`store`] first. [`scan`] finds
//! and hashes input items. [`inspect`] shapes what the store knows for `show`, `lineage` and the
//! HTTP [`api`]. Every status change of a run or a task goes through the tables of [`lifecycle`]. The command line is [`cli`], one module per subcommand; the language itself is
//! the `dsl` crate.

pub mod api;
pub mod cli;
pub mod daemon;
pub mod exec;
pub mod inspect;
#[cfg(test)]
mod layers;
pub mod lifecycle;
pub mod plan;
pub mod run;
pub mod scan;
pub mod store;
pub mod web;
