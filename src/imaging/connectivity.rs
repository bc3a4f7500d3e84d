//! Connectivity between region time series: Pearson correlation, Ledoit–Wolf shrunk covariance
//! and the correlation and partial correlation derived from it, Fisher z.
//!
//! Matrices are square (R × R) and row-major. The Ledoit–Wolf estimator follows scikit-learn's
//! `LedoitWolf` (as used by nilearn's `ConnectivityMeasure`): empirical covariance of centred data
//! divided by n, shrunk towards μI with μ = trace/p by the data-driven intensity
//! δ = min(β, δ̂)/δ̂ (Ledoit & Wolf 2004).

use crate::stats::linalg::cholesky_solve;

/// Centre each column of a T × R row-major matrix; optionally scale to unit SD (ddof = 1).
pub fn centred(values: &[f64], t: usize, r: usize, standardise: bool) -> Vec<f64> {
    let mut out = values.to_vec();
    for c in 0..r {
        let mean = (0..t).map(|i| values[i * r + c]).sum::<f64>() / t as f64;
        let mut ss = 0.0;
        for i in 0..t {
            out[i * r + c] -= mean;
            ss += out[i * r + c] * out[i * r + c];
        }
        if standardise {
            let sd = (ss / (t as f64 - 1.0)).sqrt();
            let sd = if sd > 0.0 { sd } else { 1.0 };
            for i in 0..t {
                out[i * r + c] /= sd;
            }
        }
    }
    out
}

/// XᵀX / divisor for a T × R row-major X.
fn gram(x: &[f64], t: usize, r: usize, divisor: f64) -> Vec<f64> {
    let mut g = vec![0.0; r * r];
    for i in 0..t {
        let row = &x[i * r..(i + 1) * r];
        for a in 0..r {
            let xa = row[a];
            for b in a..r {
                g[a * r + b] += xa * row[b];
            }
        }
    }
    for a in 0..r {
        for b in a..r {
            g[a * r + b] /= divisor;
            g[b * r + a] = g[a * r + b];
        }
    }
    g
}

/// Correlation from a covariance matrix.
pub fn covariance_to_correlation(cov: &[f64], r: usize) -> Vec<f64> {
    let sd: Vec<f64> = (0..r).map(|i| cov[i * r + i].sqrt()).collect();
    let mut out = vec![0.0; r * r];
    for a in 0..r {
        for b in 0..r {
            out[a * r + b] = if a == b { 1.0 } else { cov[a * r + b] / (sd[a] * sd[b]) };
        }
    }
    out
}

/// Pearson correlation matrix (as `numpy.corrcoef` on the columns).
pub fn pearson(values: &[f64], t: usize, r: usize) -> Vec<f64> {
    let x = centred(values, t, r, false);
    covariance_to_correlation(&gram(&x, t, r, (t - 1) as f64), r)
}

/// Ledoit–Wolf shrunk covariance of the columns and the shrinkage used.
pub fn ledoit_wolf(values: &[f64], t: usize, r: usize) -> (Vec<f64>, f64) {
    let x = centred(values, t, r, false);
    let n = t as f64;
    let p = r as f64;
    let emp = gram(&x, t, r, n);
    let trace: f64 = (0..r).map(|i| emp[i * r + i]).sum();
    let mu = trace / p;
    // β̂ = 1/(n p) · (Σ_{ab} Σ_t x_ta² x_tb² / n − Σ_{ab} emp_ab²)
    let x2: Vec<f64> = x.iter().map(|v| v * v).collect();
    let beta_sum: f64 = gram(&x2, t, r, 1.0).iter().sum();
    let delta_sum: f64 = emp.iter().map(|v| v * v).sum();
    let beta = (beta_sum / n - delta_sum) / (p * n);
    let delta = (delta_sum - 2.0 * mu * trace + p * mu * mu) / p;
    let beta = beta.min(delta);
    let shrinkage = if beta == 0.0 { 0.0 } else { beta / delta };
    let mut cov = emp;
    for a in 0..r {
        for b in 0..r {
            cov[a * r + b] *= 1.0 - shrinkage;
        }
        cov[a * r + a] += shrinkage * mu;
    }
    (cov, shrinkage)
}

/// Partial correlation from a covariance matrix: −P_ab / √(P_aa P_bb) with P its inverse; 1 on
/// the diagonal. None when the covariance is singular.
pub fn partial_correlation(cov: &[f64], r: usize) -> Option<Vec<f64>> {
    let mut precision = vec![0.0; r * r];
    for i in 0..r {
        let mut unit = vec![0.0; r];
        unit[i] = 1.0;
        let col = cholesky_solve(cov, r, &unit)?;
        for (a, v) in col.into_iter().enumerate() {
            precision[a * r + i] = v;
        }
    }
    let mut out = covariance_to_correlation(&precision, r);
    for a in 0..r {
        for b in 0..r {
            if a != b {
                out[a * r + b] = -out[a * r + b];
            }
        }
    }
    Some(out)
}

/// Fisher z = atanh(r) off the diagonal; the diagonal (r = 1) is set to 0.
pub fn fisher_z(matrix: &[f64], r: usize) -> Vec<f64> {
    let mut out: Vec<f64> = matrix.iter().map(|v| v.clamp(-1.0, 1.0).atanh()).collect();
    for a in 0..r {
        out[a * r + a] = 0.0;
    }
    out
}

/// A square matrix as TSV with region names as header and first column.
pub fn matrix_tsv(names: &[String], matrix: &[f64]) -> String {
    let r = names.len();
    let mut out = String::from("region");
    for n in names {
        out.push('\t');
        out.push_str(n);
    }
    out.push('\n');
    for a in 0..r {
        out.push_str(&names[a]);
        for b in 0..r {
            let value = matrix[a * r + b];
            // A constant region has no correlation: BIDS' `n/a`, not `NaN`.
            if value.is_nan() {
                out.push('\t');
                out.push_str(crate::tables::MISSING);
            } else {
                out.push_str(&format!("\t{value}"));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_of_two_series() {
        let v = [1.0, 2.0, 2.0, 4.0, 3.0, 6.5, 4.0, 8.0];
        let c = pearson(&v, 4, 2);
        assert_eq!(c[0], 1.0);
        assert!((c[1] - c[2]).abs() < 1e-15 && c[1] > 0.99);
        let z = fisher_z(&c, 2);
        assert_eq!(z[0], 0.0);
        assert!((z[1] - c[1].atanh()).abs() < 1e-15);
    }
}
