//! The checks that need every step at once: names in `input` and `after` exist, per-group steps
//! consume inputs of their own group, no cycle (naming every step on it), and the deterministic
//! topological order of the steps. Also the warnings for sources and params nothing uses.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::ast;
use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::lower::steps::{SpanTable, StepSpans};
use crate::lower::{unknown, Scope};
use crate::model::{ParamDef, StepDef};

/// Checks the lowered `steps` (with where they were written, `spans`) as a graph, and returns
/// them in their deterministic topological order. `items` are the pipeline's other items.
pub(super) fn order_and_check(
    items: &[ast::PipelineItem],
    scope: &Scope,
    mut steps: Vec<StepDef>,
    spans: &SpanTable,
    params: &[ParamDef],
    had_errors: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<StepDef>> {
    let step_index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // Only needed to suggest a name, so only sorted when one is unknown.
    let candidates = || {
        let mut names: Vec<&str> = scope.sources_and_steps.names().collect();
        names.sort_unstable();
        names
    };

    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(steps.len(), steps.len());
    let nodes: Vec<NodeIndex> = (0..steps.len()).map(|i| graph.add_node(i)).collect();
    let mut ok = true;
    for (i, (def, step_spans)) in steps.iter().zip(&spans.steps).enumerate() {
        if let (Some(group), Some(span)) = (&def.each, step_spans.each) {
            if !scope.groups.contains_key(group) {
                let name = ast::Name {
                    text: group.clone(),
                    span,
                };
                let mut d = unknown(
                    Code::UnknownGroup,
                    "group",
                    &name,
                    scope.groups.keys().map(String::as_str),
                );
                d = d.help(match did_you_mean(group, scope.groups.keys().map(String::as_str)) {
                    Some(s) => s,
                    None => format!("declare it in a source: `group {group} by regex \"(?P<{group}>...)\"` or `group {group} by segment 0`"),
                });
                diags.push(d);
                ok = false;
            }
        }
        let mut has_own_group = false;
        for (name, span) in def.inputs.iter().zip(step_spans.inputs(def, &spans.names)) {
            let input_group: Option<Option<&str>> = match (
                scope.sources.get(name.as_str()).map(Option::as_deref),
                step_index.get(name.as_str()),
            ) {
                (Some(group), _) => Some(group),
                (None, Some(&j)) => {
                    graph.add_edge(nodes[j], nodes[i], ());
                    Some(steps[j].each.as_deref())
                }
                (None, None) => {
                    if !scope.sources_and_steps.contains(name) {
                        let n = ast::Name {
                            text: name.clone(),
                            span: *span,
                        };
                        diags.push(unknown(
                            Code::UnknownStep,
                            "step or source",
                            &n,
                            candidates(),
                        ));
                        ok = false;
                    }
                    None
                }
            };
            let known_group = def
                .each
                .as_ref()
                .is_some_and(|g| scope.groups.contains_key(g));
            if let (Some(Some(input_group)), Some(group), true) =
                (input_group, &def.each, known_group)
            {
                if input_group == group {
                    has_own_group = true;
                } else {
                    diags.push(
                        Diagnostic::new(
                            Code::GroupMismatch,
                            format!("step `{}` runs for each `{group}`, but its input `{name}` is grouped by `{input_group}`", def.name),
                        )
                        .label(*span, format!("grouped by `{input_group}`"))
                        .label(step_spans.each.unwrap_or(step_spans.name), format!("per `{group}`"))
                        .help("a per-group step consumes inputs of its own group, ungrouped sources, and aggregate steps"),
                    );
                    ok = false;
                }
            }
        }
        if let Some(group) = &def.each {
            if !has_own_group && ok && scope.groups.contains_key(group) {
                diags.push(
                    Diagnostic::new(Code::GroupMismatch, format!("step `{}` runs for each `{group}`, but none of its inputs is grouped by `{group}`", def.name))
                        .label(step_spans.each.unwrap_or(step_spans.name), "which groups?")
                        .help(format!("add an input grouped by `{group}`: a source with `group {group} by ...`, or another `each {group}` step")),
                );
                ok = false;
            }
        }
        for (name, span) in def.after.iter().zip(step_spans.after(def, &spans.names)) {
            match step_index.get(name.as_str()) {
                Some(&j) => {
                    graph.add_edge(nodes[j], nodes[i], ());
                }
                None if scope.is_step(name) => {}
                None => {
                    let n = ast::Name {
                        text: name.clone(),
                        span: *span,
                    };
                    let mut d = unknown(Code::UnknownStep, "step", &n, scope.step_names());
                    if scope.sources.contains_key(name.as_str()) {
                        d = d.help(format!("`{name}` is a source; `after` orders steps, use `input {name}` to consume it"));
                    }
                    diags.push(d);
                    ok = false;
                }
            }
        }
    }

    // The order leaves out every step on or after a cycle; only then are the cycles looked for.
    let order = topological_order(&graph);
    if order.len() < steps.len() && !report_cycles(&graph, &steps, &spans.steps, diags) {
        ok = false;
    }
    // Warnings about unused things are noise next to errors, and often caused by them.
    if ok && !had_errors {
        warn_unused(items, &steps, params, diags);
    }
    if !ok {
        return None;
    }
    reorder(&mut steps, &order);
    Some(steps)
}

/// Moves the item at `order[k]` to `k` for every `k`, in place (`order` is a permutation of
/// the indices of `items`), so that a pipeline's steps are ordered without a second copy.
pub(super) fn reorder<T>(items: &mut [T], order: &[usize]) {
    assert_eq!(items.len(), order.len(), "an order of every item");
    // `position[i]` is where the item that started at `i` is now; `origin[p]` is where the
    // item now at `p` started.
    let mut position: Vec<usize> = (0..items.len()).collect();
    let mut origin = position.clone();
    for (k, &wanted) in order.iter().enumerate() {
        let at = position[wanted];
        items.swap(k, at);
        let displaced = origin[k];
        position[displaced] = at;
        origin[at] = displaced;
        position[wanted] = k;
        origin[k] = wanted;
    }
}

/// Kahn's algorithm, always taking the earliest-declared ready step: the same file gives the same order.
/// Steps on a cycle, and those that depend on one, are left out.
fn topological_order(graph: &DiGraph<usize, ()>) -> Vec<usize> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.neighbors_directed(n, petgraph::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(graph[NodeIndex::new(i)]);
        for next in graph.neighbors(NodeIndex::new(i)) {
            indegree[next.index()] -= 1;
            if indegree[next.index()] == 0 {
                ready.push(Reverse(next.index()));
            }
        }
    }
    order
}

