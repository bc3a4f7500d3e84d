//! Rotation criteria beyond varimax, promax, oblimin and geomin, as GPArotation defines them
//! (Bernaards & Jennrich 2005), and the orthogonal gradient-projection algorithm.
//!
//! Each criterion returns (Q, ∂Q/∂L) for loadings L; `efa::rotate` hands it to the orthogonal
//! (here) or oblique (`efa::gpa_oblique`) gradient projection. The criteria, exactly as in
//! GPArotation 2022.10's `vgQ.*` functions:
//!
//! * quartimax: Q = −¼ Σ L⁴; ∂Q = −L³.
//! * Crawford–Ferguson(κ): Q = (1−κ)/4 Σ L²∘(L²N) + κ/4 Σ L²∘(ML²), N = 11ᵀ − I (factors),
//!   M = 11ᵀ − I (items); equamax is κ = k / (2p) (psych's `equamax`).
//! * oblimax: Q = −(ln Σ L⁴ − 2 ln Σ L²).
//! * Bentler: Q = −¼ (ln det(L²ᵀL²) − ln det diag(L²ᵀL²)).
//! * target: Q = Σ (L − T)² over the specified (non-NaN) cells of T.
//!
//! No Kaiser normalisation: psych's `fa` calls these GPArotation functions with their default
//! `normalize = FALSE`, and so do we.

use crate::stats::dense::M;

/// GPArotation's stopping rule: the projected gradient's Frobenius norm below 1e-5.
const GPA_EPS: f64 = 1e-5;
/// GPArotation's iteration limit.
const GPA_MAX_ITERATIONS: usize = 1000;
/// Step halvings per line search (GPArotation tries 11 step lengths).
const GPA_LINE_SEARCH: usize = 11;

/// Gradient-projection orthogonal rotation, step for step GPArotation's `GPForth` (same start
/// T = I, step doubling, Armijo test, 11 halvings, and — as GPArotation — the last candidate is
/// taken when none improves): returns (L = AT, converged).
pub fn gpa_orthogonal(a: &M, criterion: &dyn Fn(&M) -> (f64, M)) -> (M, bool) {
    let k = a.cols;
    let mut t = M::identity(k);
    let mut l = a.clone();
    let (mut f, gq) = criterion(&l);
    let mut g = a.t().mul(&gq);
    let mut alpha = 1.0;
    for _ in 0..=GPA_MAX_ITERATIONS {
        let m = t.t().mul(&g);
        let sym = M::from_fn(k, k, |i, j| 0.5 * (m.at(i, j) + m.at(j, i)));
        let gp = g.sub(&t.mul(&sym));
        let s = frobenius(&gp);
        if s < GPA_EPS {
            return (l, true);
        }
        alpha *= 2.0;
        let mut candidate = None;
        for _ in 0..GPA_LINE_SEARCH {
            let Some((u, _, v)) = t.sub(&gp.scale(alpha)).svd() else { return (l, false) };
            let t_new = u.mul(&v.t());
            let l_new = a.mul(&t_new);
            let (f_new, gq_new) = criterion(&l_new);
            let improved = f_new < f - 0.5 * s * s * alpha;
            candidate = Some((t_new, l_new, f_new, gq_new));
            if improved {
                break;
            }
            alpha /= 2.0;
        }
        let Some((t_new, l_new, f_new, gq_new)) = candidate else { return (l, false) };
        t = t_new;
        l = l_new;
        f = f_new;
        g = a.t().mul(&gq_new);
    }
    (l, false)
}

