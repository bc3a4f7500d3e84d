//! Exploratory factor analysis.
//!
//! * **Correlations** of complete item data (Pearson); missing values are an error — nothing
//!   is imputed.
//! * **Extraction** of k factors by minimum residual (minres: least squares on the correlation
//!   matrix, over the uniquenesses ψ), maximum likelihood, or principal components of the
//!   correlation matrix (`principal`). minres and ML minimise their objective over ψ ∈
//!   [0.005, 1] by projected gradient descent with Barzilai–Borwein steps from ψ = 1 − SMC;
//!   loadings follow from the eigendecomposition at the optimum (for ML of Ψ^{-1/2} R Ψ^{-1/2}).
//! * **Rotation**: varimax (Kaiser-normalised), promax (power 4, on normalised varimax), and by
//!   gradient projection (Jennrich 2002) oblimin(γ), quartimin (= oblimin γ 0) and geomin(δ).
//!   Oblique solutions report Φ = TᵀT, the factor correlations implied by the rotation.
//! * **Order and sign**: factors are ordered by variance explained (sum of squared loadings;
//!   for oblique solutions the diagonal of ΛΦΛᵀ's contribution) and each is flipped so that
//!   its largest-magnitude loading is positive.
//!
//! One file because extraction, rotation, scores, the count rules and the fit indices form one
//! model whose pieces call each other; splitting them would scatter one methods section.

use crate::stats::dense::M;

/// Extraction method (written `minres`, `ml` or `principal` in studies and on the command line).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Extraction {
    /// Minimum residual (least squares).
    #[default]
    #[value(name = "minres")]
    MinRes,
    /// Maximum likelihood (adds χ², TLI and RMSEA).
    Ml,
    /// Principal axis of the correlation matrix.
    Principal,
}

/// Rotation criterion. Its parameters (oblimin γ, geomin δ, promax power) are in
/// [`RotationParams`]; each criterion reads only its own.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    None,
    Varimax,
    Promax,
    #[default]
    Oblimin,
    Quartimin,
    /// Oblique geomin (GPArotation's `geominQ`); `geomin_obl` is the same.
    #[serde(alias = "geomin_obl")]
    #[value(alias = "geomin_obl")]
    Geomin,
    /// Quartimax (orthogonal).
    Quartimax,
    /// Equamax: orthogonal Crawford–Ferguson with κ = k / (2p), as psych's `equamax`.
    Equamax,
    /// Oblimax (oblique).
    Oblimax,
    /// Orthogonal geomin (GPArotation's `geominT`).
    #[serde(rename = "geomin_ort")]
    #[value(name = "geomin_ort")]
    GeominOrt,
    /// Bentler's invariant pattern simplicity, orthogonal (`bentlerT`).
    #[serde(rename = "bentler_ort")]
    #[value(name = "bentler_ort")]
    BentlerOrt,
    /// Bentler's criterion, oblique (`bentlerQ`).
    #[serde(rename = "bentler_obl")]
    #[value(name = "bentler_obl")]
    BentlerObl,
    /// Orthogonal least-squares rotation towards a target matrix (`targetT`; `target` names it).
    #[serde(rename = "target_ort")]
    #[value(name = "target_ort")]
    TargetOrt,
    /// Oblique rotation towards a target matrix (`targetQ`; `target` names it).
    #[serde(rename = "target_obl")]
    #[value(name = "target_obl")]
    TargetObl,
}

/// Promax's power (as psych and factor_analyzer).
pub const PROMAX_POWER: f64 = 4.0;
/// Geomin's δ (as GPArotation and factor_analyzer).
pub const GEOMIN_DELTA: f64 = 0.01;

/// The parameters of the rotation criteria.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationParams {
    /// Oblimin γ (0 = quartimin).
    pub gamma: f64,
    /// Geomin δ.
    pub delta: f64,
    /// Target rotation's target: items × factors, NaN where unspecified (a partial target).
    pub target: Option<M>,
}

impl Default for RotationParams {
    fn default() -> Self {
        RotationParams { gamma: 0.0, delta: GEOMIN_DELTA, target: None }
    }
}

impl Rotation {
    pub fn oblique(self) -> bool {
        matches!(
            self,
            Rotation::Promax
                | Rotation::Oblimin
                | Rotation::Quartimin
                | Rotation::Geomin
                | Rotation::Oblimax
                | Rotation::BentlerObl
                | Rotation::TargetObl
        )
    }

    /// Whether the criterion reads geomin's δ.
    pub fn uses_delta(self) -> bool {
        matches!(self, Rotation::Geomin | Rotation::GeominOrt)
    }

    /// Whether the rotation needs a target matrix.
    pub fn uses_target(self) -> bool {
        matches!(self, Rotation::TargetOrt | Rotation::TargetObl)
    }

    /// Whether the criterion reads oblimin's γ (so only then is γ checked and fingerprinted).
    pub fn uses_gamma(self) -> bool {
        self == Rotation::Oblimin
    }

