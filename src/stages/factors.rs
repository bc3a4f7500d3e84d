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
use crate::behaviour::efa::{self, Count, Extraction, Request, Rotation, Scores};
use crate::behaviour::efa_command::matrix_tsv;
use crate::error::{Error, Result};
use crate::plan::ALL;
use crate::spec::{FactorCount, FactorMethod, FactorRotation, FactorRule, FactorScores};
use crate::stats::dense::M;
use crate::tables::{Cell, Tsv, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    /// Item columns, in order.
    pub items: Vec<String>,
    pub count: FactorCount,
    pub method: FactorMethod,
    pub rotation: FactorRotation,
    pub gamma: f64,
    pub scores: FactorScores,
    pub parallel_simulations: usize,
    pub seed: u64,
    /// Factor column names; empty means F1..Fk.
    pub names: Vec<String>,
    /// The sample the model is fitted on (`discovery` or `all`).
    pub fit_sample: String,
}

pub fn request(p: &Params) -> Request {
    Request {
        count: match p.count {
            FactorCount::Fixed(k) => Count::Fixed(k),
            FactorCount::Rule(FactorRule::Parallel) => Count::Parallel,
            FactorCount::Rule(FactorRule::Map) => Count::Map,
        },
        method: match p.method {
            FactorMethod::Minres => Extraction::MinRes,
            FactorMethod::Ml => Extraction::Ml,
            FactorMethod::Principal => Extraction::Principal,
        },
        rotation: match p.rotation {
            FactorRotation::None => Rotation::None,
            FactorRotation::Varimax => Rotation::Varimax,
            FactorRotation::Promax => Rotation::Promax { power: 4.0 },
            FactorRotation::Oblimin => Rotation::Oblimin { gamma: p.gamma },
            FactorRotation::Quartimin => Rotation::Quartimin,
            FactorRotation::Geomin => Rotation::Geomin { delta: 0.01 },
        },
        scores: match p.scores {
            FactorScores::Regression => Scores::Regression,
            FactorScores::Bartlett => Scores::Bartlett,
            FactorScores::Tenberge => Scores::TenBerge,
        },
        simulations: p.parallel_simulations,
        seed: p.seed,
    }
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let mut dataset = ctx.table("dataset")?;
    let n_all = dataset.rows();
    let sample: Vec<String> = if p.fit_sample == ALL {
        vec![ALL.to_string(); n_all]
    } else {
        let split = Tsv::parse(&ctx.text("split")?);
        let of: std::collections::HashMap<&str, &str> =
            split.rows.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
        dataset.ids.iter().map(|id| of.get(id.as_str()).copied().unwrap_or("").to_string()).collect()
    };
    let n_items = p.items.len();
    let columns: Vec<&[f64]> = p.items.iter().map(|c| dataset.numeric(c)).collect::<Result<_>>()?;
    let values_of =
        |rows: &[usize]| -> Vec<f64> { rows.iter().flat_map(|&i| columns.iter().map(move |c| c[i])).collect() };
    let fit_rows: Vec<usize> = (0..n_all).filter(|&i| sample[i] == p.fit_sample).collect();
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
        &std::iter::once("subject").chain(["sample"]).chain(names.iter().map(String::as_str)).collect::<Vec<_>>(),
    );
    for (i, (id, part)) in dataset.ids.iter().zip(&sample).enumerate() {
        let mut row = vec![Cell::Text(id), Cell::Text(part)];
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
