//! Predicting an outcome from many features (connectivity edges) with cross-validation:
//! connectome-based predictive modelling (CPM) and ridge regression.
//!
//! # Folds
//!
//! Repeated k-fold: for repeat r the subjects are shuffled with a generator seeded from the seed
//! and r, and subject at position i goes to fold i mod k, so any n works (fold sizes differ by at
//! most one). With `groups` (e.g. family ids) whole groups are assigned instead: groups are
//! sorted, shuffled, and each goes to the fold with the fewest subjects so far (lowest index on
//! ties), so no group is in both a training and a test fold.
//!
//! # Inside each fold (everything fitted on the training part only)
//!
//! 1. Confound regression: each feature and the outcome are regressed on [1, confounds] by OLS
//!    in the training part; training and test residuals both use the training coefficients.
//! 2. Features are standardised with the training residuals' mean and SD (ddof 1); a feature
//!    that is constant in training is set to 0 in both parts.
//! 3. CPM (Shen et al. 2017): r_e = correlation of feature e with the outcome in training; edges
//!    with a two-sided p < `cpm_p` (t test of r with n_train − 2 − c degrees of freedom, c
//!    confounds) and r > 0 form the positive network, r < 0 the negative one. A subject's
//!    strength is the sum of its standardised edges in the network (combined: positive minus
//!    negative); the outcome is regressed on strength in training and predicted in test. An empty
//!    network predicts the training mean (counted in `empty_networks`).
//! 4. Ridge: the penalty is chosen among `alphas` by efficient leave-one-out CV on the training
//!    part (as scikit-learn's RidgeCV: with X = U S Vᵀ, fitted values U diag(s²/(s² + α)) Uᵀy and
//!    leverages h_i = Σ_j U_ij² s_j²/(s_j² + α) + 1/n, LOO residuals (y − ŷ)/(1 − h)); the
//!    model with the chosen α predicts the test part.
//!
//! # Metrics and permutation p-values
//!
//! For each repeat the out-of-fold predictions of all subjects are compared with their
//! (confound-residualised) outcomes: Pearson r, R² = 1 − SS_res/SS_tot and MAE; reported values
//! are means over repeats. The null distribution comes from `permutations` random permutations
//! of the outcome across subjects (each from its own seeded stream), each run through exactly
//! the same repeated CV; p = (1 + #{null ≥ observed})/(1 + B) for r and R² and with ≤ for MAE.
//! Everything that does not depend on the outcome (fold splits, feature residuals, SVDs) is
//! computed once and shared by all permutations.
//!
//! # Final model
//!
//! [`train_and_test`] fits the same pipeline on all training subjects (e.g. the discovery set)
//! and applies it once to new subjects (the held-out set): r with a Fisher-z confidence interval
//! and parametric p, R², MAE.
//!
//! Determinism: permutations run in parallel but each uses its own generator and writes its own
//! slot, and every reduction is sequential, so results do not depend on the thread count.
//!
//! One file because CPM, ridge and the cross-validation, permutation and held-out loops that
//! share their fold and feature-selection code read as one methods section; its unit tests sit
//! beside them.

use super::dense::M;
use super::linalg::{cholesky_solve, dot, matmul_tn};
use super::rng::Rng;
use rayon::prelude::*;

/// The models reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Model {
    CpmPositive,
    CpmNegative,
    CpmCombined,
    Ridge,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::CpmPositive => "cpm-positive",
            Model::CpmNegative => "cpm-negative",
            Model::CpmCombined => "cpm-combined",
            Model::Ridge => "ridge",
        }
    }
}

/// Subjects × features data (column-major) with confounds.
pub struct Data<'a> {
    pub n: usize,
    /// n × p, column-major.
    pub x: &'a [f64],
    pub p: usize,
    /// n × c, column-major.
    pub confounds: &'a [f64],
    pub c: usize,
    pub y: &'a [f64],
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub folds: usize,
    pub repeats: usize,
    pub seed: u64,
    pub cpm: bool,
    pub cpm_p: f64,
    pub ridge: bool,
    pub alphas: Vec<f64>,
    pub permutations: usize,
    pub permutation_seed: u64,
    /// Which outcome permutations the permutation p-values may use (exchangeability blocks).
    pub exchange: super::exchange::Exchange,
}

