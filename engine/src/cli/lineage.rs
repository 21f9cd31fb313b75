//! `engine lineage PATH`: what made a product: the task, its command and params, and its inputs
//! with their hashes, recursively through the products among them.

use std::path::Path;

use anyhow::{bail, Result};
use clap::Args;

use super::target::{absolute, StateArgs};
use super::Exit;
use crate::inspect::{lineage, LineageNode};

/// Show how a product was made, back to the source items.
#[derive(Debug, Args)]
pub struct LineageArgs {
    /// A product file.
    path: String,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: &LineageArgs) -> Result<Exit> {
    let store = args.state.open_existing()?;
    let path =
        std::fs::canonicalize(&args.path).unwrap_or_else(|_| absolute(Path::new(&args.path)));
    let Some(node) = lineage(&store, &path.to_string_lossy())? else {
        bail!("`{}` is not a product the engine knows (products are files in a task's output directory)", path.display());
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&node)?);
    } else {
        print_node(&node, 0);
    }
    Ok(Exit::Success)
}

fn print_node(node: &LineageNode, depth: usize) {
    let pad = "  ".repeat(depth);
    let task = &node.task;
    println!(
        "{pad}{} (blake3 {})",
        node.product.path.display(),
        &node.product.hash[..16]
    );
    let group = task
        .group
        .as_deref()
        .map(|g| format!(" [{g}]"))
        .unwrap_or_default();
    println!(
        "{pad}  made by task {} of step `{}`{group} in run {}",
        task.id, task.step, task.run
    );
    println!("{pad}  command: {}", task.command);
    for (name, value) in &task.params {
        println!("{pad}  param {name} = {}", value.render());
    }
    for input in &task.inputs {
        if input.task.is_none() {
            println!(
                "{pad}  input {} (source `{}`, blake3 {})",
                input.path.display(),
                input.from,
                &input.hash[..16.min(input.hash.len())]
            );
        }
    }
    for child in &node.inputs {
        println!("{pad}  input from step `{}`:", child.task.step);
        print_node(child, depth + 2);
    }
}
