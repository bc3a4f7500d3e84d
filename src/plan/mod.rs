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
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A node index is written as its number.
mod node_index {
    use petgraph::graph::NodeIndex;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(node: &NodeIndex, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(node.index() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NodeIndex, D::Error> {
        Ok(NodeIndex::new(usize::deserialize(deserializer)?))
    }
}

/// Where a stage input comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An output of another stage.
    Stage {
        #[serde(with = "node_index")]
        node: NodeIndex,
        output: String,
    },
    /// A raw file read whole: resolved path, and the path as written in the study (recorded in
    /// provenance).
    File { path: PathBuf, written: String },
    /// A raw file handed to the stage by path, for streaming (4D images). Fingerprinted by
    /// content like `File`; the stage opens it itself.
    Path { path: PathBuf, written: String },
}

/// One stage instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// `[study] sources`, for `dataset_description.json`.
    pub sources: Vec<crate::design::SourceDataset>,
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

    /// DAG level of every node (by node index): 0 without inputs from stages, else one more than
    /// its deepest input. Nodes of one level never depend on one another.
    pub fn levels(&self) -> Vec<usize> {
        let mut level = vec![0; self.graph.node_count()];
        for &i in &self.order {
            level[i.index()] = self.dependencies(i).iter().map(|d| level[d.index()] + 1).max().unwrap_or(0);
        }
        level
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
    let study = &resolved.study;
    let mut plan = finish(graph, study.output_dir.clone(), study.hash.clone(), study.name.clone());
    plan.sources = study.sources.clone();
    plan
}

/// The plan a compiled plan's nodes (in index order) describe: the same graph, edges and order.
/// Used to read back a plan written out for another process (`exec::slurm`). `None` if an input
/// names a node that does not exist, or the inputs form a cycle (a damaged file).
pub fn from_nodes(nodes: Vec<Node>, output_dir: PathBuf, study_hash: String, study_name: String) -> Option<Plan> {
    let mut graph = DiGraph::with_capacity(nodes.len(), nodes.len());
    for node in nodes {
        graph.add_node(node);
    }
    let mut edges = Vec::new();
    for to in graph.node_indices() {
        for (_, source) in &graph[to].inputs {
            if let Source::Stage { node: from, output } = source {
                if from.index() >= graph.node_count() || *from == to {
                    return None;
                }
                edges.push((*from, to, output.clone()));
            }
        }
    }
    for (from, to, output) in edges {
        graph.add_edge(from, to, output);
    }
    let plan = finish(graph, output_dir, study_hash, study_name);
    (plan.order.len() == plan.graph.node_count()).then_some(plan)
}

fn finish(graph: DiGraph<Node, String>, output_dir: PathBuf, study_hash: String, study_name: String) -> Plan {
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
    Plan { graph, order, output_dir, study_hash, study_name, sources: Vec::new() }
}
