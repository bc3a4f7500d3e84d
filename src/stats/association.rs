//! Mass-univariate association: for each feature, OLS of the z-scored outcome on the z-scored
//! feature plus covariates, with permutation p-values and bootstrap percentile CIs.
//!
//! # Method
//!
//! Let y be the outcome and x a feature, both z-scored (ddof = 1), and D = [1, covariate terms].
//! By Frisch–Waugh–Lovell the coefficient of x in `y ~ x + D` is β = (x̃·ẽ)/(x̃·x̃), where
//! x̃ = (I − H)x and ẽ = (I − H)y are residuals on D (H the hat matrix of D). Because the variables
//! are z-scored, β is the standardised β. SE = √(RSS/df / x̃·x̃) with RSS = ẽ·ẽ − (x̃·ẽ)²/(x̃·x̃) and
//! df = n − k − 1 (k columns in D); t = β/SE; p is two-sided from Student's t.
//!
//! # Permutations (shared across all tests)
//!
//! One set of B permutations of the subjects is drawn per sample (from the study seed and the
//! sample's name) and used for every feature and every outcome, so that tests stay comparable
//! and the max-statistic is well defined. Under the Freedman–Lane scheme (default) the permuted
//! data are y* = Hy + Pẽ: the covariates-only model's residuals are permuted and its fitted values
//! added back; under Manly's scheme y* = Py. Either way, since x̃ is orthogonal to D,
//! x̃·(I − H)y* = x̃·v with v = Pẽ (or Py), and ‖(I − H)y*‖² = ‖v‖² − ‖Qᵀv‖². So one matrix product
//! X̃ᵀV per block of permutations gives every feature's partial correlation r² = (x̃·v)²/(x̃·x̃ ‖(I−H)v‖²),
//! which is monotone in t² (df is common to all features). The permutation p is
//! (1 + #{b: r²_b ≥ r²_obs})/(1 + B); the family-wise p of a feature uses the maximum r² over all
//! features of the outcome in each permutation. Ties are counted with a relative tolerance of
//! 1e-10 so that the identity permutation always counts. With exchangeability blocks
//! (`stats::exchange`) the permutations only rearrange subjects as the blocks allow.
//!
//! # Bootstrap
//!
//! Each resample draws n subjects with replacement (its own seeded stream, so resamples do not
//! depend on each other or on threads) and refits the same model on the resample as weighted
//! least squares with integer weights (equivalent to duplicating rows), re-standardising x and y
//! within the resample. The interval is the percentile interval of the resampled β (numpy's
//! linear quantile). Resamples in which the covariates are singular are counted and skipped.

use super::linalg::{cholesky_solve, dot, matmul_tn, orthonormal_basis, residualise};
use super::quantile::percentile_interval;
use super::rng::Rng;
use super::t_two_sided_p;
use rayon::prelude::*;

/// How labels are permuted for the permutation p-values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PermutationScheme {
    /// Permute the residuals of the outcome under the covariates-only model, add back the fitted
    /// values (Freedman & Lane 1983; exact-size under exchangeable errors, Winkler et al. 2014).
    #[default]
    FreedmanLane,
    /// Permute the outcome itself (Manly 1986).
    Manly,
}

/// Fewest subjects for a model with `covariates` covariate terms, an intercept and the feature
/// (two residual degrees of freedom beyond the parameters).
pub fn min_subjects(covariates: usize) -> usize {
    covariates + 4
}

/// Data for one outcome in one sample.
pub struct Input<'a> {
    pub y: &'a [f64],
    /// n × F, column-major.
    pub features: &'a [f64],
    pub feature_names: &'a [String],
    /// n × c, column-major (covariate terms, already formed).
    pub covariates: &'a [f64],
    pub covariate_names: &'a [String],
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub permutations: usize,
    pub scheme: PermutationScheme,
    pub permutation_seed: u64,
    pub bootstrap: usize,
    pub bootstrap_seed: u64,
    pub ci_level: f64,
    /// Which permutations are allowed (exchangeability blocks).
    pub exchange: super::exchange::Exchange,
    /// Sets of features (edges) whose mean β is tested as one statistic per set (region), with
    /// the same permutations as the features.
    pub region_means: Vec<RegionEdges>,
}

