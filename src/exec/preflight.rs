//! Data-level checks for `neurospec check`: run the cheap front of the pipeline (reading the
//! input files, scoring, exclusions, the split) in memory, through the same stage code as a run,
//! so that out-of-range items, duplicate ids, non-numeric cells and an empty split are reported
//! before any compute is scheduled. Nothing is cached. Stages that depend on simulated data are
//! skipped (the simulator cannot produce such errors).

use crate::design::SplitAssignment;
use crate::error::{Error, Result};
use crate::plan::{Plan, Source};
use crate::stages::{self, Context, Kind};
use std::collections::BTreeMap;

/// Run the checks; problems are an error, and what only deserves attention (e.g. subjects that
/// tables and imaging do not share) comes back as warnings.
pub fn check_data(plan: &Plan) -> Result<Vec<String>> {
    let mut produced: BTreeMap<petgraph::graph::NodeIndex, stages::Outputs> = BTreeMap::new();
    let mut problems = Vec::new();
    let no_progress = |_: u64, _: u64| {};
    for &i in &plan.order {
        let node = plan.node(i);
        if !matches!(node.kind, Kind::LoadTable | Kind::Scores | Kind::Dataset | Kind::Split) {
            continue;
        }
        let mut inputs = BTreeMap::new();
        let mut available = true;
        for (name, source) in &node.inputs {
            match source {
                Source::File { path, .. } => match std::fs::read(path) {
                    Ok(bytes) => {
                        inputs.insert(name.clone(), bytes);
                    }
                    Err(e) => {
                        problems.push(format!("{}: {e}", path.display()));
                        available = false;
                    }
                },
                Source::Path { .. } => available = false,
                Source::Stage { node: upstream, output } => match produced.get(upstream).and_then(|o| o.get(output)) {
                    Some(bytes) => {
                        inputs.insert(name.clone(), bytes.clone());
                    }
                    None => available = false,
                },
            }
        }
        if !available {
            continue;
        }
        let ctx =
            Context { stage: &node.id, params: &node.params, inputs, paths: BTreeMap::new(), progress: &no_progress };
        match stages::run_checked(node.kind, &ctx) {
            Ok(outputs) => {
                produced.insert(i, outputs);
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    // Every association sample must hold enough subjects for its model.
    for &i in &plan.order {
        let node = plan.node(i);
        if node.kind != Kind::Associate {
            continue;
        }
        let Ok(params) = serde_json::from_value::<stages::associate::Params>(node.params.clone()) else { continue };
        let Some((dataset, rows)) = sample_rows(node, &produced, params.part)? else { continue };
        let n = rows.len();
        // Categorical covariates: every level needs subjects in the sample.
        match stages::covariates::expand(&dataset, &params.covariates, &rows, params.part.name(), true) {
            Ok(expanded) if expanded.levels.is_empty() => {}
            Ok(expanded) => {
                let needed = crate::stats::association::min_subjects(expanded.names.len());
                if n < needed {
                    problems.push(format!(
                        "{}: the {} sample has {n} subjects after exclusions, but a model with {} covariate columns \
                         (categorical ones as indicators), an intercept and the feature needs at least {needed}",
                        node.id,
                        params.part,
                        expanded.names.len()
                    ));
                }
                continue;
            }
            Err(e) => {
                problems.push(format!("{}: {e}", node.id));
                continue;
            }
        }
        let needed = crate::stats::association::min_subjects(params.covariates.len());
        if n < needed {
            problems.push(format!(
                "{}: the {} sample has {n} subjects after exclusions, but a model with {} covariate terms, \
                 an intercept and the feature needs at least {needed}",
                node.id,
                params.part,
                params.covariates.len()
            ));
        }
    }
    model_checks(plan, &produced, &mut problems)?;
    let warnings = subject_overlap(plan, &produced, &mut problems);
    if problems.is_empty() { Ok(warnings) } else { Err(Error::Problems(problems)) }
}

/// A model node's analysis dataset (as the preflight produced it) and the rows of its sample;
/// `None` when the dataset was not produced here (e.g. it depends on imaging).
fn sample_rows(
    node: &crate::plan::Node,
    produced: &BTreeMap<petgraph::graph::NodeIndex, stages::Outputs>,
    sample: crate::design::Sample,
) -> Result<Option<(crate::tables::Table, Vec<usize>)>> {
    let output_of = |input: &str| {
        node.inputs.iter().find(|(name, _)| name == input).and_then(|(_, source)| match source {
            Source::Stage { node: upstream, output } => produced.get(upstream).and_then(|o| o.get(output)),
            _ => None,
        })
    };
    let Some(Ok(dataset)) = output_of("dataset").map(|b| crate::tables::decode(b)) else { return Ok(None) };
    let split = match output_of("split") {
        Some(bytes) => Some(SplitAssignment::parse(&String::from_utf8_lossy(bytes))?),
        None => None,
    };
    let rows = SplitAssignment::rows(split.as_ref(), &dataset.ids, sample);
    Ok(Some((dataset, rows)))
}

/// Per model node, on the subjects of its sample: a prediction's categorical confounds (each
/// level needs subjects in the training sample) and every permutation test's exchangeability
/// blocks (a subject without a label, or unequal blocks under `whole`). The dataset is decoded
/// once per node, and only when there is something to check.
fn model_checks(
    plan: &Plan,
    produced: &BTreeMap<petgraph::graph::NodeIndex, stages::Outputs>,
    problems: &mut Vec<String>,
) -> Result<()> {
    use crate::design::Sample;
    use crate::stats::exchange::BlockPermutation;
    for &i in &plan.order {
        let node = plan.node(i);
        if !matches!(node.kind, Kind::Associate | Kind::Predict | Kind::Roc | Kind::Group) {
            continue;
        }
        let blocks = node
            .params
            .get("blocks")
            .and_then(|b| serde_json::from_value::<Option<(String, BlockPermutation)>>(b.clone()).ok())
            .flatten();
        let categorical_confounds = match node.kind {
            Kind::Predict => serde_json::from_value::<stages::predict::Params>(node.params.clone())
                .ok()
                .and_then(|params| stages::covariates::parse(&params.confounds).ok())
                .filter(|terms| terms.iter().any(|t| t.categorical().is_some())),
            _ => None,
        };
        if blocks.is_none() && categorical_confounds.is_none() {
            continue;
        }
        let sample = ["part", "fit_sample"]
            .iter()
            .find_map(|k| node.params.get(*k).and_then(|v| serde_json::from_value::<Sample>(v.clone()).ok()))
            .unwrap_or(Sample::All);
        let Some((dataset, rows)) = sample_rows(node, produced, sample)? else { continue };
        if let Some(terms) = &categorical_confounds
            && let Err(e) = stages::covariates::expand(&dataset, terms, &rows, sample.name(), false)
        {
            problems.push(format!("{}: {e}", node.id));
        }
        if let Some(blocks) = &blocks
            && let Err(e) = stages::covariates::exchange(&dataset, Some(blocks), &rows)
        {
            problems.push(format!("{}: {e}", node.id));
        }
    }
    Ok(())
}

/// Tables against imaging: a table none of whose subjects has an imaging run is a problem (the
/// join would lose everyone); partial overlap is a warning with counts and the first ids of each
/// side. Ids are compared as subject labels (without `sub-`), as the dataset joins them.
fn subject_overlap(
    plan: &Plan,
    produced: &BTreeMap<petgraph::graph::NodeIndex, stages::Outputs>,
    problems: &mut Vec<String>,
) -> Vec<String> {
    use std::collections::BTreeSet;
    let imaging: BTreeSet<String> = plan
        .order
        .iter()
        .map(|&i| plan.node(i))
        .filter(|node| node.kind == Kind::ImagingRun)
        .filter_map(|node| node.params.get("subject").and_then(|s| s.as_str()).map(String::from))
        .collect();
    if imaging.is_empty() {
        return Vec::new();
    }
    let first = |ids: &mut dyn Iterator<Item = &String>| {
        let list: Vec<&String> = ids.collect();
        let shown: Vec<String> = list.iter().take(5).map(|s| format!("`{s}`")).collect();
        let more = if list.len() > 5 { format!(", … ({} in all)", list.len()) } else { String::new() };
        format!("{}{more}", shown.join(", "))
    };
    let mut warnings = Vec::new();
    for &i in &plan.order {
        let node = plan.node(i);
        if node.kind != Kind::LoadTable {
            continue;
        }
        let Some(Ok(table)) = produced.get(&i).and_then(|o| o.get("table")).map(|b| crate::tables::decode(b)) else {
            continue;
        };
        let ids: BTreeSet<String> = table.ids.iter().cloned().collect();
        let shared = ids.intersection(&imaging).count();
        if shared == 0 {
            problems.push(format!(
                "{}: none of its {} subjects has an imaging run ({} subjects have one), so the study would \
                 have no subject; table ids: {}; imaging subjects: {} (ids are compared without the `sub-` \
                 prefix; check the table's `id_column` and the id spelling)",
                table.origin,
                ids.len(),
                imaging.len(),
                first(&mut ids.iter()),
                first(&mut imaging.iter())
            ));
        } else if shared < ids.len() || shared < imaging.len() {
            warnings.push(format!(
                "warning: {}: {shared} of its {} subjects have an imaging run; {} have none ({}) and {} imaging \
                 subjects are not in it ({}); subjects missing from either side are excluded (`not_in_table`)",
                table.origin,
                ids.len(),
                ids.len() - shared,
                first(&mut ids.difference(&imaging)),
                imaging.len() - shared,
                first(&mut imaging.difference(&ids))
            ));
        }
    }
    warnings
}