    /// The rotation with the parameters it uses, as recorded in `fit.json` (e.g.
    /// `Oblimin { gamma: 0.0 }`).
    pub fn describe(self, params: &RotationParams) -> String {
        match self {
            Rotation::None => "None".into(),
            Rotation::Varimax => "Varimax".into(),
            Rotation::Promax => format!("Promax {{ power: {PROMAX_POWER:?} }}"),
            Rotation::Oblimin => format!("Oblimin {{ gamma: {:?} }}", params.gamma),
            Rotation::Quartimin => "Quartimin".into(),
            Rotation::Geomin => format!("Geomin {{ delta: {:?} }}", params.delta),
            Rotation::Quartimax => "Quartimax".into(),
            Rotation::Equamax => "Equamax".into(),
            Rotation::Oblimax => "Oblimax".into(),
            Rotation::GeominOrt => format!("GeominOrt {{ delta: {:?} }}", params.delta),
            Rotation::BentlerOrt => "BentlerOrt".into(),
            Rotation::BentlerObl => "BentlerObl".into(),
            Rotation::TargetOrt => "TargetOrt".into(),
            Rotation::TargetObl => "TargetObl".into(),
        }
    }
}

/// A fitted factor model.
#[derive(Debug, Clone)]
pub struct Fit {
    /// p × k pattern loadings.
    pub loadings: M,
    /// k × k factor correlations (identity for orthogonal solutions).
    pub phi: M,
    /// Uniquenesses ψ (1 − communality).
    pub uniquenesses: Vec<f64>,
    /// Unrotated loadings (p × k).
    pub unrotated: M,
    /// Whether the objective converged.
    pub converged: bool,
}

impl Fit {
    pub fn communalities(&self) -> Vec<f64> {
        self.uniquenesses.iter().map(|u| 1.0 - u).collect()
    }
}

/// Pearson correlation matrix of n × p row-major items. Errors name the first missing cell or a
/// constant item.
pub fn correlation(items: &[f64], n: usize, p: usize, names: &[String]) -> Result<M, String> {
    if let Some(at) = items.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "item `{}` is missing for row {}; factor analysis needs complete data (exclude or score such rows first)",
            names[at % p],
            at / p + 1
        ));
    }
    let mut z = vec![0.0; n * p];
    for j in 0..p {
        for i in 0..n {
            z[j * n + i] = items[i * p + j];
        }
    }
    correlation_of_columns(z, n, p).map_err(|j| format!("item `{}` is constant", names[j]))
}

/// Correlation matrix of column-major data (p columns of n); Err(j) when column j is constant.
fn correlation_of_columns(mut z: Vec<f64>, n: usize, p: usize) -> Result<M, usize> {
    // Centred, unit-norm columns (two passes: exact for items with large means); R = ZᵀZ by
    // faer's matmul.
    for j in 0..p {
        let column = &mut z[j * n..(j + 1) * n];
        let mean = column.iter().sum::<f64>() / n as f64;
        column.iter_mut().for_each(|v| *v -= mean);
        let ss: f64 = column.iter().map(|v| v * v).sum();
        if !(ss > 0.0) {
            return Err(j);
        }
        let inv = 1.0 / ss.sqrt();
        column.iter_mut().for_each(|v| *v *= inv);
    }
    let gram = crate::stats::linalg::matmul_tn(&z, &z, n, p, p);
    let mut r = M::from_fn(p, p, |i, j| gram[j * p + i]);
    for i in 0..p {
        r.set(i, i, 1.0);
    }
    Ok(r)
}

fn with_diagonal(r: &M, psi: &[f64]) -> M {
    let mut m = r.clone();
    for (i, u) in psi.iter().enumerate() {
        m.set(i, i, 1.0 - u);
    }
    m
}

/// minres objective: squared residuals of the reduced correlation matrix after k factors.
fn uls_objective(r: &M, psi: &[f64], k: usize) -> f64 {
    let Some((values, _)) = with_diagonal(r, psi).sym_eigen() else { return f64::INFINITY };
    values[..k].iter().map(|v| if *v < 0.0 { v * v } else { 0.0 }).sum::<f64>()
        + values[k..].iter().map(|v| v * v).sum::<f64>()
}

fn scaled(r: &M, psi: &[f64]) -> M {
    M::from_fn(r.rows, r.cols, |i, j| r.at(i, j) / (psi[i] * psi[j]).sqrt())
}

/// ML objective (factanal): −Σ_{j>k} (log e_j − e_j) − (p − k), e the eigenvalues of Ψ^{-1/2}RΨ^{-1/2}.
fn ml_objective(r: &M, psi: &[f64], k: usize) -> f64 {
    let Some((values, _)) = scaled(r, psi).sym_eigen() else { return f64::INFINITY };
    let p = r.rows;
    -values[k..].iter().map(|e| e.max(1e-300).ln() - e).sum::<f64>() - (p - k) as f64
}

const PSI_MIN: f64 = 0.005;
const PSI_MAX: f64 = 1.0;