impl Settings {
    pub fn models(&self) -> Vec<Model> {
        let mut m = Vec::new();
        if self.cpm {
            m.extend([Model::CpmPositive, Model::CpmNegative, Model::CpmCombined]);
        }
        if self.ridge {
            m.push(Model::Ridge);
        }
        m
    }
}

/// Metrics of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub r: f64,
    pub r2: f64,
    pub mae: f64,
}

#[derive(Debug, Clone)]
pub struct ModelResult {
    pub model: Model,
    /// Means over repeats.
    pub metrics: Metrics,
    /// One per repeat.
    pub per_repeat: Vec<Metrics>,
    /// Permutation p-values (NaN without permutations).
    pub p_r: f64,
    pub p_r2: f64,
    pub p_mae: f64,
    /// Null distribution of the mean r.
    pub null_r: Vec<f64>,
    /// Mean over repeats of each subject's out-of-fold prediction.
    pub predictions: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct CvResult {
    pub models: Vec<ModelResult>,
    /// Per feature: fraction of the repeats × folds in which it entered the positive / negative
    /// CPM network, and its mean training correlation with the outcome.
    pub selected_positive: Vec<f64>,
    pub selected_negative: Vec<f64>,
    pub mean_r: Vec<f64>,
    /// Per feature: mean ridge coefficient (standardised feature, outcome units).
    pub ridge_weight: Vec<f64>,
    /// Ridge penalties chosen, one per repeat × fold (repeat-major).
    pub alphas_chosen: Vec<f64>,
    /// CPM folds whose network was empty: (positive, negative).
    pub empty_networks: (usize, usize),
    /// Mean over repeats of each subject's confound-residualised outcome (the prediction target).
    pub targets: Vec<f64>,
}

/// Fold index of every subject for one repeat.
pub fn assign_folds(n: usize, k: usize, groups: Option<&[String]>, rng: &mut Rng) -> Vec<usize> {
    match groups {
        None => {
            let mut order: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut order);
            let mut fold = vec![0; n];
            for (position, &i) in order.iter().enumerate() {
                fold[i] = position % k;
            }
            fold
        }
        Some(groups) => {
            let mut names: Vec<&str> = groups.iter().map(String::as_str).collect();
            names.sort_unstable();
            names.dedup();
            rng.shuffle(&mut names);
            let mut size = vec![0usize; k];
            let mut fold_of = std::collections::HashMap::new();
            let mut count = std::collections::HashMap::<&str, usize>::new();
            for g in groups {
                *count.entry(g.as_str()).or_default() += 1;
            }
            for g in names {
                let f = (0..k).min_by_key(|&f| (size[f], f)).expect("k > 0");
                size[f] += count[g];
                fold_of.insert(g, f);
            }
            groups.iter().map(|g| fold_of[g.as_str()]).collect()
        }
    }
}

/// What a training/test pair shares across permutations: residualised, standardised features,
/// the confound solve for the outcome, and the ridge SVD.
struct Fold {
    train: Vec<usize>,
    test: Vec<usize>,
    /// [1, confounds] of the training and test parts, column-major.
    c_train: Vec<f64>,
    c_test: Vec<f64>,
    gram: Vec<f64>,
    k: usize,
    /// Standardised feature residuals, column-major.
    x_train: Vec<f64>,
    x_test: Vec<f64>,
    df: f64,
    ridge: Option<RidgeFold>,
}

struct RidgeFold {
    /// n_train × m, column-major.
    u: Vec<f64>,
    s: Vec<f64>,
    /// p × m, column-major.
    v: Vec<f64>,
    /// n_test × m: X_test·V.
    a: Vec<f64>,
    /// n_train × alphas: leverages.
    leverage: Vec<f64>,
}

fn with_intercept(c: &[f64], n: usize, rows: &[usize]) -> (Vec<f64>, usize) {
    let k = c.len() / n.max(1) + 1;
    let mut out = Vec::with_capacity(rows.len() * k);
    out.extend(std::iter::repeat_n(1.0, rows.len()));
    for j in 0..k - 1 {
        out.extend(rows.iter().map(|&i| c[j * n + i]));
    }
    (out, k)
}

fn gather(x: &[f64], n: usize, p: usize, rows: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len() * p);
    for j in 0..p {
        let col = &x[j * n..(j + 1) * n];
        out.extend(rows.iter().map(|&i| col[i]));
    }
    out
}