/// Reports each cycle once, naming every step on it in order. Returns false if there was one.
fn report_cycles(
    graph: &DiGraph<usize, ()>,
    steps: &[StepDef],
    spans: &[StepSpans],
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut ok = true;
    let mut components = tarjan_scc(graph);
    components.sort_by_key(|c| c.iter().map(|n| n.index()).min());
    for component in components {
        let self_loop = component.len() == 1 && graph.contains_edge(component[0], component[0]);
        if component.len() < 2 && !self_loop {
            continue;
        }
        ok = false;
        let members: HashSet<NodeIndex> = component.iter().copied().collect();
        let start = *component
            .iter()
            .min_by_key(|n| n.index())
            .expect("non-empty component");
        let cycle = find_cycle(graph, start, &members);
        let names: Vec<&str> = cycle
            .iter()
            .map(|n| steps[graph[*n]].name.as_str())
            .collect();
        let mut path = names.join(" -> ");
        path.push_str(&format!(" -> {}", names[0]));
        let mut d = Diagnostic::new(
            Code::Cycle,
            format!("steps depend on each other in a cycle: {path}"),
        );
        for (k, node) in cycle.iter().enumerate() {
            let next = names[(k + 1) % names.len()];
            d = d.label(spans[graph[*node]].name, format!("needed by `{next}`"));
        }
        diags.push(d.help("a pipeline is a DAG: remove one of these `input` or `after` links"));
    }
    ok
}

/// A path from `start` back to itself within `members` (breadth-first, so the shortest).
fn find_cycle(
    graph: &DiGraph<usize, ()>,
    start: NodeIndex,
    members: &HashSet<NodeIndex>,
) -> Vec<NodeIndex> {
    let mut previous: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in graph.neighbors(node) {
            if !members.contains(&next) {
                continue;
            }
            if next == start {
                let mut path = vec![node];
                let mut at = node;
                while at != start {
                    at = previous[&at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = previous.entry(next) {
                e.insert(node);
                queue.push_back(next);
            }
        }
    }
    vec![start]
}

fn warn_unused(
    items: &[ast::PipelineItem],
    steps: &[StepDef],
    params: &[ParamDef],
    diags: &mut Vec<Diagnostic>,
) {
    let consumed: HashSet<&str> = steps
        .iter()
        .flat_map(|s| s.inputs.iter().map(String::as_str))
        .collect();
    let used_params: HashSet<&str> = steps
        .iter()
        .flat_map(|s| s.params_used.iter().map(|name| &**name))
        .collect();
    for item in items {
        match item {
            ast::PipelineItem::Source(source) if !consumed.contains(source.name.text.as_str()) => {
                diags.push(
                    Diagnostic::new(
                        Code::UnusedSource,
                        format!("source `{}` is not used by any step", source.name.text),
                    )
                    .label(source.name.span, "declared here")
                    .help(format!(
                        "consume it with `input {}` in a step, or remove it",
                        source.name.text
                    )),
                );
            }
            ast::PipelineItem::Param(param)
                if params.iter().any(|p| p.name == param.name.text)
                    && !used_params.contains(param.name.text.as_str()) =>
            {
                diags.push(
                    Diagnostic::new(
                        Code::UnusedParam,
                        format!("param `{}` is not used by any step", param.name.text),
                    )
                    .label(param.name.span, "declared here")
                    .help(format!(
                        "use it as {{params.{}}} in a `run` or `env`, or in a `when`; or remove it",
                        param.name.text
                    )),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reorder;

    #[test]
    fn reorders_in_place_by_a_permutation() {
        for order in [
            vec![],
            vec![0],
            vec![2, 0, 1],
            vec![1, 2, 0],
            vec![3, 2, 1, 0],
            vec![1, 0, 3, 2, 4],
            vec![4, 0, 3, 1, 2],
        ] {
            let mut items: Vec<usize> = (0..order.len()).map(|i| i * 10).collect();
            reorder(&mut items, &order);
            let wanted: Vec<usize> = order.iter().map(|i| i * 10).collect();
            assert_eq!(items, wanted, "{order:?}");
        }
    }
}
