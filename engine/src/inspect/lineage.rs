//! What made a product: its task (command, params, inputs with their hashes) and, recursively,
//! the products among those inputs.

use serde::Serialize;

use crate::store::{ProductRecord, Result, Store, TaskRecord};

/// How deep [`lineage`] follows products made from products; deeper inputs are left out.
pub const MAX_DEPTH: usize = 64;

/// A product, the task that made it, and the lineage of each product among the task's inputs.
#[derive(Debug, Clone, Serialize)]
pub struct LineageNode {
    pub product: ProductRecord,
    pub task: TaskRecord,
    pub inputs: Vec<LineageNode>,
}

/// The lineage of the product at `path` (absolute, as the store records it), or `None` when the
/// store knows no product there.
pub fn lineage(store: &Store, path: &str) -> Result<Option<LineageNode>> {
    node(store, path, 0)
}

fn node(store: &Store, path: &str, depth: usize) -> Result<Option<LineageNode>> {
    let Some(product) = store.product(path)? else {
        return Ok(None);
    };
    let task = store.task(product.task)?;
    let mut inputs = Vec::new();
    if depth < MAX_DEPTH {
        for input in &task.inputs {
            if input.task.is_some() {
                if let Some(child) = node(store, &input.path.to_string_lossy(), depth + 1)? {
                    inputs.push(child);
                }
            }
        }
    }
    Ok(Some(LineageNode {
        product,
        task,
        inputs,
    }))
}