/// `a` (n × m) · `b` (m × q), all column-major.
fn matmul_nn(a: &[f64], b: &[f64], n: usize, m: usize, q: usize) -> Vec<f64> {
    use faer::{Accum, MatMut, MatRef, Par};
    let mut out = vec![0.0; n * q];
    if n == 0 || m == 0 || q == 0 {
        return out;
    }
    let a = MatRef::from_column_major_slice(a, n, m);
    let b = MatRef::from_column_major_slice(b, m, q);
    let dst = MatMut::from_column_major_slice_mut(&mut out, n, q);
    faer::linalg::matmul::matmul(dst, Accum::Replace, a, b, 1.0, Par::Seq);
    out
}

impl Fold {
    /// Build from raw training and test parts (features n × p column-major, confounds n × c).
    #[allow(clippy::too_many_arguments)]
    fn new(
        x_train: &[f64],
        c_train: &[f64],
        n_train: usize,
        x_test: &[f64],
        c_test: &[f64],
        n_test: usize,
        p: usize,
        settings: &Settings,
        train: Vec<usize>,
        test: Vec<usize>,
    ) -> Result<Fold, String> {
        let all_train: Vec<usize> = (0..n_train).collect();
        let all_test: Vec<usize> = (0..n_test).collect();
        let (ct, k) = with_intercept(c_train, n_train, &all_train);
        let (cs, _) = with_intercept(c_test, n_test, &all_test);
        if n_train < k + 3 {
            return Err(format!("a training fold of {n_train} subjects is too small for {} confounds", k - 1));
        }
        // Symmetric, so its column-major layout is also the row-major one `cholesky_solve` takes.
        let gram = matmul_tn(&ct, &ct, n_train, k, k);
        let ctx = matmul_tn(&ct, x_train, n_train, k, p);
        let mut xt = x_train.to_vec();
        let mut xs = x_test.to_vec();
        for j in 0..p {
            let b = cholesky_solve(&gram, k, &ctx[j * k..(j + 1) * k])
                .ok_or_else(|| "the confounds are collinear in a training fold".to_string())?;
            let col_t = &mut xt[j * n_train..(j + 1) * n_train];
            for (i, v) in col_t.iter_mut().enumerate() {
                *v -= (0..k).map(|q| ct[q * n_train + i] * b[q]).sum::<f64>();
            }
            let col_s = &mut xs[j * n_test..(j + 1) * n_test];
            for (i, v) in col_s.iter_mut().enumerate() {
                *v -= (0..k).map(|q| cs[q * n_test + i] * b[q]).sum::<f64>();
            }
            let (mean, sd) = super::mean_sd(col_t);
            let scale = if sd > 1e-12 * (1.0 + mean.abs()) { 1.0 / sd } else { 0.0 };
            for v in col_t.iter_mut() {
                *v = (*v - mean) * scale;
            }
            for v in col_s.iter_mut() {
                *v = (*v - mean) * scale;
            }
        }
        let ridge = if settings.ridge {
            let xm = M::from_fn(n_train, p, |i, j| xt[j * n_train + i]);
            let (u, s, v) = xm.svd().ok_or_else(|| "the ridge SVD did not converge".to_string())?;
            let m = s.len();
            let u_cm: Vec<f64> =
                (0..m).flat_map(|j| (0..n_train).map(move |i| (i, j))).map(|(i, j)| u.at(i, j)).collect();
            let v_cm: Vec<f64> = (0..m).flat_map(|j| (0..p).map(move |i| (i, j))).map(|(i, j)| v.at(i, j)).collect();
            let a = matmul_nn(&xs, &v_cm, n_test, p, m);
            let mut leverage = vec![0.0; n_train * settings.alphas.len()];
            for (ai, &alpha) in settings.alphas.iter().enumerate() {
                let out = &mut leverage[ai * n_train..(ai + 1) * n_train];
                for (i, h) in out.iter_mut().enumerate() {
                    *h = 1.0 / n_train as f64
                        + (0..m)
                            .map(|j| {
                                let uij = u_cm[j * n_train + i];
                                uij * uij * s[j] * s[j] / (s[j] * s[j] + alpha)
                            })
                            .sum::<f64>();
                }
            }
            Some(RidgeFold { u: u_cm, s, v: v_cm, a, leverage })
        } else {
            None
        };
        Ok(Fold {
            train,
            test,
            c_train: ct,
            c_test: cs,
            gram,
            k,
            x_train: xt,
            x_test: xs,
            df: (n_train as f64) - 2.0 - (k as f64 - 1.0),
            ridge,
        })
    }