/// Minimise `f` over the box by projected gradient descent (central-difference gradient,
/// Barzilai–Borwein steps with backtracking). Returns (ψ, converged).
fn minimise(f: &dyn Fn(&[f64]) -> f64, start: Vec<f64>) -> (Vec<f64>, bool) {
    let p = start.len();
    let project = |x: &mut Vec<f64>| x.iter_mut().for_each(|v| *v = v.clamp(PSI_MIN, PSI_MAX));
    let gradient = |x: &[f64]| -> Vec<f64> {
        (0..p)
            .map(|i| {
                let h = 1e-6;
                let mut up = x.to_vec();
                let mut down = x.to_vec();
                up[i] += h;
                down[i] -= h;
                (f(&up) - f(&down)) / (2.0 * h)
            })
            .collect()
    };
    let mut x = start;
    project(&mut x);
    let mut fx = f(&x);
    let mut g = gradient(&x);
    let mut step = 0.1;
    for _ in 0..5000 {
        // Projected gradient norm (zero where the bound is active and the gradient points out).
        let pg: f64 = (0..p)
            .map(|i| {
                let moved = (x[i] - g[i]).clamp(PSI_MIN, PSI_MAX) - x[i];
                moved * moved
            })
            .sum::<f64>()
            .sqrt();
        if pg < 1e-9 {
            return (x, true);
        }
        let mut t = step;
        let (mut next, mut f_next);
        loop {
            next = x.iter().zip(&g).map(|(xi, gi)| xi - t * gi).collect::<Vec<f64>>();
            project(&mut next);
            f_next = f(&next);
            if f_next <= fx - 1e-4 * (0..p).map(|i| g[i] * (x[i] - next[i])).sum::<f64>() || t < 1e-16 {
                break;
            }
            t *= 0.5;
        }
        let g_next = gradient(&next);
        let s: Vec<f64> = (0..p).map(|i| next[i] - x[i]).collect();
        let y: Vec<f64> = (0..p).map(|i| g_next[i] - g[i]).collect();
        let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
        let ss: f64 = s.iter().map(|a| a * a).sum();
        step = if sy > 1e-300 { (ss / sy).clamp(1e-8, 1e3) } else { step * 2.0 };
        if (fx - f_next).abs() <= 1e-15 * fx.abs().max(1e-300) && ss < 1e-24 {
            return (next, true);
        }
        x = next;
        fx = f_next;
        g = g_next;
    }
    (x, false)
}

/// Squared multiple correlations 1 − 1/diag(R⁻¹) (the usual communality start).
pub fn smc(r: &M) -> Vec<f64> {
    match r.inverse() {
        Some(inv) => (0..r.rows).map(|i| (1.0 - 1.0 / inv.at(i, i)).clamp(0.0, 1.0)).collect(),
        None => vec![0.5; r.rows],
    }
}

fn top_k_loadings(m: &M, k: usize, scale: impl Fn(f64) -> f64) -> Option<M> {
    let (values, vectors) = m.sym_eigen()?;
    Some(M::from_fn(m.rows, k, |i, j| vectors.at(i, j) * scale(values[j]).max(0.0).sqrt()))
}

/// Unrotated loadings and uniquenesses.
pub fn extract(r: &M, k: usize, method: Extraction) -> Result<(M, Vec<f64>, bool), String> {
    let p = r.rows;
    if k == 0 || k >= p {
        return Err(format!("{k} factors cannot be extracted from {p} items"));
    }
    let fail = || "the eigendecomposition failed".to_string();
    match method {
        Extraction::Principal => {
            let loadings = top_k_loadings(r, k, |v| v).ok_or_else(fail)?;
            let psi = (0..p).map(|i| 1.0 - (0..k).map(|j| loadings.at(i, j).powi(2)).sum::<f64>()).collect();
            Ok((loadings, psi, true))
        }
        Extraction::MinRes => {
            let start: Vec<f64> = smc(r).iter().map(|s| 1.0 - s).collect();
            let (psi, converged) = minimise(&|psi| uls_objective(r, psi, k), start);
            let loadings = top_k_loadings(&with_diagonal(r, &psi), k, |v| v).ok_or_else(fail)?;
            let psi = (0..p).map(|i| 1.0 - (0..k).map(|j| loadings.at(i, j).powi(2)).sum::<f64>()).collect();
            Ok((loadings, psi, converged))
        }
        Extraction::Ml => {
            let start: Vec<f64> = smc(r).iter().map(|s| 1.0 - s).collect();
            let (psi, converged) = minimise(&|psi| ml_objective(r, psi, k), start);
            let star = scaled(r, &psi);
            let raw = top_k_loadings(&star, k, |v| v - 1.0).ok_or_else(fail)?;
            let loadings = M::from_fn(p, k, |i, j| raw.at(i, j) * psi[i].sqrt());
            Ok((loadings, psi, converged))
        }
    }
}

/// Varimax with Kaiser normalisation (the classic SVD iteration, stopping when the criterion
/// improves by less than a relative 1e-5 — R's `varimax` eps and factor_analyzer's tol, so
/// results agree with both). Returns (loadings, T).
pub fn varimax(a: &M) -> (M, M) {
    let (p, k) = (a.rows, a.cols);
    let norms: Vec<f64> = (0..p).map(|i| (0..k).map(|j| a.at(i, j).powi(2)).sum::<f64>().sqrt().max(1e-300)).collect();
    let x = M::from_fn(p, k, |i, j| a.at(i, j) / norms[i]);
    let mut t = M::identity(k);
    let mut d = 0.0;
    for _ in 0..500 {
        let z = x.mul(&t);
        let col_ss: Vec<f64> = (0..k).map(|j| (0..p).map(|i| z.at(i, j).powi(2)).sum()).collect();
        let inner = M::from_fn(p, k, |i, j| z.at(i, j).powi(3) - z.at(i, j) * col_ss[j] / p as f64);
        let b = x.t().mul(&inner);
        let Some((u, s, v)) = b.svd() else { break };
        t = u.mul(&v.t());
        let previous = d;
        d = s.iter().sum();
        if d < previous * (1.0 + 1e-5) {
            break;
        }
    }
    let z = x.mul(&t);
    (M::from_fn(p, k, |i, j| z.at(i, j) * norms[i]), t)
}

