//! One function per stage kind: each adds its nodes with exactly the parameters the stage reads,
//! wires their inputs to the outputs of earlier nodes, and names the outputs that are published.
//! [`build`] calls them in the order of the pipeline:
//!
//! `simulate` → `imaging/sub-*` → `connectome` → `table/*` → `scores` → `dataset` → `split` →
//! `factors` → `predict/*` → `group/*` → `roc/*` → `associate/*/*` + `fdr/*` → `replicate`.
//!
//! Node insertion order decides ties in the topological order (and so the lock file's order):
//! keep it when changing a function here.
//!
//! One file because the functions share the `Builder` and read one `Resolved`: the wiring of
//! the whole pipeline reads top to bottom in one place.

use super::{Node, Source};
use crate::design::{Level, Sample};
use crate::spec::check::{Resolved, ResolvedImaging, RocSource, TableSource};
use crate::spec::{PredictionModel, SplitMethod};
use crate::stages::{self, Kind};
use crate::stats::rng::derive_seed;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The graph under construction, and the study it comes from.
struct Builder<'a> {
    graph: DiGraph<Node, String>,
    resolved: &'a Resolved,
}

impl Builder<'_> {
    fn add(&mut self, id: impl Into<String>, kind: Kind, params: impl Serialize, seed: Option<u64>) -> NodeIndex {
        let params = serde_json::to_value(params).expect("stage parameters serialise");
        self.graph.add_node(Node { id: id.into(), kind, params, seed, inputs: Vec::new(), publish: Vec::new() })
    }

    /// Feed output `output` of `from` to `to` as input `input`. Both names must be declared by
    /// their stage kinds (`stages::Kind::outputs` / `inputs`).
    fn wire(&mut self, from: NodeIndex, output: &str, to: NodeIndex, input: impl Into<String>) {
        let input = input.into();
        debug_assert!(
            self.graph[from].kind.declares_output(output),
            "{output} is not an output of {:?}",
            self.graph[from].kind
        );
        debug_assert!(
            self.graph[to].kind.declares_input(&input),
            "{input} is not an input of {:?}",
            self.graph[to].kind
        );
        self.graph[to].inputs.push((input, Source::Stage { node: from, output: output.to_string() }));
        self.graph.add_edge(from, to, output.to_string());
    }

    /// Hand a file to `node` by path (streamed by the stage, fingerprinted by content).
    fn path(&mut self, node: NodeIndex, input: impl Into<String>, path: &Path, written: &str) {
        let input = input.into();
        debug_assert!(
            self.graph[node].kind.declares_input(&input),
            "{input} is not an input of {:?}",
            self.graph[node].kind
        );
        self.graph[node].inputs.push((input, Source::Path { path: path.to_path_buf(), written: written.to_string() }));
    }

    fn publish(&mut self, node: NodeIndex, output: &str, path: impl Into<String>) {
        debug_assert!(
            self.graph[node].kind.declares_output(output),
            "{output} is not an output of {:?}",
            self.graph[node].kind
        );
        self.graph[node].publish.push((output.to_string(), path.into()));
    }

    /// The seed of a stage's random stream: derived from the study seed and a label.
    fn seed(&self, label: &str) -> u64 {
        derive_seed(self.resolved.study.seed, label)
    }
}

/// Runs wired into the connectome, keyed `SUBJECT` or `SUBJECT/SESSION`.
type RunNodes = Vec<(String, NodeIndex)>;

pub(super) fn build(resolved: &Resolved) -> DiGraph<Node, String> {
    let mut b = Builder { graph: DiGraph::new(), resolved };
    let simulate = simulate(&mut b);
    let (runs, connectome) = match &resolved.imaging {
        Some(im) => {
            let (runs, connectome) = imaging(&mut b, im);
            (runs, Some(connectome))
        }
        None => (Vec::new(), None),
    };
    let tables = tables(&mut b, simulate, connectome);
    let scores = scores(&mut b, &tables);
    if !resolved.has_models() {
        return b.graph;
    }
    let dataset = dataset(&mut b, &tables, scores);
    let split = split(&mut b, dataset);
    let analysis = factors(&mut b, dataset, split).unwrap_or(dataset);
    predictions(&mut b, analysis, split);
    groups(&mut b, dataset, &runs);
    rocs(&mut b, dataset, &runs);
    association(&mut b, analysis, split);
    b.graph
}