/// Gradient-projection oblique rotation, step for step GPArotation's `GPFoblq` (L = A T⁻ᵀ,
/// Φ = TᵀT; columns of T kept at unit length): returns (L, Φ, converged). `efa::gpa_oblique`
/// (oblimin, quartimin, geomin) predates this and stops at 1e-7; the rotations added later use
/// GPArotation's own rule so that they follow its path.
pub fn gpa_oblique(a: &M, criterion: &dyn Fn(&M) -> (f64, M)) -> (M, M, bool) {
    let k = a.cols;
    let loadings = |t: &M| -> Option<(M, M)> {
        let inverse = t.inverse()?;
        Some((a.mul(&inverse.t()), inverse))
    };
    let gradient = |l: &M, gq: &M, t_inverse: &M| l.t().mul(gq).mul(t_inverse).t().scale(-1.0);
    let mut t = M::identity(k);
    let mut l = a.clone();
    let (mut f, gq) = criterion(&l);
    let mut g = gradient(&l, &gq, &M::identity(k));
    let mut alpha = 1.0;
    for _ in 0..=GPA_MAX_ITERATIONS {
        let col_dot: Vec<f64> = (0..k).map(|j| (0..k).map(|i| t.at(i, j) * g.at(i, j)).sum()).collect();
        let gp = M::from_fn(k, k, |i, j| g.at(i, j) - t.at(i, j) * col_dot[j]);
        let s = frobenius(&gp);
        if s < GPA_EPS {
            return (l, t.t().mul(&t), true);
        }
        alpha *= 2.0;
        let mut candidate = None;
        for _ in 0..GPA_LINE_SEARCH {
            let x = t.sub(&gp.scale(alpha));
            let norms: Vec<f64> = (0..k).map(|j| (0..k).map(|i| x.at(i, j).powi(2)).sum::<f64>().sqrt()).collect();
            let t_new = M::from_fn(k, k, |i, j| x.at(i, j) / norms[j]);
            let Some((l_new, inverse)) = loadings(&t_new) else { break };
            let (f_new, gq_new) = criterion(&l_new);
            let improved = f - f_new > 0.5 * s * s * alpha;
            candidate = Some((t_new, l_new, inverse, f_new, gq_new));
            if improved {
                break;
            }
            alpha /= 2.0;
        }
        let Some((t_new, l_new, inverse, f_new, gq_new)) = candidate else { return (l, t.t().mul(&t), false) };
        g = gradient(&l_new, &gq_new, &inverse);
        t = t_new;
        l = l_new;
        f = f_new;
    }
    (l, t.t().mul(&t), false)
}

fn frobenius(m: &M) -> f64 {
    m.data.iter().map(|v| v * v).sum::<f64>().sqrt()
}

pub fn quartimax(l: &M) -> (f64, M) {
    let q = -0.25 * l.data.iter().map(|v| v.powi(4)).sum::<f64>();
    (q, l.map(|v| -v * v * v))
}

/// Crawford–Ferguson family with parameter κ.
pub fn crawford_ferguson(kappa: f64) -> impl Fn(&M) -> (f64, M) {
    move |l: &M| {
        let (p, k) = (l.rows, l.cols);
        let l2 = l.map(|v| v * v);
        let row: Vec<f64> = (0..p).map(|i| (0..k).map(|j| l2.at(i, j)).sum()).collect();
        let col: Vec<f64> = (0..k).map(|j| (0..p).map(|i| l2.at(i, j)).sum()).collect();
        let (mut f1, mut f2) = (0.0, 0.0);
        let mut grad = M::zeros(p, k);
        for (i, row_sum) in row.iter().enumerate() {
            for (j, col_sum) in col.iter().enumerate() {
                let (x, across, down) = (l2.at(i, j), row_sum - l2.at(i, j), col_sum - l2.at(i, j));
                f1 += x * across;
                f2 += x * down;
                grad.set(i, j, (1.0 - kappa) * l.at(i, j) * across + kappa * l.at(i, j) * down);
            }
        }
        ((1.0 - kappa) * f1 / 4.0 + kappa * f2 / 4.0, grad)
    }
}

pub fn oblimax(l: &M) -> (f64, M) {
    let s4: f64 = l.data.iter().map(|v| v.powi(4)).sum();
    let s2: f64 = l.data.iter().map(|v| v * v).sum();
    let q = -(s4.ln() - 2.0 * s2.ln());
    (q, l.map(|v| -(4.0 * v.powi(3) / s4 - 4.0 * v / s2)))
}