/// Promax (Hendrickson & White 1964, as R's `promax` after `kaiser()` and factor_analyzer):
/// in the Kaiser-normalised space (rows scaled to unit length), the varimax loadings raised to
/// `power` (sign kept) are the target; the least-squares transformation towards it, with columns
/// rescaled by √diag((UᵀU)⁻¹), gives the pattern, which is then de-normalised. Φ = U⁻¹U⁻ᵀ.
fn promax(a: &M, power: f64) -> Option<(M, M)> {
    let (p, k) = (a.rows, a.cols);
    let norms: Vec<f64> = (0..p).map(|i| (0..k).map(|j| a.at(i, j).powi(2)).sum::<f64>().sqrt().max(1e-300)).collect();
    let normalised = M::from_fn(p, k, |i, j| a.at(i, j) / norms[i]);
    let (v, _) = varimax(&normalised);
    let target = v.map(|x| x.signum() * x.abs().powf(power));
    let u = v.t().mul(&v).inverse()?.mul(&v.t()).mul(&target);
    let d = u.t().mul(&u).inverse()?;
    let scale = M::from_fn(k, k, |i, j| if i == j { d.at(i, i).sqrt() } else { 0.0 });
    let u = u.mul(&scale);
    let z = v.mul(&u);
    let loadings = M::from_fn(p, k, |i, j| z.at(i, j) * norms[i]);
    let ui = u.inverse()?;
    let phi = ui.mul(&ui.t());
    Some((loadings, phi))
}

/// Gradient-projection oblique rotation (Jennrich 2002) for a criterion returning (Q, dQ/dL).
fn gpa_oblique(a: &M, criterion: &dyn Fn(&M) -> (f64, M)) -> (M, M, bool) {
    let k = a.cols;
    let mut t = M::identity(k);
    let loadings_of = |t: &M| -> Option<M> { Some(a.mul(&t.inverse()?.t())) };
    let mut l = a.clone();
    let (mut f, mut gq) = criterion(&l);
    let gradient = |t: &M, l: &M, gq: &M| -> Option<M> { Some(l.t().mul(gq).mul(&t.inverse()?).t().scale(-1.0)) };
    let Some(mut g) = gradient(&t, &l, &gq) else { return (l, M::identity(k), false) };
    let mut alpha = 1.0;
    for _ in 0..1000 {
        // Project G onto the tangent space of column-normalised T.
        let col_dot: Vec<f64> = (0..k).map(|j| (0..k).map(|i| t.at(i, j) * g.at(i, j)).sum()).collect();
        let gp = M::from_fn(k, k, |i, j| g.at(i, j) - t.at(i, j) * col_dot[j]);
        let s: f64 = gp.data.iter().map(|v| v * v).sum::<f64>().sqrt();
        if s < 1e-7 {
            return (l, t.t().mul(&t), true);
        }
        alpha *= 2.0;
        let mut accepted = false;
        for _ in 0..20 {
            let mut x = t.sub(&gp.scale(alpha));
            for j in 0..k {
                let norm = (0..k).map(|i| x.at(i, j).powi(2)).sum::<f64>().sqrt();
                for i in 0..k {
                    let v = x.at(i, j) / norm;
                    x.set(i, j, v);
                }
            }
            if let Some(l_new) = loadings_of(&x) {
                let (f_new, gq_new) = criterion(&l_new);
                if f_new < f - 0.5 * s * s * alpha {
                    t = x;
                    l = l_new;
                    f = f_new;
                    gq = gq_new;
                    accepted = true;
                    break;
                }
            }
            alpha /= 2.0;
        }
        if !accepted {
            break;
        }
        match gradient(&t, &l, &gq) {
            Some(next) => g = next,
            None => break,
        }
    }
    let phi = t.t().mul(&t);
    (l, phi, false)
}

fn oblimin_criterion(gamma: f64) -> impl Fn(&M) -> (f64, M) {
    move |l: &M| {
        let (p, k) = (l.rows, l.cols);
        let l2 = l.map(|v| v * v);
        // (I − γ/p 11ᵀ) L² N, N = 11ᵀ − I.
        let col_mean: Vec<f64> = (0..k).map(|j| (0..p).map(|i| l2.at(i, j)).sum::<f64>() / p as f64).collect();
        let centred = M::from_fn(p, k, |i, j| l2.at(i, j) - gamma * col_mean[j]);
        let row_sum: Vec<f64> = (0..p).map(|i| (0..k).map(|j| centred.at(i, j)).sum()).collect();
        let x = M::from_fn(p, k, |i, j| row_sum[i] - centred.at(i, j));
        let q = 0.25 * (0..p * k).map(|idx| l2.data[idx] * x.data[idx]).sum::<f64>();
        let grad = M::from_fn(p, k, |i, j| l.at(i, j) * x.at(i, j));
        (q, grad)
    }
}

fn geomin_criterion(delta: f64) -> impl Fn(&M) -> (f64, M) {
    move |l: &M| {
        let (p, k) = (l.rows, l.cols);
        let l2 = l.map(|v| v * v + delta);
        let pro: Vec<f64> = (0..p).map(|i| ((0..k).map(|j| l2.at(i, j).ln()).sum::<f64>() / k as f64).exp()).collect();
        let q = pro.iter().sum();
        let grad = M::from_fn(p, k, |i, j| 2.0 / k as f64 * l.at(i, j) / l2.at(i, j) * pro[i]);
        (q, grad)
    }
}

