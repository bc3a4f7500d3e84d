//! ROC analysis of one value classifying a binary outcome (see `stats::roc`): AUC with DeLong
//! and bootstrap intervals and a label-permutation p. When the value was chosen among the edges
//! of a region-level group analysis using the same people (`selected_by`), the in-sample AUC is
//! flagged circular and a cross-validated AUC is added, in which each training fold redoes the
//! choice (the candidate edge with the largest two-sample t, in the analysis' direction) and
//! scores its test subjects. With `cluster`, the value is each subject's mean seed-map value in
//! the largest supra-threshold cluster of a voxelwise two-sample analysis (its sign: higher
//! means positive), found with the same people: circular in-sample, and cross-validated by
//! refitting that analysis (observed t only) on each training fold. Input: `dataset` (and for
//! clusters `maps:KEY` and `mask`). Outputs: `auc` (TSV) and `scores` (TSV, per subject: label,
//! in-sample score, and with cross-validation the out-of-fold score and its fold), from which
//! the ROC curves are drawn.

use super::{Context, Outputs};
pub use crate::design::{ClusterChoice, EdgeChoice};
use crate::error::{Error, Result};
use crate::stats::roc::{self, Alternative, RocSettings};
use crate::stats::voxelwise::Tail;
use crate::tables::{Cell, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 3;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["dataset", "maps:*", "mask"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["auc", "scores"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub value: Option<String>,
    pub label: String,
    /// The region-level analysis that chose the value.
    pub selected_by: Option<EdgeChoice>,
    pub cluster: Option<ClusterChoice>,
    pub folds: usize,
    pub bootstrap: usize,
    pub permutations: usize,
    pub ci_level: f64,
    pub seed: u64,
    /// Exchangeability blocks of the permutation p: the column and how blocks are permuted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<(String, crate::stats::exchange::BlockPermutation)>,
}

/// Per subject (dataset rows `rows`): the mean map value in the cluster chosen on `train`.
struct ClusterScorer {
    maps: Vec<Vec<f64>>,
    /// Labels (group column) and covariates per subject, in `maps` order.
    group: Vec<bool>,
    covariates: Vec<Vec<f64>>,
    /// Names of the covariate columns (categorical ones as indicators).
    covariate_names: Vec<String>,
    mask: crate::stats::voxelwise::MaskedGrid,
    choice: ClusterChoice,
}

impl ClusterScorer {
    /// Refit the two-sample analysis on `train` (observed t only) and return the voxels of its
    /// largest cluster in the analysis' direction (the peak voxel if there is none) and a sign.
    fn choose(&self, train: &[usize]) -> Result<(Vec<usize>, f64)> {
        use crate::stats::voxelwise::{self, Covariates, Design};
        let n = train.len();
        let voxels = self.mask.len();
        let mut y = vec![0.0; voxels * n];
        for (i, &s) in train.iter().enumerate() {
            for v in 0..voxels {
                y[v * n + i] = self.maps[s][v];
            }
        }
        let covariates = Covariates {
            names: self.covariate_names.clone(),
            values: self.covariates.iter().flat_map(|c| train.iter().map(move |&s| c[s])).collect(),
        };
        let design = Design::TwoSample { group: train.iter().map(|&s| self.group[s]).collect(), covariates };
        let settings = voxelwise::Settings {
            permutations: 0,
            seed: 0,
            tail: self.choice.tail,
            cluster: Some(super::group::cluster_settings(
                self.choice.cluster_t,
                self.choice.cluster_p,
                self.choice.connectivity,
                &self.mask,
            )),
            map_statistic: None,
        };
        let fit = voxelwise::fit(&y, n, &design, &settings, &|_| {})?;
        if let Some(c) = fit.clusters.as_ref().and_then(|c| c.clusters.first()) {
            return Ok((c.voxels.clone(), f64::from(c.sign)));
        }
        let peak = (0..voxels)
            .filter(|&v| fit.t[v].is_finite())
            .max_by(|&a, &b| fit.t[a].abs().total_cmp(&fit.t[b].abs()))
            .ok_or_else(|| Error::data("no voxel has a finite t"))?;
        Ok((vec![peak], fit.t[peak].signum()))
    }

    fn score(&self, subject: usize, voxels: &[usize], sign: f64) -> f64 {
        sign * voxels.iter().map(|&v| self.maps[subject][v]).sum::<f64>() / voxels.len() as f64
    }
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let dataset = ctx.table("dataset")?;
    // The subjects: every dataset row, or with a cluster those whose run has a map.
    let (rows, scorer) = match &p.cluster {
        Some(choice) => {
            let (rows, _, data) =
                super::group::load_maps(ctx, &dataset, choice.seed, std::slice::from_ref(&choice.session))?;
            let group_values = dataset.numeric(&choice.group_column)?;
            let expanded = covariate_columns(&dataset, &choice.covariates, &rows)?;
            let covariates: Vec<Vec<f64>> = expanded.values.chunks(rows.len().max(1)).map(<[f64]>::to_vec).collect();
            let scorer = ClusterScorer {
                maps: data.into_iter().map(|mut d| d.remove(0)).collect(),
                group: rows.iter().map(|&r| group_values[r] == 1.0).collect(),
                covariates,
                covariate_names: expanded.names,
                mask: super::group::load_mask(ctx)?,
                choice: choice.clone(),
            };
            (rows, Some(scorer))
        }
        None => ((0..dataset.rows()).collect::<Vec<usize>>(), None),
    };
    let label_values = dataset.numeric(&p.label)?;
    if let Some(&r) = rows.iter().find(|&&r| label_values[r] != 0.0 && label_values[r] != 1.0) {
        return Err(Error::data(format!(
            "{}: label column `{}` must be 0 or 1, but subject {} has {}",
            ctx.stage, p.label, dataset.ids[r], label_values[r]
        )));
    }
    let labels: Vec<bool> = rows.iter().map(|&r| label_values[r] == 1.0).collect();
    let exchange = super::covariates::exchange(&dataset, p.blocks.as_ref(), &rows)
        .map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?;
    let fail = |e: Error| Error::data(format!("{}: {}", ctx.stage, e));
    let (value_name, scores) = match (&p.value, &scorer) {
        (Some(value), _) => {
            let column = dataset.numeric(value)?;
            (value.clone(), rows.iter().map(|&r| column[r]).collect::<Vec<f64>>())
        }
        (None, Some(scorer)) => {
            let all: Vec<usize> = (0..rows.len()).collect();
            let (voxels, sign) = scorer.choose(&all).map_err(fail)?;
            let name =
                format!("mean map value in the largest cluster of `{}` ({} voxels)", scorer.choice.group, voxels.len());
            (name, all.iter().map(|&s| scorer.score(s, &voxels, sign)).collect())
        }
        (None, None) => return Err(Error::data(format!("{}: no value; this is a neurospec bug", ctx.stage))),
    };
    let settings = RocSettings {
        ci_level: p.ci_level,
        bootstrap: p.bootstrap,
        permutations: p.permutations,
        seed: p.seed,
        alternative: Alternative::Greater,
        circular: p.selected_by.is_some() || p.cluster.is_some(),
        exchange: exchange.clone(),
    };
    let fail = |e: Error| Error::data(format!("{}: {}", ctx.stage, e));
    let in_sample = roc::summarise(&scores, &labels, &settings).map_err(fail)?;
    let value = &value_name;
    let mut table = TsvWriter::new(&[
        "value",
        "label",
        "evaluation",
        "n",
        "positives",
        "auc",
        "delong_ci_low",
        "delong_ci_high",
        "bootstrap_ci_low",
        "bootstrap_ci_high",
        "p_perm",
        "circular",
        "note",
    ]);
    let note = match (&p.selected_by, &p.cluster) {
        (Some(choice), _) => format!(
            "`{value}` was chosen among {} edges by group analysis `{}` on these subjects: optimistic",
            choice.candidates.len(),
            choice.group
        ),
        (_, Some(c)) => format!("the cluster was found by `{}` on these subjects: optimistic", c.group),
        _ => String::new(),
    };
    table.row(&[
        Cell::Text(value),
        Cell::Text(&p.label),
        Cell::Text("in-sample"),
        Cell::Int(labels.len() as i64),
        Cell::Int(in_sample.positives as i64),
        Cell::Num(in_sample.auc),
        Cell::Num(in_sample.delong_ci.0),
        Cell::Num(in_sample.delong_ci.1),
        Cell::Num(in_sample.bootstrap_ci.0),
        Cell::Num(in_sample.bootstrap_ci.1),
        Cell::Num(in_sample.p_perm),
        Cell::Text(crate::tables::boolean(in_sample.circular)),
        Cell::Text(&note),
    ]);
    let mut out_of_fold: Option<(Vec<f64>, Vec<usize>)> = None;
    if let Some(choice) = &p.selected_by {
        use crate::stats::voxelwise::{self, Covariates, Design, Settings};
        let columns: Vec<&[f64]> = choice.candidates.iter().map(|c| dataset.numeric(c)).collect::<Result<_>>()?;
        let group = dataset.numeric(&choice.group_column)?;
        let all: Vec<usize> = (0..dataset.rows()).collect();
        let expanded = covariate_columns(&dataset, &choice.covariates, &all)?;
        let covariates: Vec<&[f64]> = expanded.values.chunks(all.len().max(1)).collect();
        let cv = roc::cross_validated_auc(&labels, p.folds, crate::stats::rng::derive_seed(p.seed, "folds"), |train| {
            // The choosing analysis' own test (two-sample t with its covariates), on the
            // training subjects only; the edge with the most extreme t in its direction.
            let n = train.len();
            let y: Vec<f64> = columns.iter().flat_map(|c| train.iter().map(|&i| c[i])).collect();
            let design = Design::TwoSample {
                group: train.iter().map(|&i| group[i] == 1.0).collect(),
                covariates: Covariates {
                    names: expanded.names.clone(),
                    values: covariates.iter().flat_map(|c| train.iter().map(|&i| c[i])).collect(),
                },
            };
            let settings = Settings { permutations: 0, seed: 0, tail: choice.tail, cluster: None, map_statistic: None };
            let t = voxelwise::fit(&y, n, &design, &settings, &|_| {})?.t;
            let extremity = |v: f64| match choice.tail {
                Tail::Negative => -v,
                Tail::Positive => v,
                Tail::TwoSided => v.abs(),
            };
            let best = (0..t.len())
                .filter(|&c| t[c].is_finite())
                .max_by(|&a, &b| extremity(t[a]).total_cmp(&extremity(t[b])).then(b.cmp(&a)))
                .ok_or_else(|| Error::data("no candidate edge has a finite t"))?;
            let direction = if t[best] < 0.0 { -1.0 } else { 1.0 };
            let values = columns[best];
            Ok(move |i: usize| direction * values[i])
        })
        .map_err(fail)?;
        let note = format!("{}-fold: each training fold re-chose the edge by `{}`'s test", p.folds, choice.group);
        out_of_fold = Some((cv.scores.clone(), cv.fold.clone()));
        cross_validated_row(&mut table, &p, value, &labels, in_sample.positives, &cv, &note, &exchange)
            .map_err(fail)?;
    }
    if let Some(scorer) = &scorer {
        let cv = roc::cross_validated_auc(&labels, p.folds, crate::stats::rng::derive_seed(p.seed, "folds"), |train| {
            let (voxels, sign) = scorer.choose(train)?;
            Ok(move |i: usize| scorer.score(i, &voxels, sign))
        })
        .map_err(fail)?;
        let note = format!(
            "{}-fold: each training fold refitted `{}` and scored its test subjects in its own largest cluster",
            p.folds, scorer.choice.group
        );
        out_of_fold = Some((cv.scores.clone(), cv.fold.clone()));
        cross_validated_row(&mut table, &p, value, &labels, in_sample.positives, &cv, &note, &exchange)
            .map_err(fail)?;
    }
    let ids: Vec<&str> = rows.iter().map(|&r| dataset.ids[r].as_str()).collect();
    let scores_tsv = scores_table(&ids, &labels, &scores, out_of_fold.as_ref());
    Ok(Outputs::from([("auc".to_string(), table.finish().into_bytes()), ("scores".to_string(), scores_tsv)]))
}

/// Per subject: the label, the in-sample score and (with cross-validation) the out-of-fold score
/// and the fold (from 1) that scored it.
fn scores_table(
    ids: &[&str],
    labels: &[bool],
    scores: &[f64],
    out_of_fold: Option<&(Vec<f64>, Vec<usize>)>,
) -> Vec<u8> {
    let mut header = vec![crate::tables::PARTICIPANT_ID, "label", "in_sample_score"];
    if out_of_fold.is_some() {
        header.extend(["cross_validated_score", "fold"]);
    }
    let mut table = TsvWriter::new(&header);
    for (i, id) in ids.iter().enumerate() {
        let participant = crate::tables::participant_id(id);
        let mut cells =
            vec![Cell::Text(&participant), Cell::Text(crate::tables::boolean(labels[i])), Cell::Num(scores[i])];
        if let Some((cv, fold)) = out_of_fold {
            cells.extend([Cell::Num(cv[i]), Cell::Int(fold[i] as i64 + 1)]);
        }
        table.row(&cells);
    }
    table.finish().into_bytes()
}

/// The cross-validated AUC's row: DeLong CI and a permutation p of the out-of-fold scores.
#[allow(clippy::too_many_arguments)]
fn cross_validated_row(
    table: &mut TsvWriter,
    p: &Params,
    value: &str,
    labels: &[bool],
    positives: usize,
    cv: &roc::CrossValidatedAuc,
    note: &str,
    exchange: &crate::stats::exchange::Exchange,
) -> Result<()> {
    let ci = roc::delong_interval(&cv.scores, labels, p.ci_level)?;
    let p_cv = roc::permutation_p_blocked(
        &cv.scores,
        labels,
        p.permutations,
        crate::stats::rng::derive_seed(p.seed, "cv-permutation"),
        Alternative::Greater,
        exchange,
    )?;
    let note = format!("{note}; the permutation p treats the out-of-fold scores as fixed");
    table.row(&[
        Cell::Text(value),
        Cell::Text(&p.label),
        Cell::Text("cross-validated"),
        Cell::Int(labels.len() as i64),
        Cell::Int(positives as i64),
        Cell::Num(cv.auc),
        Cell::Num(ci.0),
        Cell::Num(ci.1),
        Cell::Num(f64::NAN),
        Cell::Num(f64::NAN),
        Cell::Num(p_cv),
        Cell::Text(crate::tables::boolean(false)),
        Cell::Text(&note),
    ]);
    Ok(())
}

/// The choosing analysis' covariates for `rows` (categorical ones coded on these subjects; a
/// training fold that lacks a level leaves a zero column, reported as collinear covariates).
fn covariate_columns(
    dataset: &crate::tables::Table,
    written: &[String],
    rows: &[usize],
) -> Result<super::covariates::Expanded> {
    super::covariates::expand(dataset, &super::covariates::parse(written)?, rows, "ROC", false)
}