/// The features (edges) of one region, by index into the input's features.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionEdges {
    pub name: String,
    pub features: Vec<usize>,
}

/// The mean β over a region's edges. Its permutation p compares |mean β*| of each shared
/// permutation (β* = x̃·v / x̃·x̃, the permuted outcome's β) with the observed |mean β|; `p_fwe`
/// uses the maximum |mean β*| over the regions of the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionStats {
    pub name: String,
    pub edges: usize,
    pub mean_beta: f64,
    pub p_perm: f64,
    pub p_fwe: f64,
}

/// Everything one association computes.
#[derive(Debug, Clone, PartialEq)]
pub struct Association {
    pub features: Vec<FeatureStats>,
    pub regions: Vec<RegionStats>,
    /// Each bootstrap resample's β of every feature, in resample order; `None` where the resample
    /// was skipped (singular design). Resample b draws the same subjects for every outcome of a
    /// sample (the stream depends on the seed and b only), so two outcomes' vectors are paired.
    pub bootstrap: Vec<Option<Vec<f64>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    pub n: usize,
    pub beta: f64,
    pub se: f64,
    pub t: f64,
    pub p: f64,
    pub p_perm: f64,
    pub p_fwe: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Bootstrap resamples skipped because the design was singular in them.
    pub boot_skipped: usize,
}

const PERMUTATION_BLOCK: usize = 128;
const BOOTSTRAP_BLOCK: usize = 16;
const TIE_TOLERANCE: f64 = 1e-10;

fn zscored(v: &[f64]) -> Option<Vec<f64>> {
    let (mean, sd) = super::mean_sd(v);
    (sd > 0.0 && sd.is_finite()).then(|| v.iter().map(|x| (x - mean) / sd).collect())
}