    fn n_train(&self) -> usize {
        self.c_train.len() / self.k
    }

    fn n_test(&self) -> usize {
        self.c_test.len() / self.k
    }

    /// Residualise the outcome parts on the training confounds.
    fn outcome(&self, y_train: &[f64], y_test: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (nt, ns, k) = (self.n_train(), self.n_test(), self.k);
        let cty = matmul_tn(&self.c_train, y_train, nt, k, 1);
        let b = cholesky_solve(&self.gram, k, &cty).expect("the Gram matrix was factorised when the fold was built");
        let fit = |c: &[f64], n: usize, i: usize| (0..k).map(|q| c[q * n + i] * b[q]).sum::<f64>();
        let yt = (0..nt).map(|i| y_train[i] - fit(&self.c_train, nt, i)).collect();
        let ys = (0..ns).map(|i| y_test[i] - fit(&self.c_test, ns, i)).collect();
        (yt, ys)
    }

    /// Test-part predictions of every model for one outcome vector; with `record`, also the
    /// selection and weights.
    fn predict(
        &self,
        yt: &[f64],
        models: &[Model],
        settings: &Settings,
        r_critical: f64,
        mut record: Option<&mut Record>,
    ) -> Vec<Vec<f64>> {
        let (nt, ns) = (self.n_train(), self.n_test());
        let p = self.x_train.len() / nt.max(1);
        let mut out = Vec::with_capacity(models.len());
        // (positive, negative) network strengths in the training and test parts.
        let mut strengths: Option<[Vec<f64>; 4]> = None;
        if settings.cpm {
            let xty = matmul_tn(&self.x_train, yt, nt, p, 1);
            let yy = dot(yt, yt);
            let scale = ((nt as f64 - 1.0) * yy).sqrt();
            let (mut pos_t, mut neg_t) = (vec![0.0; nt], vec![0.0; nt]);
            let (mut pos_s, mut neg_s) = (vec![0.0; ns], vec![0.0; ns]);
            let (mut any_pos, mut any_neg) = (false, false);
            for (e, &v) in xty.iter().enumerate() {
                let r = if scale > 0.0 { v / scale } else { 0.0 };
                if let Some(rec) = record.as_deref_mut() {
                    rec.sum_r[e] += r;
                }
                let (ts, ss, flag) = if r > r_critical {
                    (&mut pos_t, &mut pos_s, &mut any_pos)
                } else if r < -r_critical {
                    (&mut neg_t, &mut neg_s, &mut any_neg)
                } else {
                    continue;
                };
                *flag = true;
                if let Some(rec) = record.as_deref_mut() {
                    if r > 0.0 {
                        rec.positive[e] += 1;
                    } else {
                        rec.negative[e] += 1;
                    }
                }
                for (a, b) in ts.iter_mut().zip(&self.x_train[e * nt..(e + 1) * nt]) {
                    *a += b;
                }
                for (a, b) in ss.iter_mut().zip(&self.x_test[e * ns..(e + 1) * ns]) {
                    *a += b;
                }
            }
            if let Some(rec) = record.as_deref_mut() {
                rec.empty.0 += usize::from(!any_pos);
                rec.empty.1 += usize::from(!any_neg);
            }
            strengths = Some([pos_t, neg_t, pos_s, neg_s]);
        }
        let ridge = self.ridge.as_ref().map(|rf| {
            let m = rf.s.len();
            let z = matmul_tn(&rf.u, yt, nt, m, 1);
            let alphas = &settings.alphas;
            let shrunk: Vec<f64> = alphas
                .iter()
                .flat_map(|&a| (0..m).map(move |j| (a, j)))
                .map(|(a, j)| z[j] * rf.s[j] * rf.s[j] / (rf.s[j] * rf.s[j] + a))
                .collect();
            let fitted = matmul_nn(&rf.u, &shrunk, nt, m, alphas.len());
            let mut best = (f64::INFINITY, 0);
            for ai in 0..alphas.len() {
                let press: f64 = (0..nt)
                    .map(|i| {
                        let e = (yt[i] - fitted[ai * nt + i]) / (1.0 - rf.leverage[ai * nt + i]);
                        e * e
                    })
                    .sum();
                if press < best.0 {
                    best = (press, ai);
                }
            }
            let alpha = alphas[best.1];
            let coef: Vec<f64> = (0..m).map(|j| z[j] * rf.s[j] / (rf.s[j] * rf.s[j] + alpha)).collect();
            if let Some(rec) = record {
                rec.alphas.push(alpha);
                let w = matmul_nn(&rf.v, &coef, p, m, 1);
                for (a, b) in rec.weight.iter_mut().zip(&w) {
                    *a += b;
                }
            }
            matmul_nn(&rf.a, &coef, ns, m, 1)
        });
        let mean_t = yt.iter().sum::<f64>() / nt as f64;
        for &model in models {
            let prediction = match model {
                Model::Ridge => ridge.clone().expect("ridge fold prepared"),
                cpm => {
                    let [pos_t, neg_t, pos_s, neg_s] = strengths.as_ref().expect("cpm strengths computed");
                    let (st, ss): (Vec<f64>, Vec<f64>) = match cpm {
                        Model::CpmPositive => (pos_t.clone(), pos_s.clone()),
                        Model::CpmNegative => (neg_t.clone(), neg_s.clone()),
                        _ => (
                            pos_t.iter().zip(neg_t).map(|(a, b)| a - b).collect(),
                            pos_s.iter().zip(neg_s).map(|(a, b)| a - b).collect(),
                        ),
                    };
                    linear_fit_predict(&st, yt, &ss, mean_t)
                }
            };
            out.push(prediction);
        }
        out
    }
}