/// The simulator, for presets whose tables are made inside the DAG.
fn simulate(b: &mut Builder<'_>) -> Option<NodeIndex> {
    let sim = b.resolved.simulation.as_ref()?;
    let seed = sim.seed.unwrap_or_else(|| b.seed("simulate"));
    let params = stages::simulate::Params { preset: sim.preset, subjects: sim.subjects, seed };
    let node = b.add("simulate", Kind::Simulate, params, Some(seed));
    b.publish(node, "truth", "simulation/truth.tsv");
    Some(node)
}

/// One node per subject's run (per session), gathered into the connectome table.
fn imaging(b: &mut Builder<'_>, im: &ResolvedImaging) -> (RunNodes, NodeIndex) {
    let mut subjects: Vec<String> = Vec::new();
    for run in &im.runs {
        if !subjects.contains(&run.subject) {
            subjects.push(run.subject.clone());
        }
    }
    // Keys of runs: `SUBJECT[/SESSION]`, with `:run-N` when a subject (and session) has several.
    let base_key = |run: &crate::imaging::discover::Run| match (&run.session, im.sessions.is_empty()) {
        (Some(session), false) => format!("{}/{session}", run.subject),
        _ => run.subject.clone(),
    };
    // Without declared sessions, runs of every session are pooled: the session is part of the tag.
    let tag = |run: &crate::imaging::discover::Run| match (&run.session, im.sessions.is_empty()) {
        (Some(s), true) => format!("ses-{s}_run-{}", run.run.as_deref().unwrap_or("1")),
        _ => format!("run-{}", run.run.as_deref().unwrap_or("1")),
    };
    let mut per_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in &im.runs {
        per_key.entry(base_key(run)).or_default().push(tag(run));
    }
    per_key.retain(|_, runs| runs.len() > 1);
    let run_key = |run: &crate::imaging::discover::Run| {
        let key = base_key(run);
        if per_key.contains_key(&key) { format!("{key}:{}", tag(run)) } else { key }
    };
    let params = stages::connectome::Params {
        subjects,
        runs: per_key.iter().map(|(k, v)| (k.clone(), v.iter().map(|r| format!("{k}:{r}")).collect())).collect(),
        sessions: im.sessions.clone(),
        fisher_z: im.fisher_z,
        edges: im.edges.iter().map(|(a, c)| crate::design::edge_column(a, c)).collect(),
        without_runs: im.excluded.clone(),
    };
    let connectome = b.add("connectome", Kind::Connectome, params, None);
    b.publish(connectome, "tsv", "connectome.tsv");
    b.publish(connectome, "summary", "imaging_runs.tsv");
    let atlas = crate::design::bids_label(im.sets.iter().map(|(name, _)| name.as_str()));
    let mut runs = Vec::new();
    for (index, run) in im.runs.iter().enumerate() {
        // The first run on each distinct BOLD grid publishes that grid's regions and reference.
        let grid_reference = !im.grids[..index].contains(&im.grids[index]);
        let key = run_key(run);
        // Runs of several sessions pooled into one subject keep their session folder.
        let pooled = im.runs.iter().filter(|r| r.subject == run.subject).count() > 1;
        let (mut id, folder) = match &run.session {
            Some(session) if !im.sessions.is_empty() || pooled => (
                format!("imaging/sub-{}/ses-{session}", run.subject),
                format!("sub-{}/ses-{session}/func", run.subject),
            ),
            _ => (format!("imaging/sub-{}", run.subject), format!("sub-{}/func", run.subject)),
        };
        if let Some(label) = &run.run
            && key.contains(':')
        {
            id = format!("{id}/run-{label}");
        }
        let params = stages::imaging_run::Params {
            subject: run.subject.clone(),
            sets: im.sets.clone(),
            denoise: im.denoise.clone(),
            tr: run.tr,
            edges: im.edges.clone(),
            fisher_z: im.fisher_z,
            seed_maps: im.seed_maps.as_ref().map(|m| m.0.clone()).unwrap_or_default(),
            reference: grid_reference,
        };
        let node = b.add(id, Kind::ImagingRun, params, None);
        let study_dir = b.resolved.study.dir.clone();
        let written = |p: &Path| p.strip_prefix(&study_dir).unwrap_or(p).to_string_lossy().replace('\\', "/");
        b.path(node, "bold", &run.bold, &written(&run.bold));
        if let Some(c) = &run.confounds {
            b.path(node, "confounds", c, &written(c));
        }
        if let Some((_, path, as_written)) = &im.seed_maps {
            b.path(node, "seedmask", path, as_written);
        }
        for (input, path, as_written) in &im.region_files {
            b.path(node, input.clone(), path, as_written);
        }
        // BIDS derivative names: the input's entities, `space-` from the BOLD file, `atlas-`
        // named after the study's region sets, then `meas-`/`desc-` and the suffix. The edge list
        // stays internal (the connectome table holds it); BEP017's square matrix is published.
        let space = run.entity("space").map(|s| format!("_space-{s}")).unwrap_or_default();
        let stem = format!("{folder}/{}{space}_atlas-{atlas}", run.prefix);
        b.publish(node, "series", format!("{stem}_timeseries.tsv"));
        b.publish(node, "series_json", format!("{stem}_timeseries.json"));
        b.publish(node, "relmat", format!("{stem}_meas-pearsoncorrelation_relmat.tsv"));
        b.publish(node, "relmat_json", format!("{stem}_meas-pearsoncorrelation_relmat.json"));
        // The study's edges of this run (Fisher z as the connectome averages them), which the
        // report's QC-FC reads per run; the relmat above is the BEP017 view of all regions.
        b.publish(node, "edges", format!("{stem}_desc-edges_connectivity.tsv"));
        b.publish(node, "report", format!("{folder}/{}{space}_desc-extraction_report.json", run.prefix));
        b.publish(node, "motion", format!("{folder}/{}_desc-motion_timeseries.tsv", run.prefix));
        if grid_reference {
            // The regions resampled to the BOLD grid and the grid's reference image (the run's
            // mean volume), published once per distinct grid (every run computes the regions).
            b.publish(node, "regions", format!("{stem}_dseg.tsv"));
            b.publish(node, "labels", format!("{stem}_dseg.nii.gz"));
            b.publish(node, "boldref", format!("{folder}/{}{space}_desc-mean_boldref.nii.gz", run.prefix));
        }
        for seed in im.seed_maps.iter().flat_map(|m| &m.0) {
            let map = format!("{folder}/{}{space}_seed-{}_desc-fisherz_map.nii.gz", run.prefix, seed.replace('_', ""));
            b.publish(node, &format!("map:{seed}"), map);
        }
        b.wire(node, "edges", connectome, format!("edges:{key}"));
        b.wire(node, "report", connectome, format!("report:{key}"));
        runs.push((key, node));
    }
    (runs, connectome)
}