/// Rotate loadings; returns (loadings, Φ, converged).
pub fn rotate(a: &M, rotation: Rotation, params: &RotationParams) -> Result<(M, M, bool), String> {
    let k = a.cols;
    if k == 1 || rotation == Rotation::None {
        return Ok((a.clone(), M::identity(k), true));
    }
    Ok(match rotation {
        Rotation::None => unreachable!(),
        Rotation::Varimax => (varimax(a).0, M::identity(k), true),
        Rotation::Promax => {
            let (l, phi) = promax(a, PROMAX_POWER).ok_or("promax: singular matrix")?;
            (l, phi, true)
        }
        Rotation::Oblimin => gpa_oblique(a, &oblimin_criterion(params.gamma)),
        Rotation::Quartimin => gpa_oblique(a, &oblimin_criterion(0.0)),
        Rotation::Geomin => gpa_oblique(a, &geomin_criterion(params.delta)),
        Rotation::GeominOrt => with_identity(super::rotations::gpa_orthogonal(a, &geomin_criterion(params.delta))),
        Rotation::Quartimax => with_identity(super::rotations::gpa_orthogonal(a, &super::rotations::quartimax)),
        Rotation::Equamax => {
            let kappa = k as f64 / (2.0 * a.rows as f64);
            with_identity(super::rotations::gpa_orthogonal(a, &super::rotations::crawford_ferguson(kappa)))
        }
        Rotation::Oblimax => super::rotations::gpa_oblique(a, &super::rotations::oblimax),
        Rotation::BentlerOrt => with_identity(super::rotations::gpa_orthogonal(a, &super::rotations::bentler)),
        Rotation::BentlerObl => super::rotations::gpa_oblique(a, &super::rotations::bentler),
        Rotation::TargetOrt | Rotation::TargetObl => {
            let target = params.target.as_ref().ok_or("target rotation needs a target matrix")?;
            if (target.rows, target.cols) != (a.rows, a.cols) {
                return Err(format!(
                    "the target matrix is {} × {} but the loadings are {} items × {} factors",
                    target.rows, target.cols, a.rows, a.cols
                ));
            }
            // psych::fa makes each unrotated column sum positive before rotating; a target is
            // not sign-invariant, so the start must be the same.
            let a = &super::rotations::positive_column_sums(a);
            let criterion = super::rotations::target(target.clone());
            if rotation == Rotation::TargetOrt {
                with_identity(super::rotations::gpa_orthogonal(a, &criterion))
            } else {
                super::rotations::gpa_oblique(a, &criterion)
            }
        }
    })
}

fn with_identity((loadings, converged): (M, bool)) -> (M, M, bool) {
    let k = loadings.cols;
    (loadings, M::identity(k), converged)
}

/// Order factors by variance explained and make each one's largest loading positive.
pub fn normalise(loadings: &M, phi: &M) -> (M, M) {
    let (p, k) = (loadings.rows, loadings.cols);
    let ss: Vec<f64> = (0..k).map(|j| (0..p).map(|i| loadings.at(i, j).powi(2)).sum()).collect();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| ss[b].total_cmp(&ss[a]).then(a.cmp(&b)));
    let sign: Vec<f64> = (0..k)
        .map(|j| {
            let big =
                (0..p).map(|i| loadings.at(i, j)).fold(0.0f64, |acc, v| if v.abs() > acc.abs() { v } else { acc });
            if big < 0.0 { -1.0 } else { 1.0 }
        })
        .collect();
    let l = M::from_fn(p, k, |i, j| loadings.at(i, order[j]) * sign[order[j]]);
    let f = M::from_fn(k, k, |a, b| phi.at(order[a], order[b]) * sign[order[a]] * sign[order[b]]);
    (l, f)
}

/// A pair of factors whose correlation is ±1 to within 1e-6: a degenerate oblique solution
/// (GPArotation's oblimax ends there on most data).
fn collapsed(phi: &M) -> Option<(usize, usize)> {
    let k = phi.rows;
    (0..k).flat_map(|a| (a + 1..k).map(move |b| (a, b))).find(|&(a, b)| phi.at(a, b).abs() > 1.0 - 1e-6)
}

/// Fit: extract, rotate, normalise order and sign.
pub fn fit(r: &M, k: usize, method: Extraction, rotation: Rotation, params: &RotationParams) -> Result<Fit, String> {
    let (unrotated, psi, converged) = extract(r, k, method)?;
    let (rotated, phi, rotation_converged) = rotate(&unrotated, rotation, params)?;
    let (loadings, phi) = normalise(&rotated, &phi);
    if let Some((a, b)) = collapsed(&phi) {
        return Err(format!(
            "the {} rotation collapsed factors {} and {} into one (factor correlation {:.6}); \
             choose another rotation or fewer factors",
            rotation.describe(params),
            a + 1,
            b + 1,
            phi.at(a, b)
        ));
    }
    let (unrotated, _) = normalise(&unrotated, &M::identity(k));
    Ok(Fit { loadings, phi, uniquenesses: psi, unrotated, converged: converged && rotation_converged })
}

/// Factor score methods.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Scores {
    /// Thurstone's regression scores: W = R⁻¹ Λ Φ.
    #[default]
    Regression,
    /// Bartlett: W = Ψ⁻¹ Λ (Λᵀ Ψ⁻¹ Λ)⁻¹.
    Bartlett,
    /// ten Berge et al. (1999), correlation-preserving: W = R^{-1/2} C Φ^{1/2} with
    /// C = R^{-1/2} Λ Φ^{1/2} (Φ^{1/2} Λᵀ R⁻¹ Λ Φ^{1/2})^{-1/2}.
    #[value(name = "tenberge")]
    TenBerge,
}

/// Items (n × p, row-major) standardised with the population SD (ddof = 0), as factor scores
/// are computed (and as factor_analyzer's `transform` does).
pub fn standardise(items: &[f64], n: usize, p: usize) -> M {
    let (means, sds) = moments(items, n, p);
    standardise_with(items, n, p, &means, &sds)
}