/// OLS of y on s (with intercept) in training, applied to the test strengths; a constant
/// strength predicts the training mean.
fn linear_fit_predict(s: &[f64], y: &[f64], s_test: &[f64], y_mean: f64) -> Vec<f64> {
    let n = s.len() as f64;
    let s_mean = s.iter().sum::<f64>() / n;
    let sxx: f64 = s.iter().map(|v| (v - s_mean) * (v - s_mean)).sum();
    let sxy: f64 = s.iter().zip(y).map(|(a, b)| (a - s_mean) * (b - y_mean)).sum();
    if !(sxx > 1e-12 * n) {
        return vec![y_mean; s_test.len()];
    }
    let slope = sxy / sxx;
    s_test.iter().map(|v| y_mean + slope * (v - s_mean)).collect()
}

struct Record {
    positive: Vec<usize>,
    negative: Vec<usize>,
    sum_r: Vec<f64>,
    weight: Vec<f64>,
    alphas: Vec<f64>,
    empty: (usize, usize),
}

pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa > 0.0 && sbb > 0.0 { sab / (saa * sbb).sqrt() } else { 0.0 }
}

pub fn metrics(prediction: &[f64], target: &[f64]) -> Metrics {
    let n = target.len() as f64;
    let mean = target.iter().sum::<f64>() / n;
    let ss_tot: f64 = target.iter().map(|t| (t - mean) * (t - mean)).sum();
    let ss_res: f64 = target.iter().zip(prediction).map(|(t, p)| (t - p) * (t - p)).sum();
    let mae = target.iter().zip(prediction).map(|(t, p)| (t - p).abs()).sum::<f64>() / n;
    Metrics { r: pearson(prediction, target), r2: 1.0 - ss_res / ss_tot, mae }
}

/// Critical |r| for a two-sided p threshold with `df` degrees of freedom.
fn critical_r(p: f64, df: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let t = StudentsT::new(0.0, 1.0, df).map(|d| d.inverse_cdf(1.0 - p / 2.0)).unwrap_or(f64::INFINITY);
    t / (t * t + df).sqrt()
}

/// Fewest subjects for `folds`-fold cross-validation (two per fold).
pub fn min_subjects(folds: usize) -> usize {
    2 * folds
}

