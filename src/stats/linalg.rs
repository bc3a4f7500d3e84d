//! Small dense linear algebra on column-major `f64` slices.
//!
//! The big products (features × permuted outcomes, design × bootstrap weights) go through faer's
//! matmul, always sequential inside a task (`Par::Seq`): parallelism comes from running blocks
//! of permutations on rayon, which keeps every floating-point reduction in a fixed order
//! whatever the thread count. The k × k work (k = covariate terms + 1) is hand-written: it is
//! tiny, and a hand-written Gram–Schmidt lets us name the collinear term in the error.

use faer::{Accum, MatMut, MatRef, Par};

/// `aᵀ·b` for column-major `a` (n × p) and `b` (n × q); returns column-major p × q.
pub fn matmul_tn(a: &[f64], b: &[f64], n: usize, p: usize, q: usize) -> Vec<f64> {
    let mut out = vec![0.0; p * q];
    if n == 0 || p == 0 || q == 0 {
        return out;
    }
    let a = MatRef::from_column_major_slice(a, n, p);
    let b = MatRef::from_column_major_slice(b, n, q);
    let dst = MatMut::from_column_major_slice_mut(&mut out, p, q);
    faer::linalg::matmul::matmul(dst, Accum::Replace, a.transpose(), b, 1.0, Par::Seq);
    out
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four accumulators: a fixed order, so the result is the same on every run.
    let mut acc = [0.0f64; 4];
    let chunks = a.len() / 4;
    for i in 0..chunks {
        for (k, slot) in acc.iter_mut().enumerate() {
            *slot += a[4 * i + k] * b[4 * i + k];
        }
    }
    let mut tail = 0.0;
    for i in 4 * chunks..a.len() {
        tail += a[i] * b[i];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// An orthonormal basis Q (n × k, column-major) of the columns of `x` (n × k), by modified
/// Gram–Schmidt with one re-orthogonalisation pass. Returns the index of the first column that is
/// (numerically) a linear combination of the earlier ones as an error.
pub fn orthonormal_basis(x: &[f64], n: usize, k: usize) -> Result<Vec<f64>, usize> {
    let mut q = x.to_vec();
    for j in 0..k {
        let original_norm = dot(&x[j * n..(j + 1) * n], &x[j * n..(j + 1) * n]).sqrt();
        for _pass in 0..2 {
            for i in 0..j {
                let (done, rest) = q.split_at_mut(j * n);
                let qi = &done[i * n..(i + 1) * n];
                let qj = &mut rest[..n];
                let r = dot(qi, qj);
                for (a, b) in qj.iter_mut().zip(qi) {
                    *a -= r * b;
                }
            }
        }
        let col = &mut q[j * n..(j + 1) * n];
        let norm = dot(col, col).sqrt();
        if !(norm > 1e-9 * original_norm.max(1e-300)) || original_norm == 0.0 {
            return Err(j);
        }
        for v in col.iter_mut() {
            *v /= norm;
        }
    }
    Ok(q)
}

/// Replace each column of `v` (n × m, column-major) by its residual after projection on the
/// orthonormal basis `q` (n × k): v ← v − Q(Qᵀv).
pub fn residualise(q: &[f64], n: usize, k: usize, v: &mut [f64], m: usize) {
    let coef = matmul_tn(q, v, n, k, m);
    for c in 0..m {
        let col = &mut v[c * n..(c + 1) * n];
        for j in 0..k {
            let r = coef[c * k + j];
            let qj = &q[j * n..(j + 1) * n];
            for (a, b) in col.iter_mut().zip(qj) {
                *a -= r * b;
            }
        }
    }
}

/// Solve the symmetric positive definite system `a·x = b` (k × k, row-major) by Cholesky.
/// Returns None when `a` is not positive definite.
pub fn cholesky_solve(a: &[f64], k: usize, b: &[f64]) -> Option<Vec<f64>> {
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let mut s = a[i * k + j];
            for p in 0..j {
                s -= l[i * k + p] * l[j * k + p];
            }
            if i == j {
                if !(s > 0.0) {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    let mut y = b.to_vec();
    for i in 0..k {
        for p in 0..i {
            y[i] -= l[i * k + p] * y[p];
        }
        y[i] /= l[i * k + i];
    }
    for i in (0..k).rev() {
        for p in i + 1..k {
            y[i] -= l[p * k + i] * y[p];
        }
        y[i] /= l[i * k + i];
    }
    Some(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_is_orthonormal_and_detects_collinearity() {
        let n = 5;
        let x = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let q = orthonormal_basis(&x, n, 2).unwrap();
        let g = matmul_tn(&q, &q, n, 2, 2);
        for (i, v) in g.iter().enumerate() {
            let expected = if i == 0 || i == 3 { 1.0 } else { 0.0 };
            assert!((v - expected).abs() < 1e-12);
        }
        let collinear = [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        assert_eq!(orthonormal_basis(&collinear, n, 2), Err(1));
    }

    #[test]
    fn cholesky_solves() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = cholesky_solve(&a, 2, &[2.0, 1.0]).unwrap();
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12);
        assert!((2.0 * x[0] + 3.0 * x[1] - 1.0).abs() < 1e-12);
    }
}
