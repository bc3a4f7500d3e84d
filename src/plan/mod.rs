//! From a checked study to a DAG of stage instances.
//!
//! [`compile`] turns a [`Resolved`] study into a [`Plan`]: a petgraph DAG whose nodes are stage
//! instances (per table, per outcome × sample, …) and whose edges carry named outputs. Each node
//! holds exactly the parameters its stage reads — nothing else from the spec — which is what
//! makes fingerprints precise (see [`fingerprint`]).

pub mod fingerprint;

use crate::spec::check::{Resolved, RocSource, TableSource};
use crate::spec::{LoadedStudy, SplitMethod};
use crate::stages::{self, Kind};
use crate::stats::rng::derive_seed;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;
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

struct Builder {
    graph: DiGraph<Node, String>,
}

impl Builder {
    fn add(&mut self, id: impl Into<String>, kind: Kind, params: impl Serialize, seed: Option<u64>) -> NodeIndex {
        let params = serde_json::to_value(params).expect("stage parameters serialise");
        self.graph.add_node(Node { id: id.into(), kind, params, seed, inputs: Vec::new(), publish: Vec::new() })
    }
    fn wire(&mut self, from: NodeIndex, output: &str, to: NodeIndex, input: impl Into<String>) {
        self.graph[to].inputs.push((input.into(), Source::Stage { node: from, output: output.to_string() }));
        self.graph.add_edge(from, to, output.to_string());
    }
    fn publish(&mut self, node: NodeIndex, output: &str, path: impl Into<String>) {
        self.graph[node].publish.push((output.to_string(), path.into()));
    }
}

/// Sample names: the split's two sides, or everyone.
pub const DISCOVERY: &str = "discovery";
pub const HELD_OUT: &str = "held-out";
pub const ALL: &str = "all";