/// One node per table: read from a file, taken from the simulator, or the connectome.
fn tables(
    b: &mut Builder<'_>,
    simulate: Option<NodeIndex>,
    connectome: Option<NodeIndex>,
) -> BTreeMap<String, NodeIndex> {
    let mut nodes = BTreeMap::new();
    for table in &b.resolved.tables {
        let (format, origin) = match &table.source {
            TableSource::File { written, format, .. } => (Some(*format), written.clone()),
            TableSource::Simulated { name } => (None, format!("simulated:{name}")),
            TableSource::Imaging => (None, "imaging:connectome".to_string()),
        };
        let params = stages::load_table::Params {
            origin,
            format,
            id_column: table.id_column.clone(),
            missing_values: table.missing_values.clone(),
        };
        let node = b.add(format!("table/{}", table.name), Kind::LoadTable, params, None);
        // `check` guarantees a simulated table has a simulator and the connectome imaging; were
        // either missing, the stage would fail naming its missing input.
        match (&table.source, simulate, connectome) {
            (TableSource::File { path, written, .. }, _, _) => b.graph[node]
                .inputs
                .push(("file".into(), Source::File { path: path.clone(), written: written.clone() })),
            (TableSource::Simulated { name }, Some(sim), _) => b.wire(sim, name, node, "table"),
            (TableSource::Imaging, _, Some(connectome)) => b.wire(connectome, "table", node, "table"),
            _ => {}
        }
        nodes.insert(table.name.clone(), node);
    }
    nodes
}

/// The table a column (or score item) lives in.
fn table_of(resolved: &Resolved, column: &str) -> Option<String> {
    resolved.column_table.get(column).cloned()
}

