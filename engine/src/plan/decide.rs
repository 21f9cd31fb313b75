//! The cache decision for one task whose inputs are known: reuse a completed task with the same
//! key whose products are intact, or run, and why. The scheduler and `engine plan` both decide
//! through here, so a dry run says exactly what a run would do.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dsl::model::{ParamValue, StepDef};

use super::key::{params_used, reason, task_key};
use crate::scan;
use crate::store::{Found, InputRef, ProductRecord, Reason, Store, StoreError, TaskRecord};

pub struct Decided {
    pub key: String,
    pub identity: String,
    pub params: BTreeMap<String, ParamValue>,
    pub verdict: Verdict,
}

pub enum Verdict {
    /// A completed task with the same key, and its intact products.
    Cached {
        task: Box<TaskRecord>,
        products: Vec<ProductRecord>,
    },
    Run(Reason),
    /// Not run: a trigger's run, and the same task failed after its retries.
    Held(Reason),
}

/// What a run asks of the decision for one task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked {
    /// Ignore the cache (`--force`, `rerun`).
    pub forced: bool,
    /// A previous attempt of this task, in this run, failed.
    pub retry: bool,
    /// A trigger's run: a task that failed after its retries with the same key is left for a
    /// person.
    pub hold: bool,
}

/// Decides for a task of `step` (in `pipeline`) for `group` with these inputs.
pub fn decide(
    store: &Store,
    pipeline: &str,
    step: &StepDef,
    group: Option<&str>,
    run_params: &BTreeMap<String, ParamValue>,
    inputs: &[InputRef],
    asked: Asked,
) -> Result<Decided, StoreError> {
    let Asked {
        forced,
        retry,
        hold,
    } = asked;
    let identity = step.identity_hash();
    let params = params_used(step, run_params);
    let key = task_key(&identity, group, &params, inputs);
    let found = if forced {
        None
    } else {
        Some(store.cached(&key, pipeline, &step.name, group)?)
    };
    let why = match found {
        None => Reason::Forced,
        Some(Found::Cached(task, products)) => {
            let missing = match products {
                Some(products) => match products_intact(&products) {
                    Ok(()) => {
                        return Ok(Decided {
                            key,
                            identity,
                            params,
                            verdict: Verdict::Cached { task, products },
                        })
                    }
                    Err(path) => path.display().to_string(),
                },
                None => task.out_dir.display().to_string(),
            };
            if retry {
                Reason::Retry
            } else {
                Reason::ProductsMissing(missing)
            }
        }
        Some(Found::Failed(_) | Found::Latest(_)) if retry => Reason::Retry,
        Some(Found::Failed(failed)) => {
            let (task, run) = (failed.id, failed.run);
            if hold {
                return Ok(Decided {
                    key,
                    identity,
                    params,
                    verdict: Verdict::Held(Reason::Held { task, run }),
                });
            }
            Reason::FailedBefore { task, run }
        }
        Some(Found::Latest(latest)) => reason(&identity, &params, inputs, latest.as_deref()),
    };
    Ok(Decided {
        key,
        identity,
        params,
        verdict: Verdict::Run(why),
    })
}

/// Whether recorded products are all still there, unchanged: the fingerprint is compared, and
/// the content rehashed only when the fingerprint moved.
pub fn products_intact(products: &[ProductRecord]) -> Result<(), PathBuf> {
    for product in products {
        let Ok(fingerprint) = scan::fingerprint(&product.path) else {
            return Err(product.path.clone());
        };
        if !fingerprint.same_stat(&product.fingerprint) {
            match scan::hash_file(&product.path) {
                Ok(hash) if hash == product.hash => {}
                _ => return Err(product.path.clone()),
            }
        }
    }
    Ok(())
}