pub fn compile(loaded: &LoadedStudy, resolved: &Resolved) -> Plan {
    let study = &loaded.study;
    let seed = study.study.seed;
    let mut b = Builder { graph: DiGraph::new() };

    let simulate = study.simulate.as_ref().filter(|sim| !sim.preset.writes_files()).map(|sim| {
        let sim_seed = sim.seed.unwrap_or_else(|| derive_seed(seed, "simulate"));
        let node = b.add(
            "simulate",
            Kind::Simulate,
            stages::simulate::Params { preset: sim.preset, subjects: sim.subjects, seed: sim_seed },
            Some(sim_seed),
        );
        b.publish(node, "truth", "simulation/truth.tsv");
        node
    });

    // Imaging: one node per subject's run, gathered into the connectome table.
    let mut run_nodes: Vec<(String, NodeIndex)> = Vec::new();
    let connectome = resolved.imaging.as_ref().map(|im| {
        let spec = study.connectivity.as_ref().expect("checked: imaging needs [connectivity]");
        let node = b.add(
            "connectome",
            Kind::Connectome,
            stages::connectome::Params {
                subjects: im.runs.iter().map(|r| r.subject.clone()).fold(Vec::new(), |mut v, s| {
                    if !v.contains(&s) {
                        v.push(s);
                    }
                    v
                }),
                sessions: im.sessions.clone(),
                edges: im.edges.iter().map(|(a, c)| crate::spec::check::edge_column(a, c)).collect(),
                without_runs: im.excluded.clone(),
                id_column: study.study.subject_id.clone(),
            },
            None,
        );
        b.publish(node, "tsv", "connectome.tsv");
        b.publish(node, "summary", "imaging_runs.tsv");
        for run in &im.runs {
            // The run's key in the connectome's inputs: `SUBJECT` or `SUBJECT/SESSION`.
            let key = match (&run.session, im.sessions.is_empty()) {
                (Some(session), false) => format!("{}/{session}", run.subject),
                _ => run.subject.clone(),
            };
            let id = match (&run.session, im.sessions.is_empty()) {
                (Some(session), false) => format!("imaging/sub-{}/ses-{session}", run.subject),
                _ => format!("imaging/sub-{}", run.subject),
            };
            let run_node = b.add(
                id,
                Kind::ImagingRun,
                stages::imaging_run::Params {
                    subject: run.subject.clone(),
                    sets: im.sets.clone(),
                    denoise: study.denoise.clone(),
                    tr: run.tr,
                    edges: im.edges.clone(),
                    fisher_z: spec.fisher_z,
                    seed_maps: im.seed_maps.as_ref().map(|m| m.0.clone()).unwrap_or_default(),
                },
                None,
            );
            let written =
                |p: &std::path::Path| p.strip_prefix(&loaded.dir).unwrap_or(p).to_string_lossy().replace('\\', "/");
            b.graph[run_node]
                .inputs
                .push(("bold".into(), Source::Path { path: run.bold.clone(), written: written(&run.bold) }));
            if let Some(c) = &run.confounds {
                b.graph[run_node]
                    .inputs
                    .push(("confounds".into(), Source::Path { path: c.clone(), written: written(c) }));
            }
            if let Some((_, path, as_written)) = &im.seed_maps {
                b.graph[run_node]
                    .inputs
                    .push(("seedmask".into(), Source::Path { path: path.clone(), written: as_written.clone() }));
            }
            for (input, path, as_written) in &im.region_files {
                b.graph[run_node]
                    .inputs
                    .push((input.clone(), Source::Path { path: path.clone(), written: as_written.clone() }));
            }
            let folder = match (&run.session, im.sessions.is_empty()) {
                (Some(session), false) => format!("sub-{}/ses-{session}/func", run.subject),
                _ => format!("sub-{}/func", run.subject),
            };
            b.publish(run_node, "series", format!("{folder}/{}_atlas-regions_timeseries.tsv", run.prefix));
            b.publish(
                run_node,
                "edges",
                format!("{folder}/{}_atlas-regions_desc-pearson_connectivity.tsv", run.prefix),
            );
            b.publish(run_node, "report", format!("{folder}/{}_desc-extraction_report.json", run.prefix));
            for seed in im.seed_maps.iter().flat_map(|m| &m.0) {
                b.publish(
                    run_node,
                    &format!("map:{seed}"),
                    format!("{folder}/{}_seed-{}_desc-fisherz_map.nii.gz", run.prefix, seed.replace('_', "")),
                );
            }
            run_nodes.push((key.clone(), run_node));
            b.wire(run_node, "edges", node, format!("edges:{key}"));
            b.wire(run_node, "report", node, format!("report:{key}"));
        }
        node
    });

    let mut table_nodes = std::collections::BTreeMap::new();
    for table in &resolved.tables {
        let (format, origin) = match &table.source {
            TableSource::File { written, format, .. } => (Some(*format), written.clone()),
            TableSource::Simulated { name } => (None, format!("simulated:{name}")),
            TableSource::Imaging => (None, "imaging:connectome".to_string()),
        };
        let node = b.add(
            format!("table/{}", table.name),
            Kind::LoadTable,
            stages::load_table::Params {
                origin,
                format,
                id_column: table.id_column.clone(),
                missing_values: table.missing_values.clone(),
            },
            None,
        );
        match &table.source {
            TableSource::File { path, written, .. } => {
                b.graph[node]
                    .inputs
                    .push(("file".into(), Source::File { path: path.clone(), written: written.clone() }));
            }
            TableSource::Simulated { name } => {
                let sim = simulate.expect("checked: simulated tables need [simulate]");
                b.wire(sim, name, node, "table");
            }
            TableSource::Imaging => {
                let connectome = connectome.expect("checked: the connectome table needs [imaging]");
                b.wire(connectome, "table", node, "table");
            }
        }
        table_nodes.insert(table.name.clone(), node);
    }
    let table_of = |column: &str| resolved.column_table.get(column).cloned();

    let scores = (!resolved.scores.is_empty()).then(|| {
        let mut tables: Vec<String> = resolved
            .scores
            .iter()
            .flat_map(|s| s.visits.iter().flat_map(|(_, items)| items.iter().filter_map(|i| table_of(i))))
            .collect();
        tables.sort();
        tables.dedup();
        let node = b.add(
            "scores",
            Kind::Scores,
            stages::scores::Params { scores: resolved.scores.clone(), tables: tables.clone() },
            None,
        );
        for t in &tables {
            b.wire(table_nodes[t], "table", node, format!("table:{t}"));
        }
        b.publish(node, "scores", "scores.tsv");
        b.publish(node, "report", "scoring_report.tsv");
        node
    });

    if study.association.is_none()
        && study.prediction.is_none()
        && study.factors.is_none()
        && study.group.is_empty()
        && study.roc.is_empty()
    {
        return finish(loaded, b);
    }

    // The analysis dataset: every column the models read, complete cases, IQR outliers.
    let is_factor = |c: &str| resolved.factors.as_ref().is_some_and(|f| f.provides(c));
    let mut outcomes: Vec<String> = Vec::new();
    let mut covariate_columns: Vec<String> = Vec::new();
    let mut features: Vec<String> = resolved.features.iter().map(|(_, c)| c.clone()).collect();
    let mut complete_cases = resolved.complete_cases.clone();
    let mut carry: Vec<String> = Vec::new();
    let push = |list: &mut Vec<String>, c: &str| {
        if !list.iter().any(|x| x == c) {
            list.push(c.to_string());
        }
    };
    for o in resolved.outcomes.iter().chain(resolved.prediction.iter().flat_map(|p| &p.outcomes)) {
        if !is_factor(o) {
            push(&mut outcomes, o);
        }
    }
    for term in &resolved.covariates {
        for col in term.columns() {
            push(&mut covariate_columns, col);
        }
    }
    if let Some(prediction) = &resolved.prediction {
        for c in &prediction.confounds {
            push(&mut covariate_columns, c);
        }
        for c in &prediction.features {
            push(&mut features, c);
        }
    }
    if let Some(f) = &resolved.factors {
        for c in &f.items {
            push(&mut complete_cases, c);
        }
    }
    for g in &resolved.groups {
        for c in &g.columns {
            push(&mut complete_cases, c);
        }
    }
    for (name, source) in &resolved.rocs {
        push(&mut complete_cases, &study.roc[name].label);
        match source {
            RocSource::Column { value, selected } => {
                push(&mut complete_cases, value);
                for c in selected.iter().flat_map(|s| s.candidates.iter().chain([&s.group_column]).chain(&s.covariates))
                {
                    push(&mut complete_cases, c);
                }
            }
            RocSource::Cluster(group) => {
                for c in &group.columns {
                    push(&mut complete_cases, c);
                }
            }
        }
    }
    if let Some(c) =
        study.split.as_ref().and_then(|s| if s.method == SplitMethod::Random { None } else { s.column.clone() })
    {
        push(&mut carry, &c);
    }
    if let Some(g) = study.prediction.as_ref().and_then(|p| p.group_column.as_ref()) {
        push(&mut carry, g);
    }
    let params = stages::dataset::Params {
        derived: resolved.derived.iter().map(|(c, policy)| (c.name.clone(), c.text.clone(), *policy)).collect(),
        outcomes,
        covariates: covariate_columns,
        features,
        complete_cases,
        iqr: resolved.iqr.clone(),
        carry,
        tables: Vec::new(),
    };
    let mut needed_tables: Vec<String> = params
        .covariates
        .iter()
        .chain(&params.features)
        .chain(&params.outcomes)
        .chain(&params.complete_cases)
        .chain(params.iqr.iter().flat_map(|(c, _)| c))
        .chain(&params.carry)
        .flat_map(|c| source_columns(resolved, c))
        .filter_map(|c| table_of(&c))
        .collect();
    needed_tables.sort();
    needed_tables.dedup();
    let params = stages::dataset::Params { tables: needed_tables.clone(), ..params };
    let dataset = b.add("dataset", Kind::Dataset, params, None);
    if let Some(scores) = scores {
        b.wire(scores, "scores", dataset, "scores");
    }
    for t in &needed_tables {
        b.wire(table_nodes[t], "table", dataset, format!("table:{t}"));
    }
    b.publish(dataset, "exclusions", "exclusions.tsv");
    b.publish(dataset, "summary", "exclusion_summary.tsv");

    let (parts, split) = match &study.split {
        Some(spec) => {
            let split_seed = spec.seed.unwrap_or_else(|| derive_seed(seed, "split"));
            let node = b.add(
                "split",
                Kind::Split,
                stages::split::Params {
                    method: spec.method,
                    held_out_fraction: spec.held_out_fraction,
                    column: spec.column.clone(),
                    held_out_values: spec.held_out_values.clone(),
                    seed: (spec.method != SplitMethod::Column).then_some(split_seed),
                },
                (spec.method != SplitMethod::Column).then_some(split_seed),
            );
            b.wire(dataset, "dataset", node, "dataset");
            b.publish(node, "split", "split.tsv");
            (vec![DISCOVERY, HELD_OUT], Some(node))
        }
        None => (vec![ALL], None),
    };

    // The factor model, fitted on discovery; its scores join the dataset.
    let analysis = match (&study.factors, &resolved.factors) {
        (Some(spec), Some(f)) => {
            let factor_seed = derive_seed(seed, "factors");
            let node = b.add(
                "factors",
                Kind::Factors,
                stages::factors::Params {
                    items: f.items.clone(),
                    count: spec.count,
                    method: spec.method,
                    rotation: spec.rotation,
                    gamma: spec.gamma,
                    scores: spec.scores,
                    parallel_simulations: spec.parallel_simulations,
                    seed: factor_seed,
                    names: f.names.clone(),
                    fit_sample: if split.is_some() { DISCOVERY } else { ALL }.to_string(),
                },
                Some(factor_seed),
            );
            b.wire(dataset, "dataset", node, "dataset");
            if let Some(split) = split {
                b.wire(split, "split", node, "split");
            }
            for (output, file) in [
                ("loadings", "loadings.tsv"),
                ("phi", "phi.tsv"),
                ("weights", "weights.tsv"),
                ("scores", "scores.tsv"),
                ("fit", "fit.json"),
            ] {
                b.publish(node, output, format!("factors/{file}"));
            }
            node
        }
        _ => dataset,
    };

    if let (Some(spec), Some(prediction)) = (&study.prediction, &resolved.prediction) {
        for outcome in &prediction.outcomes {
            let fold_seed = derive_seed(seed, &format!("prediction/folds/{outcome}"));
            let permutation_seed = derive_seed(seed, &format!("prediction/permutations/{outcome}"));
            let node = b.add(
                format!("predict/{outcome}"),
                Kind::Predict,
                stages::predict::Params {
                    outcome: outcome.clone(),
                    features: prediction.features.clone(),
                    confounds: prediction.confounds.clone(),
                    group_column: spec.group_column.clone(),
                    cpm: spec.models.contains(&crate::spec::PredictionModel::Cpm),
                    cpm_p: spec.cpm_p,
                    ridge: spec.models.contains(&crate::spec::PredictionModel::Ridge),
                    alphas: spec.ridge_alphas.clone(),
                    folds: spec.folds,
                    repeats: spec.repeats,
                    fold_seed,
                    permutations: spec.permutations,
                    permutation_seed,
                    ci_level: spec.ci_level,
                    split: split.is_some(),
                },
                Some(fold_seed ^ permutation_seed),
            );
            b.wire(analysis, "dataset", node, "dataset");
            if let Some(split) = split {
                b.wire(split, "split", node, "split");
            }
            b.publish(node, "metrics", format!("prediction/{outcome}_metrics.tsv"));
            b.publish(node, "edges", format!("prediction/{outcome}_edges.tsv"));
            b.publish(node, "predictions", format!("prediction/{outcome}_predictions.tsv"));
        }
    }

    for g in &resolved.groups {
        let spec = &study.group[&g.name];
        let group_seed = derive_seed(seed, &format!("group/{}", g.name));
        let node = b.add(
            format!("group/{}", g.name),
            Kind::Group,
            stages::group::Params {
                name: g.name.clone(),
                design: spec.design,
                level: g.level.clone(),
                sessions: g.sessions.clone(),
                group: spec.group.clone(),
                variable: spec.variable.clone(),
                covariates: spec.covariates.clone(),
                permutations: spec.permutations,
                seed: group_seed,
                tail: spec.tail,
                cluster_t: spec.cluster_t,
                cluster_p: spec.cluster_p,
                connectivity: spec.connectivity,
                peak_labels: g.peak_atlas.as_ref().map(|a| a.2.clone()).unwrap_or_default(),
            },
            Some(group_seed),
        );
        b.wire(dataset, "dataset", node, "dataset");
        if let stages::group::Level::Voxel { .. } = g.level {
            wire_seed_maps(&mut b, resolved, &run_nodes, &g.sessions, node);
            if let Some((path, written, _)) = &g.peak_atlas {
                b.graph[node]
                    .inputs
                    .push(("peak_atlas".into(), Source::Path { path: path.clone(), written: written.clone() }));
            }
            b.publish(node, "tmap", format!("group/{}_stat-t.nii.gz", g.name));
            b.publish(node, "pfwe", format!("group/{}_stat-pfwe.nii.gz", g.name));
            b.publish(node, "clusters", format!("group/{}_clusters.tsv", g.name));
        } else {
            b.publish(node, "results", format!("group/{}_edges.tsv", g.name));
        }
        b.publish(node, "summary", format!("group/{}_summary.json", g.name));
    }
    for (name, source) in &resolved.rocs {
        let spec = &study.roc[name];
        let roc_seed = derive_seed(seed, &format!("roc/{name}"));
        let (value, selected_by, cluster) = match source {
            RocSource::Column { value, selected } => (Some(value.clone()), selected.clone(), None),
            RocSource::Cluster(group) => {
                let g = &study.group[&group.name];
                let stages::group::Level::Voxel { seed: index, .. } = group.level else {
                    unreachable!("checked: cluster_of names a voxelwise analysis")
                };
                let choice = stages::roc::ClusterChoice {
                    group: group.name.clone(),
                    seed: index,
                    session: group.sessions[0].clone(),
                    group_column: g.group.clone().expect("checked: a two-sample design has `group`"),
                    covariates: g.covariates.clone(),
                    tail: g.tail,
                    cluster_t: g.cluster_t,
                    cluster_p: g.cluster_p,
                    connectivity: g.connectivity,
                };
                (None, None, Some(choice))
            }
        };
        let node = b.add(
            format!("roc/{name}"),
            Kind::Roc,
            stages::roc::Params {
                value,
                label: spec.label.clone(),
                selected_by,
                cluster,
                folds: spec.folds,
                bootstrap: spec.bootstrap,
                permutations: spec.permutations,
                ci_level: spec.ci_level,
                seed: roc_seed,
            },
            Some(roc_seed),
        );
        b.wire(dataset, "dataset", node, "dataset");
        if let RocSource::Cluster(group) = source {
            wire_seed_maps(&mut b, resolved, &run_nodes, &group.sessions, node);
        }
        b.publish(node, "auc", format!("roc/{name}.tsv"));
    }

    let Some(association) = &study.association else {
        return finish(loaded, b);
    };
    let mut results = Vec::new();
    for part in &parts {
        let permutation_seed = derive_seed(seed, &format!("permutations/{part}"));
        let bootstrap_seed = derive_seed(seed, &format!("bootstrap/{part}"));
        let fdr = b.add(
            format!("fdr/{part}"),
            Kind::Fdr,
            stages::fdr::Params {
                part: part.to_string(),
                outcomes: resolved.outcomes.clone(),
                q: association.fdr.q,
                families: association.fdr.families.clone(),
                p: association.fdr.p,
            },
            None,
        );
        for outcome in &resolved.outcomes {
            let node = b.add(
                format!("associate/{outcome}/{part}"),
                Kind::Associate,
                stages::associate::Params {
                    outcome: outcome.clone(),
                    part: part.to_string(),
                    features: resolved.features.clone(),
                    covariates: resolved.covariates.clone(),
                    permutations: association.permutations,
                    permutation_scheme: association.permutation_scheme,
                    permutation_seed,
                    bootstrap: association.bootstrap,
                    bootstrap_seed,
                    ci_level: association.ci_level,
                },
                Some(permutation_seed),
            );
            b.wire(analysis, "dataset", node, "dataset");
            if let Some(split) = split {
                b.wire(split, "split", node, "split");
            }
            b.wire(node, "stats", fdr, format!("stats:{outcome}"));
        }
        b.publish(fdr, "results", format!("association/{part}.tsv"));
        results.push(fdr);
    }
    if split.is_some() {
        let node = b.add(
            "replicate",
            Kind::Replicate,
            stages::replicate::Params {
                alpha: association.replication.alpha,
                correction: association.replication.correction,
                families: association.fdr.families.clone(),
            },
            None,
        );
        b.wire(results[0], "results", node, "discovery");
        b.wire(results[1], "results", node, "held_out");
        b.publish(node, "replication", "replication.tsv");
        b.publish(node, "summary", "replication_summary.json");
    }
    finish(loaded, b)
}

