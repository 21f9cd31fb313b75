//! End-to-end tests: run the real `engine` binary on files in temp dirs and check its stdout,
//! stderr and exit code. One test binary; one module per subcommand.

// A test that meets an unexpected shape should fail loudly, helpers included.
#![allow(clippy::unwrap_used)]

mod check;
mod daemon;
mod durability;
mod faults;
mod fmt;
mod graph;
mod logging;
mod names;
mod run;
mod slurm;
mod store_damage;
mod support;
mod workflows;
