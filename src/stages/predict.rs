//! Predict one outcome from a feature set (see `stats::predict` for the method): repeated k-fold
//! cross-validation with permutation p-values in the discovery set (or everyone without a
//! split), then — with a split — the model trained on all discovery subjects and applied once
//! to the held-out set. Inputs: `dataset`, and `split` when there is one. Outputs: `metrics`
//! (one row per model and evaluation), `edges` (per feature: CPM selection frequencies, mean
//! training r, mean ridge weight) and `predictions` (per subject: sample, target, each model's
//! prediction — out-of-fold means for discovery, the final model's for held-out), `repeats` (per
//! model and repeat of the cross-validation: r, R², MAE) and `null` (per model and permutation:
//! the mean-over-repeats r of the permuted outcome, whose share ≥ the observed r is `p_r`).

use super::{Context, Outputs};
use crate::design::{Sample, SplitAssignment};
use crate::error::{Error, Result};
use crate::stats::predict::{self, Data, Settings};
use crate::tables::{Cell, ColumnData, Table, TsvWriter};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 3;
/// Input names this stage reads (`*` ends a family, e.g. `table:*`).
pub const INPUTS: &[&str] = &["dataset", "split"];
/// Output names this stage writes (`*` ends a family).
pub const OUTPUTS: &[&str] = &["metrics", "edges", "predictions", "levels", "repeats", "null"];

#[derive(Debug, Serialize, Deserialize)]
pub struct Params {
    pub outcome: String,
    pub features: Vec<String>,
    pub confounds: Vec<String>,
    pub group_column: Option<String>,
    pub cpm: bool,
    pub cpm_p: f64,
    pub ridge: bool,
    pub alphas: Vec<f64>,
    pub folds: usize,
    pub repeats: usize,
    pub fold_seed: u64,
    pub permutations: usize,
    pub permutation_seed: u64,
    /// Exchangeability blocks of the permutation p-values: the column and how blocks are permuted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<(String, crate::stats::exchange::BlockPermutation)>,
    pub ci_level: f64,
    /// The sample cross-validated and trained on: `discovery` (then applied once to `held-out`)
    /// or `all` without a split.
    pub fit_sample: Sample,
}

pub const METRIC_COLUMNS: [&str; 14] = [
    "outcome",
    "model",
    "evaluation",
    "n",
    "r",
    "r_ci_low",
    "r_ci_high",
    "r2",
    "mae",
    "p_r",
    "p_r2",
    "p_mae",
    "permutations",
    "note",
];

struct Part {
    rows: Vec<usize>,
    x: Vec<f64>,
    /// Confound columns (categorical confounds as indicators), n × `c`.
    c: Vec<f64>,
    y: Vec<f64>,
    confounds: super::covariates::Expanded,
}

/// One sample's data. Confounds are coded on the training sample (`training` is `None` for it)
/// and applied unchanged to the held-out one. Coding categorical confounds once on the whole
/// training sample rather than inside each training fold gives the same fitted values: the
/// indicator columns of the levels a fold holds span the same space with any reference; a level
/// a training fold lacks leaves a zero column, reported as collinear confounds.
fn part(
    dataset: &Table,
    rows: Vec<usize>,
    p: &Params,
    sample: Sample,
    training: Option<&[super::covariates::Levels]>,
) -> Result<Part> {
    let pick = |name: &str| -> Result<Vec<f64>> {
        let column = dataset.numeric(name)?;
        Ok(rows.iter().map(|&r| column[r]).collect())
    };
    let mut x = Vec::with_capacity(rows.len() * p.features.len());
    for f in &p.features {
        x.extend(pick(f)?);
    }
    let terms = super::covariates::parse(&p.confounds)?;
    let confounds = super::covariates::expand_with(dataset, &terms, &rows, sample.name(), false, training)?;
    let y = pick(&p.outcome)?;
    Ok(Part { rows, x, c: confounds.values.clone(), y, confounds })
}