/// Questionnaire scores, from the tables that hold their items.
fn scores(b: &mut Builder<'_>, tables: &BTreeMap<String, NodeIndex>) -> Option<NodeIndex> {
    let resolved = b.resolved;
    if resolved.scores.is_empty() {
        return None;
    }
    let mut needed: Vec<String> = resolved
        .scores
        .iter()
        .flat_map(|s| s.visits.iter().flat_map(|(_, items)| items.iter().filter_map(|i| table_of(resolved, i))))
        .collect();
    needed.sort();
    needed.dedup();
    let params = stages::scores::Params { scores: resolved.scores.clone(), tables: needed.clone() };
    let node = b.add("scores", Kind::Scores, params, None);
    for t in &needed {
        b.wire(tables[t], "table", node, format!("table:{t}"));
    }
    b.publish(node, "scores", "scores.tsv");
    b.publish(node, "report", "scoring_report.tsv");
    Some(node)
}

/// Append `column` to `list` unless it is there already.
fn push(list: &mut Vec<String>, column: &str) {
    if !list.iter().any(|x| x == column) {
        list.push(column.to_string());
    }
}

/// The dataset's parameters: every column the models read, by role.
fn dataset_params(resolved: &Resolved) -> stages::dataset::Params {
    let is_factor = |c: &str| resolved.factors.as_ref().is_some_and(|f| f.provides(c));
    let association = resolved.association.as_ref();
    let (mut outcomes, mut covariates, mut complete_cases, mut carry) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut features: Vec<String> = association.iter().flat_map(|a| &a.features).map(|(_, c)| c.clone()).collect();
    complete_cases.extend(resolved.complete_cases.iter().cloned());
    let prediction = resolved.prediction.as_ref();
    for o in association.iter().flat_map(|a| &a.outcomes).chain(prediction.iter().flat_map(|p| &p.outcomes)) {
        if !is_factor(o) {
            push(&mut outcomes, o);
        }
    }
    for term in association.iter().flat_map(|a| &a.covariates) {
        for col in term.columns() {
            push(&mut covariates, col);
        }
    }
    if let Some(prediction) = prediction {
        for c in prediction.confounds.iter().flat_map(|c| base_columns(c)) {
            push(&mut covariates, &c);
        }
        prediction.features.iter().for_each(|c| push(&mut features, c));
    }
    for c in resolved.factors.iter().flat_map(|f| &f.items) {
        push(&mut complete_cases, c);
    }
    for c in resolved.groups.iter().flat_map(|g| &g.columns) {
        push(&mut complete_cases, c);
    }
    for roc in &resolved.rocs {
        push(&mut complete_cases, &roc.settings.label);
        match &roc.source {
            RocSource::Column { value, selected } => {
                push(&mut complete_cases, value);
                if let Some(s) = selected {
                    for c in s.candidates.iter().chain([&s.group_column]) {
                        push(&mut complete_cases, c);
                    }
                    for c in s.covariates.iter().flat_map(|c| base_columns(c)) {
                        push(&mut complete_cases, &c);
                    }
                }
            }
            RocSource::Cluster { columns, .. } => columns.iter().for_each(|c| push(&mut complete_cases, c)),
        }
    }
    if let Some(c) = resolved.split.as_ref().filter(|s| s.method != SplitMethod::Random).and_then(|s| s.column.as_ref())
    {
        push(&mut carry, c);
    }
    if let Some(g) = prediction.and_then(|p| p.settings.group_column.as_ref()) {
        push(&mut carry, g);
    }
    for c in &resolved.block_columns {
        push(&mut carry, c);
    }
    stages::dataset::Params {
        derived: resolved.derived.iter().map(|(c, policy)| (c.name.clone(), c.text.clone(), *policy)).collect(),
        outcomes,
        covariates,
        features,
        complete_cases,
        iqr: resolved.iqr.clone(),
        carry,
        categorical: resolved.categorical.clone(),
        tables: Vec::new(),
    }
}

/// Whether a covariate as written is categorical (`C(site)`).
fn is_categorical(text: &str) -> bool {
    crate::spec::terms::Term::parse(text).is_ok_and(|t| t.categorical().is_some())
}