pub fn bentler(l: &M) -> (f64, M) {
    let k = l.cols;
    let l2 = l.map(|v| v * v);
    let m = l2.t().mul(&l2);
    let log_det = match m.sym_eigen() {
        Some((values, _)) => values.iter().map(|v| v.ln()).sum::<f64>(),
        None => f64::NAN,
    };
    let log_det_d: f64 = (0..k).map(|j| m.at(j, j).ln()).sum();
    let q = -(log_det - log_det_d) / 4.0;
    let Some(m_inv) = m.inverse() else { return (f64::INFINITY, M::zeros(l.rows, k)) };
    let middle = M::from_fn(k, k, |i, j| m_inv.at(i, j) - if i == j { 1.0 / m.at(i, i) } else { 0.0 });
    let product = l2.mul(&middle);
    let grad = M::from_fn(l.rows, k, |i, j| -l.at(i, j) * product.at(i, j));
    // A NaN criterion (a factor with no loadings) must never be accepted by the line search.
    (if q.is_nan() { f64::INFINITY } else { q }, grad)
}

/// Least squares towards `target` (NaN cells are unspecified).
pub fn target(target: M) -> impl Fn(&M) -> (f64, M) {
    move |l: &M| {
        let mut q = 0.0;
        let grad = M::from_fn(l.rows, l.cols, |i, j| {
            let want = target.at(i, j);
            if want.is_nan() { 0.0 } else { 2.0 * (l.at(i, j) - want) }
        });
        for (v, want) in l.data.iter().zip(&target.data) {
            if !want.is_nan() {
                q += (v - want).powi(2);
            }
        }
        (q, grad)
    }
}

/// Columns flipped so that each sums to a non-negative value (psych's unrotated convention).
pub fn positive_column_sums(a: &M) -> M {
    let sign: Vec<f64> =
        (0..a.cols).map(|j| if (0..a.rows).map(|i| a.at(i, j)).sum::<f64>() < 0.0 { -1.0 } else { 1.0 }).collect();
    M::from_fn(a.rows, a.cols, |i, j| a.at(i, j) * sign[j])
}

/// A target matrix from TSV text: a header (first cell free, then one column per factor) and one
/// row per item (its name, then one value per factor; `NA` or an empty cell leaves it
/// unspecified). Rows may come in any order; the result follows `items`. `factors` is the
/// number of factors the model will have, when known. Errors say the line and what to change.
pub fn parse_target(text: &str, items: &[String], factors: Option<usize>) -> Result<M, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else { return Err("the target file is empty".into()) };
    let k = header.split('\t').count().saturating_sub(1);
    if k == 0 {
        return Err("line 1: the header names no factor column (item, then one column per factor)".into());
    }
    if let Some(want) = factors.filter(|&want| want != k) {
        return Err(format!("line 1: the target has {k} factor columns but the model has {want} factors"));
    }
    let mut rows: Vec<Option<Vec<f64>>> = vec![None; items.len()];
    for (at, line) in lines {
        let line_no = at + 1;
        let cells: Vec<&str> = line.split('\t').collect();
        let name = cells[0].trim();
        let Some(i) = items.iter().position(|item| item == name) else {
            return Err(format!(
                "line {line_no}: `{name}` is not an item of the factor model (items: {})",
                items.join(", ")
            ));
        };
        if rows[i].is_some() {
            return Err(format!("line {line_no}: item `{name}` has a second row"));
        }
        if cells.len() != k + 1 {
            return Err(format!(
                "line {line_no}: {} values for item `{name}`; the header names {k} factors",
                cells.len() - 1
            ));
        }
        let values = cells[1..]
            .iter()
            .map(|cell| match cell.trim() {
                "" | "NA" | "NaN" | "nan" => Ok(f64::NAN),
                v => v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
                    format!("line {line_no}: `{v}` for item `{name}` is not a number (write a number, or NA to leave it free)")
                }),
            })
            .collect::<Result<Vec<f64>, String>>()?;
        rows[i] = Some(values);
    }
    let missing: Vec<&str> =
        items.iter().zip(&rows).filter(|(_, row)| row.is_none()).map(|(item, _)| item.as_str()).collect();
    if !missing.is_empty() {
        return Err(format!(
            "no row for item{} {}; give every item a row",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ));
    }
    let rows: Vec<Vec<f64>> = rows.into_iter().flatten().collect();
    if rows.iter().flatten().all(|v| v.is_nan()) {
        return Err("every cell is NA; a target needs at least one value".into());
    }
    Ok(M::from_fn(items.len(), k, |i, j| rows[i][j]))
}
