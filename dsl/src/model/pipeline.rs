//! A checked pipeline: params, sources, steps in a deterministic topological order, and the
//! petgraph DAG between them.

use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use super::notify::Notify;
use super::param::ParamDef;
use super::source::SourceDef;
use super::step::StepDef;
use super::trigger::Trigger;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    pub trigger: Trigger,
    pub params: Vec<ParamDef>,
    pub sources: Vec<SourceDef>,
    /// Every step, upstream before downstream; ties broken by the order of declaration.
    pub steps: Vec<StepDef>,
    /// The daemon's settings are left out of the canonical form when they are the defaults, so
    /// pipelines written before they existed keep their definition hash.
    #[serde(default, skip_serializing_if = "Overlap::is_default")]
    pub overlap: Overlap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<Notify>,
}

/// What the daemon does when a trigger fires while a run of the pipeline is going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Nothing: the fire is dropped.
    Skip,
    /// One more run once the going one ends, however many fires came meanwhile.
    #[default]
    Queue,
    /// Another run at once. A task whose output another run is producing waits for it, and is
    /// then usually cached.
    Allow,
}

impl Overlap {
    pub const NAMES: [&'static str; 3] = ["skip", "queue", "allow"];

    pub fn from_name(name: &str) -> Option<Overlap> {
        match name {
            "skip" => Some(Overlap::Skip),
            "queue" => Some(Overlap::Queue),
            "allow" => Some(Overlap::Allow),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }

    fn is_default(&self) -> bool {
        *self == Overlap::default()
    }
}

/// A node of the pipeline's graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// Index into [`Pipeline::sources`].
    Source(usize),
    /// Index into [`Pipeline::steps`].
    Step(usize),
}

/// Why one node comes before another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The downstream step consumes the upstream's items or products.
    Input,
    /// `after`: ordering only.
    After,
}

impl Pipeline {
    pub fn step(&self, name: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.name == name)
    }

    pub fn source(&self, name: &str) -> Option<&SourceDef> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// The DAG: sources and steps as nodes, inputs and `after` as edges from upstream to downstream.
    pub fn graph(&self) -> DiGraph<Node, Edge> {
        let mut graph = DiGraph::new();
        let mut index = std::collections::HashMap::new();
        for (i, source) in self.sources.iter().enumerate() {
            index.insert(source.name.as_str(), graph.add_node(Node::Source(i)));
        }
        for (i, step) in self.steps.iter().enumerate() {
            index.insert(step.name.as_str(), graph.add_node(Node::Step(i)));
        }
        for step in &self.steps {
            let to: NodeIndex = index[step.name.as_str()];
            for (names, edge) in [(&step.inputs, Edge::Input), (&step.after, Edge::After)] {
                for name in names {
                    if let Some(from) = index.get(name.as_str()) {
                        graph.add_edge(*from, to, edge);
                    }
                }
            }
        }
        graph
    }

    /// The name of a node.
    pub fn node_name(&self, node: Node) -> &str {
        match node {
            Node::Source(i) => &self.sources[i].name,
            Node::Step(i) => &self.steps[i].name,
        }
    }

    /// blake3 of the pipeline's canonical JSON: changes whenever its meaning changes,
    /// never when only its layout or comments do.
    pub fn definition_hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a pipeline always serializes");
        blake3::hash(&json).to_hex().to_string()
    }
}