/// The base columns of a covariate as written (`age`, `C(site)`; checked already).
fn base_columns(text: &str) -> Vec<String> {
    match crate::spec::terms::Term::parse(text) {
        Ok(term) => term.columns().into_iter().map(String::from).collect(),
        Err(_) => vec![text.to_string()],
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

/// The analysis dataset: every column the models read, complete cases, IQR outliers.
fn dataset(b: &mut Builder<'_>, tables: &BTreeMap<String, NodeIndex>, scores: Option<NodeIndex>) -> NodeIndex {
    let resolved = b.resolved;
    let params = dataset_params(resolved);
    let mut needed: Vec<String> = params
        .covariates
        .iter()
        .chain(&params.features)
        .chain(&params.outcomes)
        .chain(&params.complete_cases)
        .chain(params.iqr.iter().flat_map(|(c, _)| c))
        .chain(&params.carry)
        .flat_map(|c| source_columns(resolved, c))
        .filter_map(|c| table_of(resolved, &c))
        .collect();
    needed.sort();
    needed.dedup();
    let params = stages::dataset::Params { tables: needed.clone(), ..params };
    let node = b.add("dataset", Kind::Dataset, params, None);
    if let Some(scores) = scores {
        b.wire(scores, "scores", node, "scores");
    }
    for t in &needed {
        b.wire(tables[t], "table", node, format!("table:{t}"));
    }
    b.publish(node, "exclusions", "exclusions.tsv");
    b.publish(node, "summary", "exclusion_summary.tsv");
    node
}

/// The discovery / held-out split.
fn split(b: &mut Builder<'_>, dataset: NodeIndex) -> Option<NodeIndex> {
    let spec = b.resolved.split.as_ref()?;
    let seed = (spec.method != SplitMethod::Column).then(|| spec.seed.unwrap_or_else(|| b.seed("split")));
    let params = stages::split::Params {
        method: spec.method,
        held_out_fraction: spec.held_out_fraction,
        column: spec.column.clone(),
        held_out_values: spec.held_out_values.clone(),
        seed,
    };
    let node = b.add("split", Kind::Split, params, seed);
    b.wire(dataset, "dataset", node, "dataset");
    b.publish(node, "split", "split.tsv");
    Some(node)
}

/// The factor model, fitted on discovery; its scores join the dataset it returns.
fn factors(b: &mut Builder<'_>, dataset: NodeIndex, split: Option<NodeIndex>) -> Option<NodeIndex> {
    let f = b.resolved.factors.as_ref()?;
    let spec = &f.settings;
    let seed = b.seed("factors");
    let params = stages::factors::Params {
        items: f.items.clone(),
        count: spec.count,
        method: spec.method,
        rotation: spec.rotation,
        gamma: spec.rotation.uses_gamma().then_some(spec.gamma),
        target: f.target.clone(),
        scores: spec.scores,
        parallel_simulations: spec.parallel_simulations,
        seed,
        names: f.names.clone(),
        fit_sample: Sample::fit(split.is_some()),
    };
    let node = b.add("factors", Kind::Factors, params, Some(seed));
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
    Some(node)
}

/// One prediction per outcome: cross-validated in discovery, applied once to held-out.
fn predictions(b: &mut Builder<'_>, analysis: NodeIndex, split: Option<NodeIndex>) {
    let Some(prediction) = &b.resolved.prediction else { return };
    let spec = &prediction.settings;
    for outcome in &prediction.outcomes {
        let fold_seed = b.seed(&format!("prediction/folds/{outcome}"));
        let permutation_seed = b.seed(&format!("prediction/permutations/{outcome}"));
        let params = stages::predict::Params {
            outcome: outcome.clone(),
            features: prediction.features.clone(),
            confounds: prediction.confounds.clone(),
            group_column: spec.group_column.clone(),
            cpm: spec.models.contains(&PredictionModel::Cpm),
            cpm_p: spec.cpm_p,
            ridge: spec.models.contains(&PredictionModel::Ridge),
            alphas: spec.ridge_alphas.clone(),
            folds: spec.folds,
            repeats: spec.repeats,
            fold_seed,
            permutations: spec.permutations,
            permutation_seed,
            blocks: spec.permutation_blocks.clone().map(|c| (c, spec.block_permutation)),
            ci_level: spec.ci_level,
            fit_sample: Sample::fit(split.is_some()),
        };
        let node = b.add(format!("predict/{outcome}"), Kind::Predict, params, Some(fold_seed ^ permutation_seed));
        if prediction.confounds.iter().any(|c| is_categorical(c)) {
            b.publish(node, "levels", format!("prediction/{outcome}_covariate_levels.tsv"));
        }
        b.wire(analysis, "dataset", node, "dataset");
        if let Some(split) = split {
            b.wire(split, "split", node, "split");
        }
        b.publish(node, "metrics", format!("prediction/{outcome}_metrics.tsv"));
        b.publish(node, "edges", format!("prediction/{outcome}_edges.tsv"));
        b.publish(node, "predictions", format!("prediction/{outcome}_predictions.tsv"));
        b.publish(node, "repeats", format!("prediction/{outcome}_repeats.tsv"));
        b.publish(node, "null", format!("prediction/{outcome}_null.tsv"));
    }
}

/// Group-level analyses of seed maps (voxelwise) or connectome edges.
fn groups(b: &mut Builder<'_>, dataset: NodeIndex, runs: &RunNodes) {
    for g in &b.resolved.groups {
        let spec = &g.settings;
        let seed = b.seed(&format!("group/{}", g.name));
        let params = stages::group::Params {
            name: g.name.clone(),
            design: spec.design,
            level: g.level.clone(),
            sessions: g.sessions.clone(),
            group: spec.group.clone(),
            variable: spec.variable.clone(),
            covariates: spec.covariates.clone(),
            permutations: spec.permutations,
            seed,
            tail: spec.tail,
            cluster_t: spec.cluster_t,
            cluster_p: spec.cluster_p,
            connectivity: spec.connectivity,
            blocks: spec.permutation_blocks.clone().map(|c| (c, spec.block_permutation)),
            peak_labels: g.peak_atlas.as_ref().map(|a| a.2.clone()).unwrap_or_default(),
            tfce: spec.tfce.then_some(crate::stats::tfce::TfceParams {
                e: spec.tfce_e,
                h: spec.tfce_h,
                steps: spec.tfce_steps,
            }),
            nbs: spec.nbs.as_ref().zip(g.edge_endpoints.as_ref()).map(|(nbs, endpoints)| stages::group::NbsParams {
                threshold_t: nbs.threshold_t,
                threshold_p: nbs.threshold_p,
                statistic: nbs.statistic,
                endpoints: endpoints.clone(),
            }),
        };
        let node = b.add(format!("group/{}", g.name), Kind::Group, params, Some(seed));
        if spec.covariates.iter().any(|c| is_categorical(c)) {
            b.publish(node, "levels", format!("group/{}_covariate_levels.tsv", g.name));
        }
        b.wire(dataset, "dataset", node, "dataset");
        if let Level::Voxel { .. } = g.level {
            seed_maps(b, runs, &g.sessions, node);
            if let Some((path, written, _)) = &g.peak_atlas {
                b.path(node, "peak_atlas", path, written);
            }
            b.publish(node, "tmap", format!("group/{}_stat-t.nii.gz", g.name));
            b.publish(node, "pfwe", format!("group/{}_stat-pfwe.nii.gz", g.name));
            b.publish(node, "clusters", format!("group/{}_clusters.tsv", g.name));
            if spec.tfce {
                b.publish(node, "tfce", format!("group/{}_stat-tfce.nii.gz", g.name));
                b.publish(node, "tfcepfwe", format!("group/{}_stat-tfcepfwe.nii.gz", g.name));
            }
        } else {
            b.publish(node, "results", format!("group/{}_edges.tsv", g.name));
            if spec.nbs.is_some() {
                b.publish(node, "components", format!("group/{}_components.tsv", g.name));
            }
        }
        b.publish(node, "summary", format!("group/{}_summary.json", g.name));
    }
}

/// ROC analyses of a column, or of a voxelwise analysis' largest cluster.
fn rocs(b: &mut Builder<'_>, dataset: NodeIndex, runs: &RunNodes) {
    for roc in &b.resolved.rocs {
        let spec = &roc.settings;
        let seed = b.seed(&format!("roc/{}", roc.name));
        let (value, selected_by, cluster) = match &roc.source {
            RocSource::Column { value, selected } => (Some(value.clone()), selected.clone(), None),
            RocSource::Cluster { choice, .. } => (None, None, Some(choice.clone())),
        };
        let params = stages::roc::Params {
            value,
            label: spec.label.clone(),
            selected_by,
            cluster,
            folds: spec.folds,
            bootstrap: spec.bootstrap,
            permutations: spec.permutations,
            ci_level: spec.ci_level,
            seed,
            blocks: spec.permutation_blocks.clone().map(|c| (c, spec.block_permutation)),
        };
        let node = b.add(format!("roc/{}", roc.name), Kind::Roc, params, Some(seed));
        b.wire(dataset, "dataset", node, "dataset");
        if let RocSource::Cluster { sessions, .. } = &roc.source {
            seed_maps(b, runs, sessions, node);
        }
        b.publish(node, "auc", format!("roc/{}.tsv", roc.name));
        b.publish(node, "scores", format!("roc/{}_scores.tsv", roc.name));
    }
}

/// Wire the seed maps of every run in `sessions` (`maps:KEY`) and the mask into `node`.
fn seed_maps(b: &mut Builder<'_>, runs: &RunNodes, sessions: &[Option<String>], node: NodeIndex) {
    for (key, run) in runs {
        let session = key.split_once('/').map(|(_, s)| s.to_string());
        if sessions.contains(&session) {
            b.wire(*run, "seedmaps", node, format!("maps:{key}"));
        }
    }
    let mask: Option<(PathBuf, String)> =
        b.resolved.imaging.as_ref().and_then(|im| im.seed_maps.as_ref()).map(|(_, p, w)| (p.clone(), w.clone()));
    if let Some((path, written)) = mask {
        b.path(node, "mask", &path, &written);
    }
}

/// Per sample: one association per outcome, their FDR correction, and the replication of
/// discovery results in the held-out set.
fn association(b: &mut Builder<'_>, analysis: NodeIndex, split: Option<NodeIndex>) {
    let Some(association) = &b.resolved.association else { return };
    let settings = &association.settings;
    let mut results = Vec::new();
    for &part in Sample::parts(split.is_some()) {
        let permutation_seed = b.seed(&format!("permutations/{part}"));
        let bootstrap_seed = b.seed(&format!("bootstrap/{part}"));
        let params = stages::fdr::Params {
            part,
            outcomes: association.outcomes.clone(),
            q: settings.fdr.q,
            families: settings.fdr.families.clone(),
            p: settings.fdr.p,
        };
        let fdr = b.add(format!("fdr/{part}"), Kind::Fdr, params, None);
        let differences = (!association.differences.is_empty()).then(|| {
            let params = stages::differences::Params {
                part,
                pairs: association.differences.clone(),
                ci_level: settings.ci_level,
            };
            let node = b.add(format!("differences/{part}"), Kind::Differences, params, None);
            b.publish(node, "differences", format!("association/{part}_differences.tsv"));
            node
        });
        for outcome in &association.outcomes {
            let in_difference = association.differences.iter().any(|(a, c)| a == outcome || c == outcome);
            let params = stages::associate::Params {
                outcome: outcome.clone(),
                part,
                features: association.features.clone(),
                covariates: association.covariates.clone(),
                permutations: settings.permutations,
                permutation_scheme: settings.permutation_scheme,
                permutation_seed,
                blocks: settings.permutation_blocks.clone().map(|c| (c, settings.block_permutation)),
                bootstrap: settings.bootstrap,
                bootstrap_seed,
                ci_level: settings.ci_level,
                region_means: association.region_means.clone(),
                keep_bootstrap: in_difference,
            };
            let node = b.add(format!("associate/{outcome}/{part}"), Kind::Associate, params, Some(permutation_seed));
            if let (Some(differences), true) = (differences, in_difference) {
                b.wire(node, "stats", differences, format!("stats:{outcome}"));
                b.wire(node, "bootstrap", differences, format!("bootstrap:{outcome}"));
            }
            if !association.region_means.is_empty() {
                b.publish(node, "regions", format!("association/{part}_{outcome}_region_means.tsv"));
            }
            b.wire(analysis, "dataset", node, "dataset");
            if let Some(split) = split {
                b.wire(split, "split", node, "split");
            }
            b.wire(node, "stats", fdr, format!("stats:{outcome}"));
            // Every outcome of a sample has the same subjects, so the same coding.
            if outcome == &association.outcomes[0] && association.covariates.iter().any(|t| t.categorical().is_some()) {
                b.publish(node, "levels", format!("association/{part}_covariate_levels.tsv"));
            }
        }
        b.publish(fdr, "results", format!("association/{part}.tsv"));
        results.push(fdr);
    }
    if let [discovery, held_out] = results[..] {
        let params = stages::replicate::Params {
            alpha: settings.replication.alpha,
            correction: settings.replication.correction,
            families: settings.fdr.families.clone(),
        };
        let node = b.add("replicate", Kind::Replicate, params, None);
        b.wire(discovery, "results", node, "discovery");
        b.wire(held_out, "results", node, "held_out");
        b.publish(node, "replication", "replication.tsv");
        b.publish(node, "summary", "replication_summary.json");
    }
}