/// Column means and population SDs (ddof = 0) of items (n × p, row-major).
pub fn moments(items: &[f64], n: usize, p: usize) -> (Vec<f64>, Vec<f64>) {
    let means: Vec<f64> = (0..p).map(|j| (0..n).map(|i| items[i * p + j]).sum::<f64>() / n as f64).collect();
    let sds = (0..p)
        .map(|j| ((0..n).map(|i| (items[i * p + j] - means[j]).powi(2)).sum::<f64>() / n as f64).sqrt())
        .collect();
    (means, sds)
}

/// Items standardised with given means and SDs (e.g. those of the sample the model was fitted
/// on, for scoring new subjects).
pub fn standardise_with(items: &[f64], n: usize, p: usize, means: &[f64], sds: &[f64]) -> M {
    M::from_fn(n, p, |i, j| (items[i * p + j] - means[j]) / sds[j])
}

/// Score weights (p × k) for standardised items.
pub fn score_weights(r: &M, fit: &Fit, method: Scores) -> Result<M, String> {
    let (l, phi) = (&fit.loadings, &fit.phi);
    let singular = || "a singular matrix while computing factor scores".to_string();
    match method {
        Scores::Regression => Ok(r.inverse().ok_or_else(singular)?.mul(l).mul(phi)),
        Scores::Bartlett => {
            let p = l.rows;
            let psi_inv = M::from_fn(p, p, |i, j| if i == j { 1.0 / fit.uniquenesses[i].max(1e-12) } else { 0.0 });
            let middle = l.t().mul(&psi_inv).mul(l).inverse().ok_or_else(singular)?;
            Ok(psi_inv.mul(l).mul(&middle))
        }
        Scores::TenBerge => {
            let phi_half = phi.sym_fn(|v| v.max(0.0).sqrt()).ok_or_else(singular)?;
            let r_inv_half = r.sym_fn(|v| 1.0 / v.sqrt()).ok_or_else(singular)?;
            let r_inv = r.inverse().ok_or_else(singular)?;
            let lp = l.mul(&phi_half);
            let inner = lp.t().mul(&r_inv).mul(&lp).sym_fn(|v| 1.0 / v.sqrt()).ok_or_else(singular)?;
            let c = r_inv_half.mul(&lp).mul(&inner);
            Ok(r_inv_half.mul(&c).mul(&phi_half))
        }
    }
}

/// Kaiser–Meyer–Olkin measure: per item and overall.
pub fn kmo(r: &M) -> Option<(Vec<f64>, f64)> {
    let p = r.rows;
    let inv = r.inverse()?;
    let partial = M::from_fn(p, p, |i, j| -inv.at(i, j) / (inv.at(i, i) * inv.at(j, j)).sqrt());
    let (mut r2_all, mut q2_all) = (0.0, 0.0);
    let per_item = (0..p)
        .map(|i| {
            let (mut r2, mut q2) = (0.0, 0.0);
            for j in (0..p).filter(|&j| j != i) {
                r2 += r.at(i, j).powi(2);
                q2 += partial.at(i, j).powi(2);
            }
            r2_all += r2;
            q2_all += q2;
            r2 / (r2 + q2)
        })
        .collect();
    Some((per_item, r2_all / (r2_all + q2_all)))
}

/// Bartlett's test of sphericity: (χ², dof, p).
pub fn bartlett_sphericity(r: &M, n: usize) -> Option<(f64, f64, f64)> {
    let p = r.rows as f64;
    let (values, _) = r.sym_eigen()?;
    let log_det: f64 = values.iter().map(|v| v.max(1e-300).ln()).sum();
    let chi2 = -(n as f64 - 1.0 - (2.0 * p + 5.0) / 6.0) * log_det;
    let dof = p * (p - 1.0) / 2.0;
    let pv = chi_square_sf(chi2, dof);
    Some((chi2, dof, pv))
}

pub fn chi_square_sf(x: f64, dof: f64) -> f64 {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    ChiSquared::new(dof).map(|d| d.sf(x)).unwrap_or(f64::NAN)
}

/// Horn's parallel analysis on principal-component eigenvalues: the number of leading
/// eigenvalues of R that exceed the `quantile` of eigenvalues from `sims` random normal data
/// sets of the same size (seeded), counted until the first that does not.
///
/// Each simulated data set enters only through its correlation matrix, so instead of drawing
/// n × p normal deviates we draw that matrix's exact distribution: for n i.i.d. N(0, I_p) rows the
/// centred scatter matrix is Wishart(I_p, n − 1), which Bartlett's decomposition samples as A·Aᵀ
/// with A lower triangular, A_ii = √χ²(n − 1 − i) and A_ij ~ N(0, 1) below the diagonal; its
/// correlation matrix has the same distribution as that of the simulated data. This costs
/// p(p + 1)/2 draws per data set instead of n·p (2,800 × 25 items: 325 instead of 70,000), and
/// `parallel_analysis_by_data` keeps the direct simulation to test the equivalence against.
pub fn parallel_analysis(r: &M, n: usize, sims: usize, quantile: f64, seed: u64) -> (usize, Vec<f64>, Vec<f64>) {
    let p = r.rows;
    if n <= p {
        // A singular Wishart has no Bartlett decomposition; simulate the data instead.
        return parallel_analysis_by_data(r, n, sims, quantile, seed);
    }
    let draw = |s: usize| {
        let mut rng = crate::stats::rng::Rng::derived(seed, &format!("parallel-analysis/{s}"));
        let mut a = M::zeros(p, p);
        for i in 0..p {
            a.set(i, i, rng.chi_square((n - 1 - i) as f64).sqrt());
            for j in 0..i {
                a.set(i, j, rng.normal_fast());
            }
        }
        let scatter = a.mul(&a.t());
        M::from_fn(p, p, |i, j| scatter.at(i, j) / (scatter.at(i, i) * scatter.at(j, j)).sqrt())
    };
    parallel_analysis_with(r, sims, quantile, draw)
}

