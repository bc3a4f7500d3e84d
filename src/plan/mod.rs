//! From a checked study to a DAG of stage instances.
//!
//! [`compile`] turns a [`Resolved`] study into a [`Plan`]: a petgraph DAG whose nodes are stage
//! instances (per table, per outcome × sample, …) and whose edges carry named outputs. Each node
//! holds exactly the parameters its stage reads — nothing else from the spec — which is what
//! makes fingerprints precise (see [`fingerprint`]). `wire` adds the nodes of one stage kind per
//! function; it reads only `Resolved`, never the raw study.

pub mod fingerprint;

mod wire;

use crate::spec::check::Resolved;
use crate::stages::Kind;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use std::path::PathBuf;

/// Where a stage input comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An output of another stage.
    Stage { node: NodeIndex, output: String },
    /// A raw file read whole: resolved path, and the path as written in the study (recorded in
    /// provenance).
    File { path: PathBuf, written: String },
    /// A raw file handed to the stage by path, for streaming (4D images). Fingerprinted by
    /// content like `File`; the stage opens it itself.
    Path { path: PathBuf, written: String },
}

/// One stage instance.
#[derive(Debug, Clone)]
pub struct Node {
    /// Unique, human-readable id, e.g. `associate/anxiety/discovery`.
    pub id: String,
    pub kind: Kind,
    /// The stage's canonical parameters (its slice of the spec).
    pub params: serde_json::Value,
    /// Seed of the stage's random draws, for stages that draw.
    pub seed: Option<u64>,
    pub inputs: Vec<(String, Source)>,
    /// Outputs copied to the output folder: (output name, path relative to the folder).
    pub publish: Vec<(String, String)>,
}

pub struct Plan {
    pub graph: DiGraph<Node, String>,
    /// Nodes in a topological order (ties broken by insertion order: deterministic).
    pub order: Vec<NodeIndex>,
    pub output_dir: PathBuf,
    pub study_hash: String,
    pub study_name: String,
}

impl Plan {
    pub fn node(&self, i: NodeIndex) -> &Node {
        &self.graph[i]
    }

    /// Nodes whose outputs node `i` reads.
    pub fn dependencies(&self, i: NodeIndex) -> Vec<NodeIndex> {
        let mut deps: Vec<NodeIndex> =
            self.graph.edges_directed(i, petgraph::Direction::Incoming).map(|e| e.source()).collect();
        deps.sort();
        deps.dedup();
        deps
    }

    /// Graphviz rendering of the DAG.
    pub fn dot(&self, states: Option<&[String]>) -> String {
        let mut out = String::from("digraph neurospec {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
        for (position, &i) in self.order.iter().enumerate() {
            let node = &self.graph[i];
            let (label, color) = match states {
                Some(s) => {
                    (format!("{}\\n{}", node.id, s[position]), if s[position] == "cached" { "gray" } else { "black" })
                }
                None => (node.id.clone(), "black"),
            };
            out.push_str(&format!("  n{} [label=\"{label}\", color={color}];\n", i.index()));
        }
        for e in self.graph.edge_references() {
            out.push_str(&format!(
                "  n{} -> n{} [label=\"{}\"];\n",
                e.source().index(),
                e.target().index(),
                e.weight()
            ));
        }
        out.push_str("}\n");
        out
    }
}

/// Compile a checked study into its DAG.
pub fn compile(resolved: &Resolved) -> Plan {
    let graph = wire::build(resolved);
    finish(resolved, graph)
}

fn finish(resolved: &Resolved, graph: DiGraph<Node, String>) -> Plan {
    // Kahn's algorithm with the smallest ready index first: a deterministic topological order.
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|i| {
            let mut deps: Vec<NodeIndex> =
                graph.edges_directed(i, petgraph::Direction::Incoming).map(|e| e.source()).collect();
            deps.sort();
            deps.dedup();
            deps.len()
        })
        .collect();
    let mut ready: std::collections::BTreeSet<NodeIndex> =
        graph.node_indices().filter(|i| indegree[i.index()] == 0).collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(&i) = ready.iter().next() {
        ready.remove(&i);
        order.push(i);
        let mut next: Vec<NodeIndex> =
            graph.edges_directed(i, petgraph::Direction::Outgoing).map(|e| e.target()).collect();
        next.sort();
        next.dedup();
        for j in next {
            indegree[j.index()] -= 1;
            if indegree[j.index()] == 0 {
                ready.insert(j);
            }
        }
    }
    Plan {
        graph,
        order,
        output_dir: resolved.study.output_dir.clone(),
        study_hash: resolved.study.hash.clone(),
        study_name: resolved.study.name.clone(),
    }
}