/// Repeated k-fold cross-validation with permutation p-values. `groups` keeps groups (families)
/// within one fold.
pub fn cross_validate(data: &Data<'_>, groups: Option<&[String]>, settings: &Settings) -> Result<CvResult, String> {
    let (n, p) = (data.n, data.p);
    let k = settings.folds;
    if k < 2 {
        return Err(format!("cross-validation needs at least 2 folds (got {k})"));
    }
    if n < min_subjects(k) {
        return Err(format!(
            "{n} subjects are too few for {k}-fold cross-validation (need at least {})",
            min_subjects(k)
        ));
    }
    let models = settings.models();
    if models.is_empty() {
        return Err("no model selected (enable cpm and/or ridge)".into());
    }
    // Folds of every repeat, built once.
    let mut repeats: Vec<Vec<Fold>> = Vec::with_capacity(settings.repeats);
    for r in 0..settings.repeats {
        let mut rng = Rng::derived(settings.seed, &format!("repeat/{r}"));
        let assignment = assign_folds(n, k, groups, &mut rng);
        let folds: Result<Vec<Fold>, String> = (0..k)
            .into_par_iter()
            .map(|f| {
                let train: Vec<usize> = (0..n).filter(|&i| assignment[i] != f).collect();
                let test: Vec<usize> = (0..n).filter(|&i| assignment[i] == f).collect();
                if test.is_empty() {
                    return Err(format!("fold {} of repeat {} is empty: groups too large for {k} folds", f + 1, r + 1));
                }
                Fold::new(
                    &gather(data.x, n, p, &train),
                    &gather(data.confounds, n, data.c, &train),
                    train.len(),
                    &gather(data.x, n, p, &test),
                    &gather(data.confounds, n, data.c, &test),
                    test.len(),
                    p,
                    settings,
                    train,
                    test,
                )
            })
            .collect();
        repeats.push(folds?);
    }
    let run = |y: &[f64], mut record: Option<&mut Record>| -> (Vec<Vec<Metrics>>, Vec<Vec<f64>>, Vec<f64>) {
        // Per model: per-repeat metrics, and the mean prediction per subject.
        let mut per_model = vec![Vec::with_capacity(repeats.len()); models.len()];
        let mut mean_pred = vec![vec![0.0; n]; models.len()];
        let mut mean_target = vec![0.0; n];
        for folds in &repeats {
            let mut pred = vec![vec![0.0; n]; models.len()];
            let mut target = vec![0.0; n];
            for fold in folds {
                let y_train: Vec<f64> = fold.train.iter().map(|&i| y[i]).collect();
                let y_test: Vec<f64> = fold.test.iter().map(|&i| y[i]).collect();
                let (yt, ys) = fold.outcome(&y_train, &y_test);
                let rc = critical_r(settings.cpm_p, fold.df);
                let preds = fold.predict(&yt, &models, settings, rc, record.as_deref_mut());
                for (m, values) in preds.iter().enumerate() {
                    for (&i, v) in fold.test.iter().zip(values) {
                        pred[m][i] = *v;
                    }
                }
                for (&i, v) in fold.test.iter().zip(&ys) {
                    target[i] = *v;
                }
            }
            for m in 0..models.len() {
                per_model[m].push(metrics(&pred[m], &target));
                for i in 0..n {
                    mean_pred[m][i] += pred[m][i] / repeats.len() as f64;
                }
            }
            for i in 0..n {
                mean_target[i] += target[i] / repeats.len() as f64;
            }
        }
        (per_model, mean_pred, mean_target)
    };
    let mut record = Record {
        positive: vec![0; p],
        negative: vec![0; p],
        sum_r: vec![0.0; p],
        weight: vec![0.0; p],
        alphas: Vec::new(),
        empty: (0, 0),
    };
    let (observed, predictions, targets) = run(data.y, Some(&mut record));
    let mean_of = |ms: &[Metrics]| {
        let c = ms.len() as f64;
        Metrics {
            r: ms.iter().map(|m| m.r).sum::<f64>() / c,
            r2: ms.iter().map(|m| m.r2).sum::<f64>() / c,
            mae: ms.iter().map(|m| m.mae).sum::<f64>() / c,
        }
    };
    let null: Vec<Vec<Metrics>> = (0..settings.permutations)
        .into_par_iter()
        .map(|b| {
            let mut rng = Rng::derived(settings.permutation_seed, &format!("permutation/{b}"));
            let order = settings.exchange.permutation(&mut rng, n);
            let y: Vec<f64> = order.iter().map(|&i| data.y[i as usize]).collect();
            let (per_model, _, _) = run(&y, None);
            per_model.iter().map(|ms| mean_of(ms)).collect()
        })
        .collect();
    let folds_total = (settings.repeats * k) as f64;
    let tolerance = |x: f64| 1e-10 * x.abs().max(1e-300);
    let results = models
        .iter()
        .enumerate()
        .map(|(m, &model)| {
            let metrics = mean_of(&observed[m]);
            let count = |f: &dyn Fn(&Metrics) -> bool| null.iter().filter(|ms| f(&ms[m])).count();
            let b = settings.permutations as f64;
            let p_of = |c: usize| if settings.permutations == 0 { f64::NAN } else { (1.0 + c as f64) / (1.0 + b) };
            ModelResult {
                model,
                metrics,
                per_repeat: observed[m].clone(),
                p_r: p_of(count(&|x| x.r >= metrics.r - tolerance(metrics.r))),
                p_r2: p_of(count(&|x| x.r2 >= metrics.r2 - tolerance(metrics.r2))),
                p_mae: p_of(count(&|x| x.mae <= metrics.mae + tolerance(metrics.mae))),
                null_r: null.iter().map(|ms| ms[m].r).collect(),
                predictions: predictions[m].clone(),
            }
        })
        .collect();
    let ridge_folds = if settings.ridge { folds_total } else { f64::NAN };
    Ok(CvResult {
        models: results,
        selected_positive: record.positive.iter().map(|&c| c as f64 / folds_total).collect(),
        selected_negative: record.negative.iter().map(|&c| c as f64 / folds_total).collect(),
        mean_r: record.sum_r.iter().map(|s| s / folds_total).collect(),
        ridge_weight: record.weight.iter().map(|w| w / ridge_folds).collect(),
        alphas_chosen: record.alphas,
        empty_networks: record.empty,
        targets,
    })
}

