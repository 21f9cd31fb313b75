//! Task keys, and why a task runs. A task key is blake3 over the step's identity (its canonical
//! command, env, outputs, inputs, group, executor kind and container), the values of the params
//! the step reads, the group key, and the name and content hash of every input, sorted. Equal
//! keys mean equal work: a completed task with the same key is reused instead of run.

use std::collections::BTreeMap;

use dsl::model::{ParamValue, StepDef};
use serde::Serialize;

use crate::store::{InputRef, Reason, TaskRecord};

#[derive(Serialize)]
struct KeyMaterial<'a> {
    identity: &'a str,
    group: Option<&'a str>,
    params: BTreeMap<&'a str, &'a ParamValue>,
    inputs: Vec<(&'a str, &'a str, &'a str)>,
}

/// The params a step reads, with their values in this run.
pub fn params_used(
    step: &StepDef,
    params: &BTreeMap<String, ParamValue>,
) -> BTreeMap<String, ParamValue> {
    step.params_used
        .iter()
        .filter_map(|name| params.get(&**name).map(|v| (name.to_string(), v.clone())))
        .collect()
}

/// The key of a task of `step` for `group` with these inputs.
pub fn task_key(
    identity: &str,
    group: Option<&str>,
    params: &BTreeMap<String, ParamValue>,
    inputs: &[InputRef],
) -> String {
    let mut sorted: Vec<(&str, &str, &str)> = inputs
        .iter()
        .map(|i| (i.from.as_str(), i.name.as_str(), i.hash.as_str()))
        .collect();
    sorted.sort_unstable();
    let material = KeyMaterial {
        identity,
        group,
        params: params.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        inputs: sorted,
    };
    let json = serde_json::to_vec(&material).expect("key material serializes");
    blake3::hash(&json).to_hex().to_string()
}

/// Why a task with this identity, params and inputs runs, given the latest completed task of the
/// same step and group (if any).
pub fn reason(
    identity: &str,
    params: &BTreeMap<String, ParamValue>,
    inputs: &[InputRef],
    latest: Option<&TaskRecord>,
) -> Reason {
    let Some(latest) = latest else {
        return Reason::New;
    };
    if latest.identity != identity {
        return Reason::DefinitionChanged;
    }
    let changed_params: Vec<String> = params
        .iter()
        .filter(|(name, value)| latest.params.get(*name) != Some(*value))
        .map(|(name, _)| name.clone())
        .chain(
            latest
                .params
                .keys()
                .filter(|name| !params.contains_key(*name))
                .cloned(),
        )
        .collect();
    if !changed_params.is_empty() {
        return Reason::ParamsChanged(changed_params);
    }
    let before: BTreeMap<(&str, &str), &str> = latest
        .inputs
        .iter()
        .map(|i| ((i.from.as_str(), i.name.as_str()), i.hash.as_str()))
        .collect();
    let now: BTreeMap<(&str, &str), &str> = inputs
        .iter()
        .map(|i| ((i.from.as_str(), i.name.as_str()), i.hash.as_str()))
        .collect();
    let mut changed_sources = Vec::new();
    let mut upstream_changed = false;
    for (k, hash) in &now {
        if before.get(k) != Some(hash) {
            let is_product = inputs
                .iter()
                .any(|i| (i.from.as_str(), i.name.as_str()) == *k && i.task.is_some());
            if is_product {
                upstream_changed = true;
            } else {
                changed_sources.push(k.1.to_string());
            }
        }
    }
    for k in before.keys() {
        if !now.contains_key(k) {
            changed_sources.push(format!("{} (removed)", k.1));
        }
    }
    if !changed_sources.is_empty() {
        Reason::InputsChanged(changed_sources)
    } else if upstream_changed {
        Reason::UpstreamChanged
    } else {
        Reason::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, hash: &str) -> InputRef {
        InputRef {
            from: "reads".into(),
            name: name.into(),
            path: name.into(),
            hash: hash.into(),
            task: None,
        }
    }

    #[test]
    fn key_ignores_input_order_and_sees_content() {
        let params = BTreeMap::new();
        let a = task_key(
            "id",
            Some("S1"),
            &params,
            &[input("a", "1"), input("b", "2")],
        );
        let b = task_key(
            "id",
            Some("S1"),
            &params,
            &[input("b", "2"), input("a", "1")],
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            task_key(
                "id",
                Some("S1"),
                &params,
                &[input("a", "1"), input("b", "3")]
            )
        );
        assert_ne!(
            a,
            task_key(
                "id",
                Some("S2"),
                &params,
                &[input("a", "1"), input("b", "2")]
            )
        );
        assert_ne!(
            a,
            task_key(
                "id2",
                Some("S1"),
                &params,
                &[input("a", "1"), input("b", "2")]
            )
        );
    }

    #[test]
    fn key_sees_params() {
        let one = BTreeMap::from([("q".to_string(), ParamValue::Int(1))]);
        let two = BTreeMap::from([("q".to_string(), ParamValue::Int(2))]);
        assert_ne!(
            task_key("id", None, &one, &[]),
            task_key("id", None, &two, &[])
        );
    }
}