/// Run the association; `progress` is told how many permutations/resamples finished.
pub fn associate(
    input: &Input<'_>,
    settings: &Settings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<FeatureStats>, String> {
    associate_all(input, settings, progress).map(|a| a.features)
}

/// [`associate`] with the region means and the bootstrap resamples.
pub fn associate_all(
    input: &Input<'_>,
    settings: &Settings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Association, String> {
    let n = input.y.len();
    let f = input.feature_names.len();
    let c = input.covariate_names.len();
    let k = c + 1;
    if n < min_subjects(c) {
        return Err(format!(
            "only {n} subjects for {k} model terms plus the feature; need at least {}",
            min_subjects(c)
        ));
    }
    let y = zscored(input.y).ok_or("the outcome has zero variance in this sample")?;
    let mut x = Vec::with_capacity(n * f);
    for (j, name) in input.feature_names.iter().enumerate() {
        let z = zscored(&input.features[j * n..(j + 1) * n])
            .ok_or_else(|| format!("feature `{name}` has zero variance in this sample"))?;
        x.extend(z);
    }
    let mut design = vec![1.0; n];
    design.extend_from_slice(input.covariates);
    let q = orthonormal_basis(&design, n, k).map_err(|j| {
        if j == 0 {
            "the model has no usable intercept".to_string()
        } else {
            format!(
                "covariate term `{}` is constant or a linear combination of the other terms in this sample",
                input.covariate_names[j - 1]
            )
        }
    })?;

    let mut xr = x.clone();
    residualise(&q, n, k, &mut xr, f);
    let mut e = y.clone();
    residualise(&q, n, k, &mut e, 1);
    let ee = dot(&e, &e);
    let df = (n - k - 1) as f64;
    let sxx: Vec<f64> = (0..f).map(|j| dot(&xr[j * n..(j + 1) * n], &xr[j * n..(j + 1) * n])).collect();
    let sxy = matmul_tn(&xr, &e, n, f, 1);
    for (j, s) in sxx.iter().enumerate() {
        if !(*s > 1e-12 * n as f64) {
            return Err(format!(
                "feature `{}` is explained entirely by the covariates in this sample",
                input.feature_names[j]
            ));
        }
    }
    let r2_obs: Vec<f64> = (0..f).map(|j| sxy[j] * sxy[j] / (sxx[j] * ee)).collect();

    let betas: Vec<f64> = (0..f).map(|j| sxy[j] / sxx[j]).collect();
    let region_obs: Vec<f64> = settings.region_means.iter().map(|r| region_mean(&betas, &r.features)).collect();
    for region in &settings.region_means {
        if region.features.is_empty() || region.features.iter().any(|&j| j >= f) {
            return Err(format!("region `{}` has no edges among the features", region.name));
        }
    }
    let counts = if settings.permutations > 0 {
        let base = match settings.scheme {
            PermutationScheme::FreedmanLane => &e,
            PermutationScheme::Manly => &y,
        };
        let observed = Observed { r2: &r2_obs, regions: &region_obs };
        permutation_counts(&xr, &sxx, &observed, base, &q, n, k, settings, progress)
    } else {
        Counts::zero(f, region_obs.len())
    };

    let resamples =
        if settings.bootstrap > 0 { bootstrap_betas(&x, &y, &design, n, k, f, settings, progress) } else { Vec::new() };
    let skipped = resamples.iter().filter(|r| r.is_none()).count();
    let mut boot = vec![Vec::with_capacity(settings.bootstrap); f];
    for values in resamples.iter().flatten() {
        for (j, v) in values.iter().enumerate() {
            boot[j].push(*v);
        }
    }

    let b = settings.permutations as f64;
    let perm = |count: usize| if settings.permutations > 0 { (1.0 + count as f64) / (1.0 + b) } else { f64::NAN };
    let regions = settings
        .region_means
        .iter()
        .zip(&region_obs)
        .enumerate()
        .map(|(r, (region, &mean_beta))| RegionStats {
            name: region.name.clone(),
            edges: region.features.len(),
            mean_beta,
            p_perm: perm(counts.region_exceed[r]),
            p_fwe: perm(counts.region_exceed_max[r]),
        })
        .collect();
    let (exceed, exceed_max) = (counts.exceed, counts.exceed_max);
    let features = (0..f)
        .map(|j| {
            let beta = sxy[j] / sxx[j];
            let rss = (ee - sxy[j] * sxy[j] / sxx[j]).max(0.0);
            let se = (rss / df / sxx[j]).sqrt();
            let t = beta / se;
            let (ci_low, ci_high) = if boot[j].is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                percentile_interval(&mut boot[j].clone(), settings.ci_level)
            };
            FeatureStats {
                n,
                beta,
                se,
                t,
                p: t_two_sided_p(t, df),
                p_perm: perm(exceed[j]),
                p_fwe: perm(exceed_max[j]),
                ci_low,
                ci_high,
                boot_skipped: skipped,
            }
        })
        .collect();
    Ok(Association { features, regions, bootstrap: resamples })
}

fn region_mean(betas: &[f64], features: &[usize]) -> f64 {
    features.iter().map(|&j| betas[j]).sum::<f64>() / features.len() as f64
}

/// Observed statistics the permutations are compared with.
struct Observed<'a> {
    r2: &'a [f64],
    /// Mean β per region.
    regions: &'a [f64],
}

/// Exceedance counts: per feature, per feature of the maximum, per region, per region of the
/// maximum over regions.
struct Counts {
    exceed: Vec<usize>,
    exceed_max: Vec<usize>,
    region_exceed: Vec<usize>,
    region_exceed_max: Vec<usize>,
}

impl Counts {
    fn zero(features: usize, regions: usize) -> Counts {
        Counts {
            exceed: vec![0; features],
            exceed_max: vec![0; features],
            region_exceed: vec![0; regions],
            region_exceed_max: vec![0; regions],
        }
    }

