//! Exploratory factor analysis inside a study (see `behaviour::efa` for the method).
//!
//! The model — number of factors, loadings, Φ, score weights, and the item means and SDs used
//! to standardise — is fitted on the fit sample only (the discovery set, or everyone without a
//! split). Every subject's scores, held-out ones included, are computed with those discovery
//! means, SDs and weights, so nothing about the held-out people enters the model. Inputs:
//! `dataset` (complete items: the dataset stage excluded, and listed, anyone missing one) and
//! `split` unless the fit sample is everyone. Outputs: `dataset` (the input with one column per
//! factor appended), `loadings`, `phi`, `scores` (subject, sample, factors) and `fit` (JSON).

use super::{Context, Outputs};
use crate::behaviour::efa::{self, Count, Extraction, Request, Rotation, RotationParams, Scores, matrix_tsv};
use crate::design::{Sample, SplitAssignment};
use crate::error::{Error, Result};
use crate::spec::{FactorCount, FactorRule};
use crate::stats::dense::M;
use crate::tables::{Cell, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["dataset", "split"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["dataset", "loadings", "phi", "weights", "scores", "fit"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    /// Item columns, in order.
    pub items: Vec<String>,
    pub count: FactorCount,
    pub method: Extraction,
    pub rotation: Rotation,
    /// Oblimin γ; `None` for every other rotation (which ignores it, so it is not fingerprinted).
    pub gamma: Option<f64>,
    /// Target rotations' target: one row per item, `None` where unspecified; absent otherwise
    /// (so other rotations' fingerprints are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Vec<Vec<Option<f64>>>>,
    pub scores: Scores,
    pub parallel_simulations: usize,
    pub seed: u64,
    /// Factor column names; empty means F1..Fk.
    pub names: Vec<String>,
    /// The sample the model is fitted on (`discovery` or `all`).
    pub fit_sample: Sample,
}

pub fn request(p: &Params) -> Request {
    Request {
        count: match p.count {
            FactorCount::Fixed(k) => Count::Fixed(k),
            FactorCount::Rule(FactorRule::Parallel) => Count::Parallel,
            FactorCount::Rule(FactorRule::Map) => Count::Map,
        },
        method: p.method,
        rotation: p.rotation,
        rotation_params: RotationParams {
            gamma: p.gamma.unwrap_or(0.0),
            target: p.target.as_ref().map(|rows| {
                M::from_fn(rows.len(), rows.first().map_or(0, Vec::len), |i, j| rows[i][j].unwrap_or(f64::NAN))
            }),
            ..RotationParams::default()
        },
        scores: p.scores,
        simulations: p.parallel_simulations,
        seed: p.seed,
    }
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let mut dataset = ctx.table("dataset")?;
    let n_all = dataset.rows();
    let split = match p.fit_sample {
        Sample::All => None,
        _ => Some(SplitAssignment::parse(&ctx.text("split")?)?),
    };
    // Each subject's sample as written in the scores table (empty: not in the split).
    let sample: Vec<&str> = match &split {
        None => vec![Sample::All.name(); n_all],
        Some(s) => dataset.ids.iter().map(|id| s.of(id).map_or("", Sample::name)).collect(),
    };
    let n_items = p.items.len();
    let columns: Vec<&[f64]> = p.items.iter().map(|c| dataset.numeric(c)).collect::<Result<_>>()?;
    let values_of =
        |rows: &[usize]| -> Vec<f64> { rows.iter().flat_map(|&i| columns.iter().map(move |c| c[i])).collect() };
    let fit_rows = SplitAssignment::rows(split.as_ref(), &dataset.ids, p.fit_sample);
    let fit_values = values_of(&fit_rows);
    let analysis = efa::analyse(&fit_values, fit_rows.len(), n_items, &p.items, &request(&p)).map_err(|e| {
        Error::data(format!("{}: factor analysis of {} items in the {} sample: {e}", ctx.stage, n_items, p.fit_sample))
    })?;
    let k = analysis.k;
    let names: Vec<String> =
        if p.names.is_empty() { (1..=k).map(|f| format!("F{f}")).collect() } else { p.names.clone() };
    if names.len() != k {
        return Err(Error::data(format!(
            "{}: the factor model has {k} factors ({}) but [factors] names {} ({}); \
             set `count = {k}` or name {k} factors",
            ctx.stage,
            match p.count {
                FactorCount::Fixed(_) => "as requested".to_string(),
                FactorCount::Rule(FactorRule::Parallel) => "by parallel analysis".to_string(),
                FactorCount::Rule(FactorRule::Map) => "by Velicer's MAP".to_string(),
            },
            names.len(),
            names.join(", ")
        )));
    }
    for (j, sd) in analysis.sds.iter().enumerate() {
        if !(*sd > 0.0) {
            return Err(Error::data(format!("{}: item `{}` is constant in the fit sample", ctx.stage, p.items[j])));
        }
    }
    let all_rows: Vec<usize> = (0..n_all).collect();
    let scores: M = efa::standardise_with(&values_of(&all_rows), n_all, n_items, &analysis.means, &analysis.sds)
        .mul(&analysis.weights);

    let mut table = TsvWriter::new(
        &std::iter::once(crate::tables::PARTICIPANT_ID)
            .chain(["sample"])
            .chain(names.iter().map(String::as_str))
            .collect::<Vec<_>>(),
    );
    for (i, (id, part)) in dataset.ids.iter().zip(&sample).enumerate() {
        let participant = crate::tables::participant_id(id);
        let mut row = vec![Cell::Text(&participant), Cell::Text(part)];
        row.extend((0..k).map(|j| Cell::Num(scores.at(i, j))));
        table.row(&row);
    }
    for (j, name) in names.iter().enumerate() {
        if dataset.column(name).is_some() {
            return Err(Error::data(format!("{}: factor name `{name}` is already a column", ctx.stage)));
        }
        dataset.push_numeric(name.clone(), (0..n_all).map(|i| scores.at(i, j)).collect());
    }
    let mut summary = analysis.summary;
    summary["fit_sample"] = serde_json::json!(p.fit_sample);
    summary["factor_names"] = serde_json::json!(names);
    summary["standardisation"] = serde_json::json!({"means": analysis.means, "sds": analysis.sds, "ddof": 0});
    let weights = matrix_tsv("item", &p.items, &names, &analysis.weights);
    Ok(Outputs::from([
        ("dataset".to_string(), crate::tables::encode(&dataset)),
        ("loadings".to_string(), matrix_tsv("item", &p.items, &names, &analysis.fit.loadings).into_bytes()),
        ("phi".to_string(), matrix_tsv("factor", &names, &names, &analysis.fit.phi).into_bytes()),
        ("weights".to_string(), weights.into_bytes()),
        ("scores".to_string(), table.finish().into_bytes()),
        ("fit".to_string(), (serde_json::to_string_pretty(&summary).expect("json") + "\n").into_bytes()),
    ]))
}