/// Wire the seed maps of every run in `sessions` (`maps:KEY`) and the mask into `node`.
fn wire_seed_maps(
    b: &mut Builder,
    resolved: &Resolved,
    run_nodes: &[(String, NodeIndex)],
    sessions: &[Option<String>],
    node: NodeIndex,
) {
    for (key, run_node) in run_nodes {
        let session = key.split_once('/').map(|(_, s)| s.to_string());
        if sessions.contains(&session) {
            b.wire(*run_node, "seedmaps", node, format!("maps:{key}"));
        }
    }
    if let Some((_, path, written)) = resolved.imaging.as_ref().and_then(|im| im.seed_maps.as_ref()) {
        b.graph[node].inputs.push(("mask".into(), Source::Path { path: path.clone(), written: written.clone() }));
    }
}

/// The table columns (and scores) a column stands for: itself, or for a derived variable every
/// column its expression reads, recursively.
fn source_columns(resolved: &Resolved, column: &str) -> Vec<String> {
    match resolved.derived.iter().find(|(c, _)| c.name == column) {
        Some((c, _)) => c.expr.columns().iter().flat_map(|u| source_columns(resolved, u)).collect(),
        None => vec![column.to_string()],
    }
}

fn finish(loaded: &LoadedStudy, b: Builder) -> Plan {
    let graph = b.graph;
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
        output_dir: loaded.output_dir(),
        study_hash: loaded.hash.clone(),
        study_name: loaded.study.study.name.clone(),
    }
}