/// One model's performance on new subjects.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub model: Model,
    pub metrics: Metrics,
    /// Fisher-z confidence interval of r.
    pub r_ci: (f64, f64),
    /// Parametric one-sided p of r > 0 (the model was fixed before seeing these subjects).
    pub p: f64,
    pub predictions: Vec<f64>,
}

/// A model trained once and applied to new subjects.
#[derive(Debug, Clone)]
pub struct HeldOut {
    pub results: Vec<TestResult>,
    /// The test subjects' outcomes, confound-residualised with the training coefficients.
    pub targets: Vec<f64>,
    /// The ridge penalty chosen on the training subjects.
    pub alpha: Option<f64>,
}

/// Fit on `train` and apply once to `test`.
pub fn train_and_test(
    train: &Data<'_>,
    test: &Data<'_>,
    settings: &Settings,
    ci_level: f64,
) -> Result<HeldOut, String> {
    let models = settings.models();
    let fold = Fold::new(
        train.x,
        train.confounds,
        train.n,
        test.x,
        test.confounds,
        test.n,
        train.p,
        settings,
        (0..train.n).collect(),
        (0..test.n).collect(),
    )?;
    let (yt, ys) = fold.outcome(train.y, test.y);
    let mut record = Record {
        positive: vec![0; train.p],
        negative: vec![0; train.p],
        sum_r: vec![0.0; train.p],
        weight: vec![0.0; train.p],
        alphas: Vec::new(),
        empty: (0, 0),
    };
    let preds = fold.predict(&yt, &models, settings, critical_r(settings.cpm_p, fold.df), Some(&mut record));
    let results = models
        .iter()
        .zip(preds)
        .map(|(&model, prediction)| {
            let m = metrics(&prediction, &ys);
            let (r_ci, p) = r_interval(m.r, test.n, ci_level);
            TestResult { model, metrics: m, r_ci, p, predictions: prediction }
        })
        .collect();
    Ok(HeldOut { results, targets: ys, alpha: record.alphas.first().copied() })
}

/// Fisher-z interval of a correlation from n subjects, and the one-sided p of r > 0 (t test).
pub fn r_interval(r: f64, n: usize, level: f64) -> ((f64, f64), f64) {
    use statrs::distribution::{ContinuousCDF, Normal};
    let z = Normal::standard().inverse_cdf(0.5 + level / 2.0);
    let se = 1.0 / (n as f64 - 3.0).sqrt();
    let centre = r.clamp(-0.999_999_999, 0.999_999_999).atanh();
    let df = n as f64 - 2.0;
    let t = r * (df / (1.0 - r * r).max(1e-300)).sqrt();
    let two_sided = super::t_two_sided_p(t, df);
    let p = if r > 0.0 { two_sided / 2.0 } else { 1.0 - two_sided / 2.0 };
    (((centre - z * se).tanh(), (centre + z * se).tanh()), p)
}
