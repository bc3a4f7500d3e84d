//! Between-outcome differences in β (de Lange et al. 2025): for each listed pair of outcomes
//! (a, b) and each feature, β_a − β_b with a percentile bootstrap CI from paired resamples.
//! Resample b of every outcome of one sample draws the same subjects (`stats::association`), so
//! β_a(b) − β_b(b) is the difference on one resample; a resample skipped for either outcome is
//! left out of the pair. Inputs: `stats:OUTCOME` and `bootstrap:OUTCOME` (from `associate`) per
//! outcome named in a pair. Output: `differences` (TSV, one row per pair and feature).

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::stats::quantile::percentile_interval;
use crate::tables::{Cell, Tsv, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 2;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["stats:*", "bootstrap:*"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["differences"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub part: crate::design::Sample,
    /// Outcome pairs (a, b): the difference is β_a − β_b.
    pub pairs: Vec<(String, String)>,
    pub ci_level: f64,
}

pub const COLUMNS: [&str; 11] = [
    "outcome_a",
    "outcome_b",
    "group",
    "feature",
    "beta_a",
    "beta_b",
    "difference",
    "ci_low",
    "ci_high",
    "resamples",
    "ci_excludes_zero",
];

/// One outcome's observed β per feature (with its group) and resampled β per feature.
struct Outcome {
    rows: Vec<(String, String, f64)>,
    resamples: Vec<Vec<f64>>,
}

fn outcome(ctx: &Context<'_>, name: &str) -> Result<Outcome> {
    let stats = Tsv::parse(&ctx.text(&format!("stats:{name}"))?);
    let rows: Vec<(String, String, f64)> = (0..stats.rows.len())
        .map(|r| (stats.text(r, "group").to_string(), stats.text(r, "feature").to_string(), stats.value(r, "beta")))
        .collect();
    let table = ctx.table(&format!("bootstrap:{name}"))?;
    let resamples =
        rows.iter().map(|(_, feature, _)| table.numeric(feature).map(<[f64]>::to_vec)).collect::<Result<_>>()?;
    Ok(Outcome { rows, resamples })
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let mut w = TsvWriter::new(&COLUMNS);
    for (a, b) in &p.pairs {
        let (first, second) = (outcome(ctx, a)?, outcome(ctx, b)?);
        if first.rows.len() != second.rows.len() {
            return Err(Error::data(format!("{}: `{a}` and `{b}` have different features", ctx.stage)));
        }
        for (j, ((group, feature, beta_a), (_, _, beta_b))) in first.rows.iter().zip(&second.rows).enumerate() {
            let mut paired: Vec<f64> = first.resamples[j]
                .iter()
                .zip(&second.resamples[j])
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| x - y)
                .collect();
            let used = paired.len();
            let (low, high) =
                if paired.is_empty() { (f64::NAN, f64::NAN) } else { percentile_interval(&mut paired, p.ci_level) };
            w.row(&[
                Cell::Text(a),
                Cell::Text(b),
                Cell::Text(group),
                Cell::Text(feature),
                Cell::Num(*beta_a),
                Cell::Num(*beta_b),
                Cell::Num(beta_a - beta_b),
                Cell::Num(low),
                Cell::Num(high),
                Cell::Int(used as i64),
                Cell::Text(crate::tables::boolean(low > 0.0 || high < 0.0)),
            ]);
        }
    }
    Ok(Outputs::from([("differences".to_string(), w.finish().into_bytes())]))
}
