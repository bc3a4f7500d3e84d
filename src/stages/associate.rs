//! Associate every feature with one outcome in one sample (see `stats::association` for the
//! method). Covariate terms are formed from base columns z-scored within the sample. Inputs:
//! `dataset`, and `split` unless the sample is everyone. Outputs: `stats` (TSV, one row per
//! feature); with categorical covariates, `levels` (their coding; see `stages::covariates`); with
//! region means, `regions` (TSV, one row per region); and when asked, `bootstrap` (the cache's
//! table encoding: one row per resample, one column per feature, NaN for a skipped resample) for
//! the `differences` stage.

use super::{Context, Outputs};
use crate::design::{Sample, SplitAssignment};
use crate::error::{Error, Result};
use crate::spec::terms::Term;
use crate::stats::association::PermutationScheme;
use crate::stats::association::{self, Input, Settings};
use crate::tables::{Cell, TsvWriter};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

pub const VERSION: u32 = 2;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["dataset", "split"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["stats", "levels", "regions", "bootstrap"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub outcome: String,
    pub part: Sample,
    /// (group, column)
    pub features: Vec<(String, String)>,
    pub covariates: Vec<Term>,
    pub permutations: usize,
    pub permutation_scheme: PermutationScheme,
    pub permutation_seed: u64,
    /// Exchangeability blocks: the column and how blocks are permuted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<(String, crate::stats::exchange::BlockPermutation)>,
    pub bootstrap: usize,
    pub bootstrap_seed: u64,
    pub ci_level: f64,
    /// Regions whose mean edge β is tested: (name, indices into `features`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub region_means: Vec<(String, Vec<usize>)>,
    /// Write every resample's β (`bootstrap` output) for between-outcome differences.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_bootstrap: bool,
}

pub const REGION_COLUMNS: [&str; 6] = ["outcome", "region", "edges", "mean_beta", "p_perm", "p_fwe"];

pub const COLUMNS: [&str; 13] = [
    "outcome",
    "group",
    "feature",
    "n",
    "beta",
    "se",
    "t",
    "p",
    "p_perm",
    "p_fwe",
    "ci_low",
    "ci_high",
    "boot_skipped",
];

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let dataset = ctx.table("dataset")?;
    let split = match p.part {
        Sample::All => None,
        _ => Some(SplitAssignment::parse(&ctx.text("split")?)?),
    };
    let rows = SplitAssignment::rows(split.as_ref(), &dataset.ids, p.part);
    let n = rows.len();
    let pick = |name: &str| -> Result<Vec<f64>> {
        let column = dataset.numeric(name)?;
        Ok(rows.iter().map(|&r| column[r]).collect())
    };
    let y = pick(&p.outcome)?;
    let mut features = Vec::with_capacity(n * p.features.len());
    for (_, column) in &p.features {
        features.extend(pick(column)?);
    }
    let sample = p.part.to_string();
    let expanded = super::covariates::expand(&dataset, &p.covariates, &rows, &sample, true)
        .map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?;
    let feature_names: Vec<String> = p.features.iter().map(|(_, c)| c.clone()).collect();
    let input = Input {
        y: &y,
        features: &features,
        feature_names: &feature_names,
        covariates: &expanded.values,
        covariate_names: &expanded.names,
    };
    let settings = Settings {
        permutations: p.permutations,
        scheme: p.permutation_scheme,
        permutation_seed: p.permutation_seed,
        bootstrap: p.bootstrap,
        bootstrap_seed: p.bootstrap_seed,
        ci_level: p.ci_level,
        exchange: super::covariates::exchange(&dataset, p.blocks.as_ref(), &rows)
            .map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?,
        region_means: p
            .region_means
            .iter()
            .map(|(name, features)| association::RegionEdges { name: name.clone(), features: features.clone() })
            .collect(),
    };
    let total = (p.permutations + p.bootstrap) as u64;
    let done = AtomicU64::new(0);
    let report = |k: u64| (ctx.progress)(done.fetch_add(k, Ordering::Relaxed) + k, total);
    let result = association::associate_all(&input, &settings, &report)
        .map_err(|e| Error::data(format!("outcome `{}` in the {} sample: {e}", p.outcome, p.part)))?;
    let stats = &result.features;

    let mut w = TsvWriter::new(&COLUMNS);
    for ((group, feature), s) in p.features.iter().zip(stats) {
        w.row(&[
            Cell::Text(&p.outcome),
            Cell::Text(group),
            Cell::Text(feature),
            Cell::Int(s.n as i64),
            Cell::Num(s.beta),
            Cell::Num(s.se),
            Cell::Num(s.t),
            Cell::Num(s.p),
            Cell::Num(s.p_perm),
            Cell::Num(s.p_fwe),
            Cell::Num(s.ci_low),
            Cell::Num(s.ci_high),
            Cell::Int(s.boot_skipped as i64),
        ]);
    }
    let mut outputs = Outputs::from([("stats".to_string(), w.finish().into_bytes())]);
    if !expanded.levels.is_empty() {
        outputs.insert("levels".to_string(), super::covariates::levels_tsv(&expanded.levels, &sample));
    }
    if !result.regions.is_empty() {
        let mut w = TsvWriter::new(&REGION_COLUMNS);
        for r in &result.regions {
            w.row(&[
                Cell::Text(&p.outcome),
                Cell::Text(&r.name),
                Cell::Int(r.edges as i64),
                Cell::Num(r.mean_beta),
                Cell::Num(r.p_perm),
                Cell::Num(r.p_fwe),
            ]);
        }
        outputs.insert("regions".to_string(), w.finish().into_bytes());
    }
    if p.keep_bootstrap {
        outputs.insert("bootstrap".to_string(), bootstrap_table(&result.bootstrap, &feature_names));
    }
    Ok(outputs)
}

/// Resamples as a table: row b is resample b, NaN in every column where it was skipped.
fn bootstrap_table(resamples: &[Option<Vec<f64>>], features: &[String]) -> Vec<u8> {
    let ids = (0..resamples.len()).map(|b| b.to_string()).collect();
    let mut table = crate::tables::Table::new("bootstrap", ids);
    for (j, name) in features.iter().enumerate() {
        table.push_numeric(name.clone(), resamples.iter().map(|r| r.as_ref().map_or(f64::NAN, |v| v[j])).collect());
    }
    crate::tables::encode(&table)
}