fn text_values(dataset: &Table, name: &str, rows: &[usize]) -> Result<Vec<String>> {
    let column = dataset.column(name).ok_or_else(|| Error::data(format!("column `{name}` is not in the dataset")))?;
    Ok(rows
        .iter()
        .map(|&r| match &column.data {
            ColumnData::Text(v) => v[r].clone().unwrap_or_default(),
            ColumnData::Numeric(v) => format!("{}", v[r]),
        })
        .collect())
}

pub fn run(ctx: &Context<'_>) -> Result<Outputs> {
    let p: Params = ctx.params()?;
    let dataset = ctx.table("dataset")?;
    let split = match p.fit_sample {
        Sample::All => None,
        _ => Some(SplitAssignment::parse(&ctx.text("split")?)?),
    };
    let cv_sample = p.fit_sample;
    let cv = part(&dataset, SplitAssignment::rows(split.as_ref(), &dataset.ids, cv_sample), &p, cv_sample, None)
        .map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?;
    let settings = Settings {
        folds: p.folds,
        repeats: p.repeats,
        seed: p.fold_seed,
        cpm: p.cpm,
        cpm_p: p.cpm_p,
        ridge: p.ridge,
        alphas: p.alphas.clone(),
        permutations: p.permutations,
        permutation_seed: p.permutation_seed,
        exchange: super::covariates::exchange(&dataset, p.blocks.as_ref(), &cv.rows)
            .map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?,
    };
    let groups = p.group_column.as_deref().map(|g| text_values(&dataset, g, &cv.rows)).transpose()?;
    let categorical = !cv.confounds.levels.is_empty();
    let fail = |what: &str, e: String| {
        let hint = if categorical && e.contains("collinear") {
            "; with categorical confounds this happens when a training fold holds no subject of some level: \
             merge rare levels or use fewer folds"
        } else {
            ""
        };
        Error::data(format!("{}: {what} in the {cv_sample} sample: {e}{hint}", ctx.stage))
    };
    fn data<'a>(part: &'a Part, p: &Params) -> Data<'a> {
        debug_assert_eq!(part.c.len(), part.rows.len() * part.confounds.names.len());
        Data {
            n: part.rows.len(),
            x: &part.x,
            p: p.features.len(),
            confounds: &part.c,
            c: part.confounds.names.len(),
            y: &part.y,
        }
    }
    let result = predict::cross_validate(&data(&cv, &p), groups.as_deref(), &settings)
        .map_err(|e| fail("cross-validation", e))?;

    let mut metrics = TsvWriter::new(&METRIC_COLUMNS);
    let n_cv = cv.rows.len() as i64;
    for m in &result.models {
        let note = format!("{} folds x {} repeats; metrics are means over repeats", p.folds, p.repeats);
        metrics.row(&[
            Cell::Text(&p.outcome),
            Cell::Text(m.model.name()),
            Cell::Text("cross-validation"),
            Cell::Int(n_cv),
            Cell::Num(m.metrics.r),
            Cell::Num(f64::NAN),
            Cell::Num(f64::NAN),
            Cell::Num(m.metrics.r2),
            Cell::Num(m.metrics.mae),
            Cell::Num(m.p_r),
            Cell::Num(m.p_r2),
            Cell::Num(m.p_mae),
            Cell::Int(p.permutations as i64),
            Cell::Text(&note),
        ]);
    }
    let held = if let Some(split) = &split {
        let rows = SplitAssignment::rows(Some(split), &dataset.ids, Sample::HeldOut);
        let test = part(&dataset, rows, &p, Sample::HeldOut, Some(&cv.confounds.levels))
            .map_err(|e| Error::data(format!("{}: {e}", ctx.stage)))?;
        let outcome = predict::train_and_test(&data(&cv, &p), &data(&test, &p), &settings, p.ci_level)
            .map_err(|e| fail("the final model", e))?;
        for t in &outcome.results {
            let note = match outcome.alpha {
                Some(alpha) if t.model == predict::Model::Ridge => {
                    format!("trained on all {n_cv} discovery subjects (ridge alpha {alpha}); p is one-sided, r > 0")
                }
                _ => format!("trained on all {n_cv} discovery subjects; p is one-sided, r > 0"),
            };
            metrics.row(&[
                Cell::Text(&p.outcome),
                Cell::Text(t.model.name()),
                Cell::Text("held-out"),
                Cell::Int(test.rows.len() as i64),
                Cell::Num(t.metrics.r),
                Cell::Num(t.r_ci.0),
                Cell::Num(t.r_ci.1),
                Cell::Num(t.metrics.r2),
                Cell::Num(t.metrics.mae),
                Cell::Num(t.p),
                Cell::Num(f64::NAN),
                Cell::Num(f64::NAN),
                Cell::Int(0),
                Cell::Text(&note),
            ]);
        }
        Some((test, outcome))
    } else {
        None
    };

    let mut edges = TsvWriter::new(&["feature", "selected_positive", "selected_negative", "mean_r", "ridge_weight"]);
    for (j, f) in p.features.iter().enumerate() {
        edges.row(&[
            Cell::Text(f),
            Cell::Num(result.selected_positive[j]),
            Cell::Num(result.selected_negative[j]),
            Cell::Num(result.mean_r[j]),
            Cell::Num(result.ridge_weight[j]),
        ]);
    }

    let model_names: Vec<&str> = result.models.iter().map(|m| m.model.name()).collect();
    let header: Vec<&str> =
        [crate::tables::PARTICIPANT_ID, "sample", "target"].into_iter().chain(model_names.iter().copied()).collect();
    let mut predictions = TsvWriter::new(&header);
    for (i, &row) in cv.rows.iter().enumerate() {
        let participant = crate::tables::participant_id(&dataset.ids[row]);
        let mut cells = vec![Cell::Text(&participant), Cell::Text(cv_sample.name()), Cell::Num(result.targets[i])];
        cells.extend(result.models.iter().map(|m| Cell::Num(m.predictions[i])));
        predictions.row(&cells);
    }
    if let Some((test, outcome)) = &held {
        for (i, &row) in test.rows.iter().enumerate() {
            let participant = crate::tables::participant_id(&dataset.ids[row]);
            let mut cells =
                vec![Cell::Text(&participant), Cell::Text(Sample::HeldOut.name()), Cell::Num(outcome.targets[i])];
            cells.extend(outcome.results.iter().map(|t| Cell::Num(t.predictions[i])));
            predictions.row(&cells);
        }
    }
    let mut outputs = Outputs::from([
        ("repeats".to_string(), repeats_tsv(&p.outcome, &result.models)),
        ("null".to_string(), null_tsv(&p.outcome, &result.models)),
        ("metrics".to_string(), metrics.finish().into_bytes()),
        ("edges".to_string(), edges.finish().into_bytes()),
        ("predictions".to_string(), predictions.finish().into_bytes()),
    ]);
    if categorical {
        outputs.insert("levels".to_string(), super::covariates::levels_tsv(&cv.confounds.levels, cv_sample.name()));
    }
    Ok(outputs)
}

