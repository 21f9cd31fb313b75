//! `engine graph`: draw a pipeline's DAG as Graphviz DOT or Mermaid.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use dsl::model::pipeline::{Edge, Node};
use dsl::model::Pipeline;
use petgraph::visit::EdgeRef;

use super::output::print_diagnostics;
use super::Exit;

/// Print a pipeline's graph of sources and steps.
///
/// Sources are drawn as cylinders, steps as boxes; a solid arrow means "consumes", a dashed
/// one `after` (ordering only).
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The .pipe file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The pipeline to draw; needed when the file has more than one.
    #[arg(long, short)]
    pipeline: Option<String>,
    /// The output format.
    #[arg(long, short, value_enum, default_value_t = Format::Dot)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Graphviz: pipe into `dot -Tsvg`.
    Dot,
    /// Mermaid: paste into Markdown inside a ```mermaid block.
    Mermaid,
}

pub fn run(args: &GraphArgs) -> Result<Exit> {
    let loaded = dsl::load_file(&args.file)
        .with_context(|| format!("cannot read `{}`", args.file.display()))?;
    if !loaded.is_valid() {
        print_diagnostics(&loaded.diagnostics, &loaded.sources);
        return Ok(Exit::Failed);
    }
    let names: Vec<&str> = loaded.pipelines.iter().map(|p| p.name.as_str()).collect();
    let pipeline = match (&args.pipeline, loaded.pipelines.as_slice()) {
        (Some(name), _) => match loaded.pipeline(name) {
            Some(p) => p,
            None => bail!(
                "no pipeline `{name}` in `{}` (it has: {})",
                args.file.display(),
                names.join(", ")
            ),
        },
        (None, [only]) => only,
        (None, []) => bail!("`{}` has no pipeline", args.file.display()),
        (None, _) => bail!(
            "`{}` has {} pipelines ({}); choose one with --pipeline NAME",
            args.file.display(),
            names.len(),
            names.join(", ")
        ),
    };
    print!(
        "{}",
        match args.format {
            Format::Dot => dot(pipeline),
            Format::Mermaid => mermaid(pipeline),
        }
    );
    Ok(Exit::Success)
}

fn step_label(pipeline: &Pipeline, node: Node) -> String {
    match node {
        Node::Step(i) => {
            let step = &pipeline.steps[i];
            match &step.each {
                Some(group) => format!("{}\\neach {group}", step.name),
                None => step.name.clone(),
            }
        }
        Node::Source(i) => pipeline.sources[i].name.clone(),
    }
}

/// Graphviz DOT.
pub fn dot(pipeline: &Pipeline) -> String {
    let graph = pipeline.graph();
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
        pipeline.name
    );
    for index in graph.node_indices() {
        let node = graph[index];
        let shape = match node {
            Node::Source(_) => ", shape=cylinder, style=solid",
            Node::Step(_) => "",
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\"{shape}];",
            pipeline.node_name(node),
            step_label(pipeline, node)
        );
    }
    for edge in graph.edge_references() {
        let style = match edge.weight() {
            Edge::Input => "",
            Edge::After => " [style=dashed]",
        };
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\"{style};",
            pipeline.node_name(graph[edge.source()]),
            pipeline.node_name(graph[edge.target()])
        );
    }
    out.push_str("}\n");
    out
}

/// A Mermaid flowchart.
pub fn mermaid(pipeline: &Pipeline) -> String {
    let graph = pipeline.graph();
    let mut out = String::from("flowchart LR\n");
    for index in graph.node_indices() {
        let node = graph[index];
        let name = pipeline.node_name(node);
        let label = step_label(pipeline, node).replace("\\n", "<br/>");
        let _ = match node {
            Node::Source(_) => writeln!(out, "  {name}[(\"{label}\")]"),
            Node::Step(_) => writeln!(out, "  {name}[\"{label}\"]"),
        };
    }
    for edge in graph.edge_references() {
        let arrow = match edge.weight() {
            Edge::Input => "-->",
            Edge::After => "-.->",
        };
        let _ = writeln!(
            out,
            "  {} {arrow} {}",
            pipeline.node_name(graph[edge.source()]),
            pipeline.node_name(graph[edge.target()])
        );
    }
    out
}