/// Parallel analysis by simulating the normal data sets themselves (reference for the Wishart
/// shortcut of [`parallel_analysis`]).
pub fn parallel_analysis_by_data(
    r: &M,
    n: usize,
    sims: usize,
    quantile: f64,
    seed: u64,
) -> (usize, Vec<f64>, Vec<f64>) {
    let p = r.rows;
    let draw = |s: usize| {
        let mut rng = crate::stats::rng::Rng::derived(seed, &format!("parallel-analysis-data/{s}"));
        let data: Vec<f64> = (0..n * p).map(|_| rng.normal_fast()).collect();
        correlation_of_columns(data, n, p).expect("random data has no constant column")
    };
    parallel_analysis_with(r, sims, quantile, draw)
}

fn parallel_analysis_with(
    r: &M,
    sims: usize,
    quantile: f64,
    draw: impl Fn(usize) -> M + Sync,
) -> (usize, Vec<f64>, Vec<f64>) {
    use rayon::prelude::*;
    let p = r.rows;
    let observed = r.sym_eigen().map(|(v, _)| v).unwrap_or_default();
    let simulated: Vec<Vec<f64>> = (0..sims)
        .into_par_iter()
        .map(|s| draw(s).sym_eigen().map(|(v, _)| v).unwrap_or_else(|| vec![0.0; p]))
        .collect();
    let thresholds: Vec<f64> = (0..p)
        .map(|j| {
            let mut column: Vec<f64> = simulated.iter().map(|v| v[j]).collect();
            column.sort_by(f64::total_cmp);
            crate::stats::quantile::quantile_sorted(&column, quantile)
        })
        .collect();
    let k = observed.iter().zip(&thresholds).take_while(|(o, t)| o > t).count();
    (k, observed, thresholds)
}

/// Velicer's MAP test: average squared (or 4th-power) partial correlation after removing the
/// first m principal components, m = 0 … p − 2 (after p − 1 components the residual is
/// round-off); returns (argmin m, the averages).
pub fn velicer_map(r: &M, power: i32) -> (usize, Vec<f64>) {
    let p = r.rows;
    let Some((values, vectors)) = r.sym_eigen() else { return (0, Vec::new()) };
    let off = |m: &M| -> f64 {
        let mut s = 0.0;
        for i in 0..p {
            for j in 0..p {
                if i != j {
                    s += m.at(i, j).powi(power);
                }
            }
        }
        s / (p * (p - 1)) as f64
    };
    let mut averages = vec![off(r)];
    for m in 1..p.saturating_sub(1) {
        let a = M::from_fn(p, m, |i, j| vectors.at(i, j) * values[j].max(0.0).sqrt());
        let partial_cov = r.sub(&a.mul(&a.t()));
        let d: Vec<f64> = (0..p).map(|i| partial_cov.at(i, i)).collect();
        if d.iter().any(|v| !(*v > 1e-12)) {
            break;
        }
        let partial = M::from_fn(p, p, |i, j| partial_cov.at(i, j) / (d[i] * d[j]).sqrt());
        averages.push(off(&partial));
    }
    let best = averages.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(m, _)| m);
    (best, averages)
}

/// Root mean square of the off-diagonal residual correlations R − (ΛΦΛᵀ + Ψ).
pub fn rmsr(r: &M, fit: &Fit) -> f64 {
    let p = r.rows;
    let model = fit.loadings.mul(&fit.phi).mul(&fit.loadings.t());
    let mut s = 0.0;
    for i in 0..p {
        for j in 0..p {
            if i != j {
                s += (r.at(i, j) - model.at(i, j)).powi(2);
            }
        }
    }
    (s / (p * (p - 1)) as f64).sqrt()
}

/// Tucker's congruence between two loading columns.
pub fn congruence(a: &[f64], b: &[f64]) -> f64 {
    let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let aa: f64 = a.iter().map(|x| x * x).sum();
    let bb: f64 = b.iter().map(|x| x * x).sum();
    ab / (aa * bb).sqrt()
}

/// Likelihood-ratio fit of a factor model, as psych's `fa.stats` defines it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FitIndices {
    pub chi_square: f64,
    pub dof: f64,
    pub p: f64,
    pub tli: f64,
    pub rmsea: f64,
}