/// Per model and repeat of the cross-validation: r, R², MAE of that repeat's out-of-fold
/// predictions (the metrics table holds their means).
fn repeats_tsv(outcome: &str, models: &[predict::ModelResult]) -> Vec<u8> {
    let mut table = TsvWriter::new(&["outcome", "model", "repeat", "r", "r2", "mae"]);
    for m in models {
        for (i, r) in m.per_repeat.iter().enumerate() {
            table.row(&[
                Cell::Text(outcome),
                Cell::Text(m.model.name()),
                Cell::Int(i as i64 + 1),
                Cell::Num(r.r),
                Cell::Num(r.r2),
                Cell::Num(r.mae),
            ]);
        }
    }
    table.finish().into_bytes()
}

/// Per model and permutation: the mean-over-repeats r with the outcome permuted (the null of the
/// metrics table's cross-validated `r` and `p_r`).
fn null_tsv(outcome: &str, models: &[predict::ModelResult]) -> Vec<u8> {
    let mut table = TsvWriter::new(&["outcome", "model", "permutation", "r"]);
    for m in models {
        for (i, r) in m.null_r.iter().enumerate() {
            table.row(&[Cell::Text(outcome), Cell::Text(m.model.name()), Cell::Int(i as i64 + 1), Cell::Num(*r)]);
        }
    }
    table.finish().into_bytes()
}
