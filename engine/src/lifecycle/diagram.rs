//! The state diagrams of `docs/design.md`, generated from the transition tables as Mermaid
//! `stateDiagram-v2` blocks. A test keeps the document in step with the tables.

use std::collections::BTreeMap;

use super::{run, task, Transition};

/// The run lifecycle as a Mermaid diagram.
pub fn runs() -> String {
    diagram(run::INITIAL.as_str(), run::TABLE, |s| s.as_str())
}

/// The task lifecycle as a Mermaid diagram.
pub fn tasks() -> String {
    diagram(task::INITIAL.as_str(), task::TABLE, |s| s.as_str())
}

/// One line per pair of statuses, in the table's order, labelled with every event that takes
/// one to the other; the statuses nothing leaves are final.
fn diagram<S: Copy + PartialEq>(
    initial: &str,
    table: &[Transition<S>],
    name: impl Fn(S) -> &'static str,
) -> String {
    let mut edges: Vec<((&str, &str), Vec<&str>)> = Vec::new();
    for row in table {
        let pair = (name(row.from), name(row.to));
        match edges.iter_mut().find(|(p, _)| *p == pair) {
            Some((_, events)) => events.push(row.event.as_str()),
            None => edges.push((pair, vec![row.event.as_str()])),
        }
    }
    let mut out = String::from("stateDiagram-v2\n");
    out.push_str(&format!("    [*] --> {initial}\n"));
    for ((from, to), events) in &edges {
        out.push_str(&format!("    {from} --> {to}: {}\n", events.join(", ")));
    }
    let mut leaves: BTreeMap<&str, bool> = BTreeMap::new();
    for row in table {
        leaves.insert(name(row.from), true);
        leaves.entry(name(row.to)).or_insert(false);
    }
    for row in table {
        let to = name(row.to);
        if !leaves[to] {
            leaves.insert(to, true);
            out.push_str(&format!("    {to} --> [*]\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the text of the block between `<!-- lifecycle: NAME -->` and the end of the
    /// ```mermaid fence that follows it lies in `doc`.
    fn block(doc: &str, name: &str) -> std::ops::Range<usize> {
        let marker = format!("<!-- lifecycle: {name} -->\n```mermaid\n");
        let start = doc
            .find(&marker)
            .unwrap_or_else(|| panic!("docs/design.md has no `<!-- lifecycle: {name} -->`"))
            + marker.len();
        let end = doc[start..].find("```").expect("the mermaid block ends") + start;
        start..end
    }

    #[test]
    fn the_diagrams_in_the_design_doc_are_generated_from_the_tables() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/design.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let mut fresh = doc.clone();
        // The later block first, so the earlier one's range stays where it is.
        fresh.replace_range(block(&doc, "tasks"), &tasks());
        fresh.replace_range(block(&doc, "runs"), &runs());
        if fresh != doc && std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &fresh).unwrap();
            return;
        }
        let hint =
            "run `UPDATE_DOCS=1 cargo test -p engine lifecycle` to regenerate docs/design.md";
        assert_eq!(&doc[block(&doc, "runs")], runs(), "{hint}");
        assert_eq!(&doc[block(&doc, "tasks")], tasks(), "{hint}");
    }

    #[test]
    fn the_task_diagram_shows_each_pair_once_and_the_final_statuses() {
        let text = tasks();
        assert!(text.starts_with("stateDiagram-v2\n    [*] --> pending\n"));
        assert!(text.contains("    pending --> pending: attempt.launch_failed, task.retry\n"));
        assert!(text.contains("    failed --> [*]\n"));
        assert!(!text.contains("    pending --> [*]\n"));
    }
}
