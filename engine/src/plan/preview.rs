//! A dry run of the cache decisions: per planned task, cached or would run, and why. A task
//! downstream of one that would run can only be decided once that one has run, so it is reported
//! as after its upstream. `engine plan` prints this; the daemon counts the tasks that would run
//! (the gap) to decide whether a continuous pipeline has anything to do.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dsl::model::{ParamValue, Pipeline};
use serde::Serialize;

use super::decide::{decide, Asked, Verdict};
use super::Force;
use super::{inputs_of, Plan, Produced};
use crate::store::{ProductRecord, Reason, Store, StoreError};

/// The decision for one planned task.
#[derive(Debug, Clone, Serialize)]
pub struct Previewed {
    pub step: String,
    pub group: Option<String>,
    /// `cached`, `run`, `after-upstream` (decided once upstream tasks have run), or `held` (by
    /// a trigger's run: the same task, or one upstream of it, failed after its retries).
    pub decision: &'static str,
    pub reason: Option<Reason>,
    pub key: Option<String>,
}

/// What the dry run knows of a task: its products when cached.
struct Known {
    task: u64,
    out_dir: PathBuf,
    products: Vec<ProductRecord>,
}

/// Decides every task of `plan` as a run would, without running anything; `hold` as a run
/// fired by a trigger does.
pub fn preview(
    pipeline: &Pipeline,
    params: &BTreeMap<String, ParamValue>,
    plan: &Plan,
    store: &Store,
    force: &Force,
    hold: bool,
) -> Result<Vec<Previewed>, StoreError> {
    let mut known: Vec<Option<Known>> = Vec::with_capacity(plan.tasks.len());
    // Per task, why it is held, if it is.
    let mut held: Vec<Option<Reason>> = Vec::with_capacity(plan.tasks.len());
    let mut lines = Vec::with_capacity(plan.tasks.len());
    for task in &plan.tasks {
        let step = &pipeline.steps[task.step];
        let line = |decision, reason, key| Previewed {
            step: step.name.clone(),
            group: task.group.clone(),
            decision,
            reason,
            key,
        };
        if let Some(reason) = task.upstream.iter().find_map(|&u| held[u].clone()) {
            known.push(None);
            held.push(Some(reason.clone()));
            lines.push(line("held", Some(reason), None));
            continue;
        }
        if !task.upstream.iter().all(|&u| known[u].is_some()) {
            known.push(None);
            held.push(None);
            lines.push(line("after-upstream", Some(Reason::UpstreamChanged), None));
            continue;
        }
        let inputs = inputs_of(task, |u| {
            let k = known[u].as_ref().expect("upstream known");
            Produced {
                task: k.task,
                step: &pipeline.steps[plan.tasks[u].step].name,
                group: plan.tasks[u].group.as_deref(),
                out_dir: &k.out_dir,
                products: &k.products,
            }
        });
        let decided = decide(
            store,
            &pipeline.name,
            step,
            task.group.as_deref(),
            params,
            &inputs,
            Asked {
                forced: force.applies_to(&step.name),
                retry: false,
                hold,
            },
        )?;
        let now_held = match decided.verdict {
            Verdict::Cached {
                task: cached,
                products,
            } => {
                let reason = Reason::Cached { task: cached.id };
                lines.push(line("cached", Some(reason), Some(decided.key)));
                known.push(Some(Known {
                    task: cached.id,
                    out_dir: cached.out_dir,
                    products,
                }));
                None
            }
            Verdict::Run(reason) => {
                lines.push(line("run", Some(reason), Some(decided.key)));
                known.push(None);
                None
            }
            Verdict::Held(reason) => {
                lines.push(line("held", Some(reason.clone()), Some(decided.key)));
                known.push(None);
                Some(reason)
            }
        };
        held.push(now_held);
    }
    Ok(lines)
}
