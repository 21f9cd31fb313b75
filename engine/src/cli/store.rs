//! `engine store`: check the store, back it up while engines use it, restore a backup.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::target::{absolute, StateArgs};
use super::Exit;
use crate::store::{self, Store};

/// Check, back up or restore the store (`STATE/state.redb`).
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
    #[command(flatten)]
    state: StateArgs,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Verify every page of the store and decode every record, on a copy: the store is not
    /// changed. Exits 0 when it is intact, 2 when it is damaged.
    Check,
    /// Write a verified copy of the store to FILE, while runs and the daemon go on using it.
    Backup {
        /// Where the copy goes (written to a temporary file beside it, then renamed).
        file: PathBuf,
    },
    /// Put the backup FILE in place of the store: verified first, refused while an engine has
    /// the store open; the replaced store is kept as `state.redb.damaged-TIME`.
    Restore {
        /// A backup made by `engine store backup` or by the daemon (in `STATE/backups/`).
        file: PathBuf,
    },
}

pub fn run(args: &StoreArgs) -> Result<Exit> {
    let state_dir = absolute(&args.state.dir());
    let path = state_dir.join("state.redb");
    let started = Instant::now();
    match &args.command {
        StoreCommand::Check => {
            let summary = store::check_dir(&state_dir)?;
            println!(
                "the store `{}` is intact: {summary}; every page and record checked in {} ms",
                path.display(),
                started.elapsed().as_millis()
            );
        }
        StoreCommand::Backup { file } => {
            let file = absolute(file);
            let store = args.state.open_existing()?;
            let summary = store.backup(&file)?;
            println!(
                "backed up `{}` to `{}`: {summary}",
                store.path().display(),
                file.display()
            );
        }
        StoreCommand::Restore { file } => {
            let restored = store::restore(&state_dir, &absolute(file))?;
            if let Some(kept) = &restored.kept {
                println!("kept the store it replaces as `{}`", kept.display());
            }
            println!(
                "restored `{}` from `{}`: {}; what ran after the backup is not in it, and runs again when asked",
                path.display(),
                file.display(),
                restored.summary
            );
            // The restored store opens cleanly now, or says why not.
            drop(Store::open(&state_dir)?);
        }
    }
    Ok(Exit::Success)
}