    fn add(&mut self, other: &Counts) {
        let pairs = [
            (&mut self.exceed, &other.exceed),
            (&mut self.exceed_max, &other.exceed_max),
            (&mut self.region_exceed, &other.region_exceed),
            (&mut self.region_exceed_max, &other.region_exceed_max),
        ];
        for (mine, theirs) in pairs {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
    }
}

/// Per feature: how many permutations reach its observed r², and how many permutations' maximum
/// r² over features does; the same for the regions' |mean β|.
#[allow(clippy::too_many_arguments)]
fn permutation_counts(
    xr: &[f64],
    sxx: &[f64],
    observed: &Observed<'_>,
    base: &[f64],
    q: &[f64],
    n: usize,
    k: usize,
    settings: &Settings,
    progress: &(dyn Fn(u64) + Sync),
) -> Counts {
    let f = sxx.len();
    let r2_obs = observed.r2;
    let regions = &settings.region_means;
    let blocks: Vec<(usize, usize)> = (0..settings.permutations)
        .step_by(PERMUTATION_BLOCK)
        .map(|start| (start, (start + PERMUTATION_BLOCK).min(settings.permutations)))
        .collect();
    let per_block: Vec<Counts> = blocks
        .par_iter()
        .map(|&(start, end)| {
            let m = end - start;
            let mut v = vec![0.0; n * m];
            for (col, b) in (start..end).enumerate() {
                let perm = settings.exchange.permutation(&mut permutation_rng(settings.permutation_seed, b), n);
                let dst = &mut v[col * n..(col + 1) * n];
                for (d, &src) in dst.iter_mut().zip(&perm) {
                    *d = base[src as usize];
                }
            }
            let s = matmul_tn(xr, &v, n, f, m);
            let qv = matmul_tn(q, &v, n, k, m);
            let mut counts = Counts::zero(f, regions.len());
            let mut region_means = vec![0.0; regions.len()];
            for col in 0..m {
                let vv = dot(&v[col * n..(col + 1) * n], &v[col * n..(col + 1) * n]);
                let proj: f64 = qv[col * k..(col + 1) * k].iter().map(|a| a * a).sum();
                let resid = (vv - proj).max(f64::MIN_POSITIVE);
                let mut max_r2 = 0.0f64;
                for j in 0..f {
                    let sj = s[col * f + j];
                    let r2 = sj * sj / (sxx[j] * resid);
                    if r2 >= r2_obs[j] * (1.0 - TIE_TOLERANCE) {
                        counts.exceed[j] += 1;
                    }
                    max_r2 = max_r2.max(r2);
                }
                for (count, obs) in counts.exceed_max.iter_mut().zip(r2_obs) {
                    if max_r2 >= obs * (1.0 - TIE_TOLERANCE) {
                        *count += 1;
                    }
                }
                if regions.is_empty() {
                    continue;
                }
                let betas: Vec<f64> = (0..f).map(|j| s[col * f + j] / sxx[j]).collect();
                let mut max_mean = 0.0f64;
                for (mean, region) in region_means.iter_mut().zip(regions) {
                    *mean = region_mean(&betas, &region.features).abs();
                    max_mean = max_mean.max(*mean);
                }
                for (r, mean) in region_means.iter().enumerate() {
                    let reference = observed.regions[r].abs() * (1.0 - TIE_TOLERANCE);
                    counts.region_exceed[r] += usize::from(*mean >= reference);
                    counts.region_exceed_max[r] += usize::from(max_mean >= reference);
                }
            }
            progress(m as u64);
            counts
        })
        .collect();
    let mut total = Counts::zero(f, regions.len());
    for counts in &per_block {
        total.add(counts);
    }
    total
}

/// The stream of the b-th shared permutation. Every permutation is random (none is forced to be
/// the identity); the observed statistic enters p through the `1 +` in numerator and denominator.
pub fn permutation_rng(seed: u64, b: usize) -> Rng {
    Rng::derived(seed, &format!("permutation/{b}"))
}

/// Bootstrap counts (multiplicities) of resample `b`.
pub fn bootstrap_weights(seed: u64, b: usize, n: usize) -> Vec<f64> {
    let mut rng = Rng::derived(seed, &format!("bootstrap/{b}"));
    let mut w = vec![0.0; n];
    for _ in 0..n {
        w[rng.below(n)] += 1.0;
    }
    w
}

#[allow(clippy::too_many_arguments)]
fn bootstrap_betas(
    x: &[f64],
    y: &[f64],
    design: &[f64],
    n: usize,
    k: usize,
    f: usize,
    settings: &Settings,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<Option<Vec<f64>>> {
    let x2: Vec<f64> = x.iter().map(|v| v * v).collect();
    let blocks: Vec<(usize, usize)> = (0..settings.bootstrap)
        .step_by(BOOTSTRAP_BLOCK)
        .map(|start| (start, (start + BOOTSTRAP_BLOCK).min(settings.bootstrap)))
        .collect();
    let per_block: Vec<Vec<Option<Vec<f64>>>> = blocks
        .par_iter()
        .map(|&(start, end)| {
            let m = end - start;
            let weights: Vec<Vec<f64>> =
                (start..end).map(|b| bootstrap_weights(settings.bootstrap_seed, b, n)).collect();
            // Columns w⊙d_0 … w⊙d_{k-1}, w⊙y per resample.
            let width = k + 1;
            let mut weighted = vec![0.0; n * m * width];
            for (r, w) in weights.iter().enumerate() {
                for i in 0..k {
                    let dst = &mut weighted[(r * width + i) * n..(r * width + i + 1) * n];
                    for ((d, wv), dv) in dst.iter_mut().zip(w).zip(&design[i * n..(i + 1) * n]) {
                        *d = wv * dv;
                    }
                }
                let dst = &mut weighted[(r * width + k) * n..(r * width + k + 1) * n];
                for ((d, wv), yv) in dst.iter_mut().zip(w).zip(y) {
                    *d = wv * yv;
                }
            }
            let cross = matmul_tn(&weighted, x, n, m * width, f); // (m·width) × f
            let w_flat: Vec<f64> = weights.concat();
            let squares = matmul_tn(&w_flat, &x2, n, m, f); // m × f
            let design_cross = matmul_tn(&weighted, design, n, m * width, k); // (m·width) × k
            let rows = m * width;
            (0..m)
                .map(|r| {
                    // G = DᵀWD (k × k), v = DᵀWy, yy = yᵀWy.
                    let g: Vec<f64> =
                        (0..k * k).map(|idx| design_cross[(idx % k) * rows + r * width + idx / k]).collect();
                    let v: Vec<f64> = (0..k).map(|i| design_cross[i * rows + r * width + k]).collect();
                    let yy = dot(&weighted[(r * width + k) * n..(r * width + k + 1) * n], y);
                    let ginv_v = cholesky_solve(&g, k, &v)?;
                    let total = g[0];
                    let var_y = yy - v[0] * v[0] / total;
                    // G⁻¹ as k solves of unit vectors (k is small).
                    let mut ginv = vec![0.0; k * k];
                    for i in 0..k {
                        let mut unit = vec![0.0; k];
                        unit[i] = 1.0;
                        let col = cholesky_solve(&g, k, &unit)?;
                        for (p, value) in col.into_iter().enumerate() {
                            ginv[p * k + i] = value;
                        }
                    }
                    Some(
                        (0..f)
                            .map(|j| {
                                let u: Vec<f64> = (0..k).map(|i| cross[j * rows + r * width + i]).collect();
                                let xy = cross[j * rows + r * width + k];
                                let xx = squares[j * m + r];
                                let mut ginv_u = vec![0.0; k];
                                for p in 0..k {
                                    ginv_u[p] = (0..k).map(|i| ginv[p * k + i] * u[i]).sum();
                                }
                                let numerator = xy - dot(&u, &ginv_v);
                                let denominator = xx - dot(&u, &ginv_u);
                                let var_x = xx - u[0] * u[0] / total;
                                numerator / denominator * (var_x / var_y).sqrt()
                            })
                            .collect(),
                    )
                })
                .inspect(|_| progress(1))
                .collect()
        })
        .collect();
    per_block
        .into_iter()
        .flatten()
        .map(|resample| resample.filter(|values| values.iter().all(|v| v.is_finite())))
        .collect()
}
