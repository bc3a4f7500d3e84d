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

pub fn check_data(plan: &Plan) -> Result<()> {
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
        let output_of = |input: &str| {
            node.inputs.iter().find(|(name, _)| name == input).and_then(|(_, source)| match source {
                Source::Stage { node: upstream, output } => produced.get(upstream).and_then(|o| o.get(output)),
                _ => None,
            })
        };
        let Some(Ok(dataset)) = output_of("dataset").map(|b| crate::tables::decode(b)) else { continue };
        let split = match output_of("split") {
            Some(bytes) => Some(SplitAssignment::parse(&String::from_utf8_lossy(bytes))?),
            None => None,
        };
        let n = SplitAssignment::rows(split.as_ref(), &dataset.ids, params.part).len();
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
    if problems.is_empty() { Ok(()) } else { Err(Error::Problems(problems)) }
}