/// Σ = ΛΦΛᵀ with diag(Σ) = diag(R); F = tr(Σ⁻¹R) − ln det(Σ⁻¹R) − p;
/// χ² = F·((n − 1) − (2p + 5)/6 − 2k/3); dof = ((p − k)² − (p + k))/2;
/// TLI = (M₀ − F/dof)/(M₀ − 1/c) with M₀ = 2F₀/(p(p − 1)), F₀ = tr R − ln det R − p;
/// RMSEA = √max(F/dof − 1/(n − 1), 0).
pub fn fit_indices(r: &M, fit: &Fit, n: usize) -> Option<FitIndices> {
    let (p, k) = (r.rows as f64, fit.loadings.cols as f64);
    let mut sigma = fit.loadings.mul(&fit.phi).mul(&fit.loadings.t());
    for i in 0..r.rows {
        sigma.set(i, i, r.at(i, i));
    }
    let product = sigma.inverse()?.mul(r);
    let log_det = |m: &M| -> Option<f64> {
        // det of a product of SPD matrices: via eigenvalues of the symmetrised form.
        let (values, _) = m.sym_eigen()?;
        Some(values.iter().map(|v| v.max(1e-300).ln()).sum())
    };
    let trace: f64 = (0..r.rows).map(|i| product.at(i, i)).sum();
    let f = trace - (log_det(r)? - log_det(&sigma)?) - p;
    let c = (n as f64 - 1.0) - (2.0 * p + 5.0) / 6.0 - 2.0 * k / 3.0;
    let chi_square = (f * c).max(0.0);
    let dof = ((p - k).powi(2) - (p + k)) / 2.0;
    let f0 = r.rows as f64 - log_det(r)? - p;
    let m0 = 2.0 * f0 / (p * (p - 1.0));
    let tli = (m0 - f / dof) / (m0 - 1.0 / c);
    let rmsea = (f / dof - 1.0 / (n as f64 - 1.0)).max(0.0).sqrt();
    Some(FitIndices { chi_square, dof, p: chi_square_sf(chi_square, dof), tli, rmsea })
}

/// How many factors to extract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    Fixed(usize),
    Parallel,
    Map,
}

/// Fewest rows (subjects) a factor model of `items` items can be fitted to.
pub fn min_rows(items: usize) -> usize {
    items + 2
}

/// A whole analysis as `neurospec efa` and the `factors` stage run it.
#[derive(Debug, Clone)]
pub struct Request {
    pub count: Count,
    pub method: Extraction,
    pub rotation: Rotation,
    pub rotation_params: RotationParams,
    pub scores: Scores,
    pub simulations: usize,
    pub seed: u64,
}

pub struct Analysis {
    pub k: usize,
    pub fit: Fit,
    /// Score weights for items standardised with `means` and `sds` (ddof 0).
    pub weights: M,
    pub means: Vec<f64>,
    pub sds: Vec<f64>,
    /// Everything else worth reporting (fit.json).
    pub summary: serde_json::Value,
}

/// Correlations, KMO and Bartlett's test, parallel analysis and MAP, the fit, score weights,
/// variance explained and fit indices, for complete items (n × p, row-major).
pub fn analyse(values: &[f64], n: usize, p: usize, names: &[String], request: &Request) -> Result<Analysis, String> {
    if n < min_rows(p) {
        return Err(format!("{n} rows for {p} items; factor analysis needs more rows than items"));
    }
    let r = correlation(values, n, p, names)?;
    let (pa_k, observed, thresholds) = parallel_analysis(&r, n, request.simulations, 0.95, request.seed);
    let (map_k, map_averages) = velicer_map(&r, 2);
    let k = match request.count {
        Count::Fixed(k) => k,
        Count::Parallel if pa_k == 0 => {
            return Err("parallel analysis retains no factor: no eigenvalue exceeds chance".into());
        }
        Count::Parallel => pa_k,
        Count::Map if map_k == 0 => return Err("Velicer's MAP retains no factor".into()),
        Count::Map => map_k,
    };
    if k == 0 || k >= p {
        return Err(format!("{k} factors cannot be extracted from {p} items"));
    }
    let fit = fit(&r, k, request.method, request.rotation, &request.rotation_params)?;
    let weights = score_weights(&r, &fit, request.scores)?;
    let (means, sds) = moments(values, n, p);
    let (kmo_items, kmo_total) = kmo(&r).ok_or("the correlation matrix is singular (KMO)")?;
    let bartlett = bartlett_sphericity(&r, n);
    let structure = fit.loadings.mul(&fit.phi);
    let ss: Vec<f64> = (0..k).map(|j| (0..p).map(|i| fit.loadings.at(i, j) * structure.at(i, j)).sum()).collect();
    let summary = serde_json::json!({
        "n": n,
        "items": names,
        "factors": k,
        "method": format!("{:?}", request.method),
        "rotation": request.rotation.describe(&request.rotation_params),
        "scores": format!("{:?}", request.scores),
        "converged": fit.converged,
        "communalities": fit.communalities(),
        "uniquenesses": fit.uniquenesses,
        "variance_explained": ss,
        "proportion_explained": ss.iter().map(|v| v / p as f64).collect::<Vec<_>>(),
        "rmsr": rmsr(&r, &fit),
        "likelihood_fit": fit_indices(&r, &fit, n),
        "kmo": {"overall": kmo_total, "items": kmo_items},
        "bartlett_sphericity": bartlett.map(|(chi2, dof, pv)| serde_json::json!({"chi2": chi2, "dof": dof, "p": pv})),
        "parallel_analysis": {"factors": pa_k, "simulations": request.simulations, "seed": request.seed,
                               "quantile": 0.95, "observed": observed, "thresholds": thresholds},
        "velicer_map": {"factors": map_k, "average_squared_partials": map_averages},
    });
    Ok(Analysis { k, fit, weights, means, sds, summary })
}

/// A labelled matrix as TSV: a header of `first` and the column names, then one row per name
/// (`loadings.tsv`, `phi.tsv`, `weights.tsv`, `scores.tsv`).
pub fn matrix_tsv(first: &str, rows: &[String], columns: &[String], m: &M) -> String {
    let mut out = format!("{first}\t{}\n", columns.join("\t"));
    for (i, name) in rows.iter().enumerate() {
        out.push_str(name);
        for j in 0..m.cols {
            out.push_str(&format!("\t{}", m.at(i, j)));
        }
        out.push('\n');
    }
    out
}
