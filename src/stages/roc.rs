//! ROC analysis of one value classifying a binary outcome (see `stats::roc`): AUC with DeLong
//! and bootstrap intervals and a label-permutation p. When the value was chosen among the edges
//! of a region-level group analysis using the same people (`selected_by`), the in-sample AUC is
//! flagged circular and a cross-validated AUC is added, in which each training fold redoes the
//! choice (the candidate edge with the largest two-sample t, in the analysis' direction) and
//! scores its test subjects. Input: `dataset`. Output: `auc` (TSV).

use super::{Context, Outputs};
use crate::error::{Error, Result};
use crate::spec::GroupTail;
use crate::stats::roc::{self, Alternative, RocSettings};
use crate::tables::{Cell, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub value: String,
    pub label: String,
    /// The choosing analysis: its name, candidate columns and direction.
    pub selected_by: Option<(String, Vec<String>, GroupTail)>,
    pub folds: usize,
    pub bootstrap: usize,
    pub permutations: usize,
    pub ci_level: f64,
    pub seed: u64,
}

/// Student's two-sample t (group true minus false).
fn two_sample_t(values: &[f64], labels: &[bool], rows: &[usize]) -> f64 {
    let (mut s, mut ss, mut n) = ([0.0; 2], [0.0; 2], [0.0; 2]);
    for &i in rows {
        let g = usize::from(labels[i]);
        s[g] += values[i];
        ss[g] += values[i] * values[i];
        n[g] += 1.0;
    }
    let mean = [s[0] / n[0], s[1] / n[1]];
    let pooled = ((ss[0] - n[0] * mean[0] * mean[0]) + (ss[1] - n[1] * mean[1] * mean[1])) / (n[0] + n[1] - 2.0);
    (mean[1] - mean[0]) / (pooled * (1.0 / n[0] + 1.0 / n[1])).sqrt()
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let dataset = ctx.table("dataset")?;
    let label_values = dataset.numeric(&p.label)?;
    if let Some((i, v)) = label_values.iter().enumerate().find(|(_, v)| **v != 0.0 && **v != 1.0) {
        return Err(Error::data(format!(
            "{}: label column `{}` must be 0 or 1, but subject {} has {v}",
            ctx.stage, p.label, dataset.ids[i]
        )));
    }
    let labels: Vec<bool> = label_values.iter().map(|v| *v == 1.0).collect();
    let scores = dataset.numeric(&p.value)?.to_vec();
    let settings = RocSettings {
        ci_level: p.ci_level,
        bootstrap: p.bootstrap,
        permutations: p.permutations,
        seed: p.seed,
        alternative: Alternative::Greater,
        circular: p.selected_by.is_some(),
    };
    let fail = |e: Error| Error::data(format!("{}: {}", ctx.stage, e.to_string().trim_start_matches("error: ")));
    let in_sample = roc::summarise(&scores, &labels, &settings).map_err(fail)?;
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
    let note = match &p.selected_by {
        Some((name, candidates, _)) => format!(
            "`{}` was chosen among {} edges by group analysis `{name}` on these subjects: optimistic",
            p.value,
            candidates.len()
        ),
        None => String::new(),
    };
    table.row(&[
        Cell::Text(&p.value),
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
        Cell::Text(if in_sample.circular { "yes" } else { "no" }),
        Cell::Text(&note),
    ]);
    if let Some((name, candidates, tail)) = &p.selected_by {
        let columns: Vec<&[f64]> = candidates.iter().map(|c| dataset.numeric(c)).collect::<Result<_>>()?;
        let sign = |t: f64| match tail {
            GroupTail::Negative => -t,
            GroupTail::Positive => t,
            GroupTail::TwoSided => t.abs(),
        };
        let cv = roc::cross_validated_auc(&labels, p.folds, crate::stats::rng::derive_seed(p.seed, "folds"), |train| {
            let (best, t) = columns
                .iter()
                .enumerate()
                .map(|(c, values)| (c, two_sample_t(values, &labels, train)))
                .max_by(|a, b| sign(a.1).total_cmp(&sign(b.1)).then(b.0.cmp(&a.0)))
                .expect("candidates");
            let direction = if t < 0.0 { -1.0 } else { 1.0 };
            let values = columns[best];
            Ok(move |i: usize| direction * values[i])
        })
        .map_err(fail)?;
        let (ci, _) = (roc::delong_interval(&cv.scores, &labels, p.ci_level).map_err(fail)?, ());
        let p_cv = roc::permutation_p(
            &cv.scores,
            &labels,
            p.permutations,
            crate::stats::rng::derive_seed(p.seed, "cv-permutation"),
            Alternative::Greater,
        )
        .map_err(fail)?;
        let note = format!(
            "{}-fold: each training fold re-chose the edge by `{name}`'s test; the permutation p treats the \
             out-of-fold scores as fixed",
            p.folds
        );
        table.row(&[
            Cell::Text(&p.value),
            Cell::Text(&p.label),
            Cell::Text("cross-validated"),
            Cell::Int(labels.len() as i64),
            Cell::Int(in_sample.positives as i64),
            Cell::Num(cv.auc),
            Cell::Num(ci.0),
            Cell::Num(ci.1),
            Cell::Num(f64::NAN),
            Cell::Num(f64::NAN),
            Cell::Num(p_cv),
            Cell::Text("no"),
            Cell::Text(&note),
        ]);
    }
    Ok(Outputs::from([("auc".to_string(), table.finish().into_bytes())]))
}
