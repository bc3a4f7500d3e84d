//! Small dense matrices (row-major `Vec<f64>`) for factor analysis: products, inverses,
//! symmetric eigendecomposition and SVD through faer (sequential, so results never depend on
//! thread count).

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};

/// A row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct M {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl M {
    pub fn zeros(rows: usize, cols: usize) -> M {
        M { rows, cols, data: vec![0.0; rows * cols] }
    }
    pub fn identity(n: usize) -> M {
        let mut m = M::zeros(n, n);
        for i in 0..n {
            m.data[i * n + i] = 1.0;
        }
        m
    }
    pub fn from_fn(rows: usize, cols: usize, f: impl Fn(usize, usize) -> f64) -> M {
        let mut m = M::zeros(rows, cols);
        for i in 0..rows {
            for j in 0..cols {
                m.data[i * cols + j] = f(i, j);
            }
        }
        m
    }
    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * self.cols + j] = v;
    }
    pub fn t(&self) -> M {
        M::from_fn(self.cols, self.rows, |i, j| self.at(j, i))
    }
    pub fn mul(&self, other: &M) -> M {
        assert_eq!(self.cols, other.rows, "matrix product shapes");
        let mut out = M::zeros(self.rows, other.cols);
        for i in 0..self.rows {
            for k in 0..self.cols {
                let a = self.at(i, k);
                if a == 0.0 {
                    continue;
                }
                for j in 0..other.cols {
                    out.data[i * other.cols + j] += a * other.at(k, j);
                }
            }
        }
        out
    }
    pub fn map(&self, f: impl Fn(f64) -> f64) -> M {
        M { rows: self.rows, cols: self.cols, data: self.data.iter().map(|v| f(*v)).collect() }
    }
    pub fn sub(&self, other: &M) -> M {
        M { rows: self.rows, cols: self.cols, data: self.data.iter().zip(&other.data).map(|(a, b)| a - b).collect() }
    }
    pub fn scale(&self, s: f64) -> M {
        self.map(|v| v * s)
    }
    fn faer(&self) -> Mat<f64> {
        // faer's decompositions default to the global parallelism, Rayon(all threads), which
        // makes their reductions (and so the last bits) depend on the thread count. Every
        // decomposition starts here, so pin faer to sequential code once per process.
        static SEQUENTIAL: std::sync::Once = std::sync::Once::new();
        SEQUENTIAL.call_once(|| faer::set_global_parallelism(faer::Par::Seq));
        Mat::from_fn(self.rows, self.cols, |i, j| self.at(i, j))
    }
    fn from_faer(m: faer::MatRef<'_, f64>) -> M {
        M::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)])
    }

    /// Eigenvalues in decreasing order and eigenvectors as columns (each scaled so that its
    /// largest-magnitude entry is positive, for a deterministic sign).
    pub fn sym_eigen(&self) -> Option<(Vec<f64>, M)> {
        let evd = self.faer().self_adjoint_eigen(Side::Lower).ok()?;
        let n = self.rows;
        let values: Vec<f64> = (0..n).map(|i| evd.S().column_vector()[n - 1 - i]).collect();
        let u = evd.U();
        let mut vectors = M::from_fn(n, n, |i, j| u[(i, n - 1 - j)]);
        for j in 0..n {
            let (mut best, mut big) = (0.0f64, 0.0f64);
            for i in 0..n {
                let v = vectors.at(i, j);
                if v.abs() > big.abs() + 1e-12 {
                    big = v;
                    best = v;
                }
            }
            if best < 0.0 {
                for i in 0..n {
                    let v = vectors.at(i, j);
                    vectors.set(i, j, -v);
                }
            }
        }
        Some((values, vectors))
    }

    /// Thin SVD: (U, singular values, V).
    pub fn svd(&self) -> Option<(M, Vec<f64>, M)> {
        let svd = self.faer().svd().ok()?;
        let k = self.rows.min(self.cols);
        let s: Vec<f64> = (0..k).map(|i| svd.S().column_vector()[i]).collect();
        let u = M::from_faer(svd.U().subcols(0, k));
        let v = M::from_faer(svd.V().subcols(0, k));
        Some((u, s, v))
    }

    /// Inverse of a square matrix (LU with partial pivoting via faer); None when singular.
    pub fn inverse(&self) -> Option<M> {
        let n = self.rows;
        let lu = self.faer().partial_piv_lu();
        let inv = lu.inverse();
        let out = M::from_faer(inv.as_ref());
        out.data.iter().all(|v| v.is_finite()).then_some(out).filter(|_| n > 0)
    }

    /// Symmetric matrix function f(A) = V f(Λ) Vᵀ (e.g. square root, inverse square root).
    pub fn sym_fn(&self, f: impl Fn(f64) -> f64) -> Option<M> {
        let (values, vectors) = self.sym_eigen()?;
        let d = M::from_fn(self.rows, self.rows, |i, j| if i == j { f(values[i]) } else { 0.0 });
        Some(vectors.mul(&d).mul(&vectors.t()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_svd_inverse() {
        let a = M { rows: 2, cols: 2, data: vec![2.0, 1.0, 1.0, 2.0] };
        let (values, vectors) = a.sym_eigen().unwrap();
        assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
        assert!(vectors.at(0, 0) > 0.0);
        let inv = a.inverse().unwrap();
        let id = a.mul(&inv);
        assert!((id.at(0, 0) - 1.0).abs() < 1e-12 && id.at(0, 1).abs() < 1e-12);
        let (u, s, v) = a.svd().unwrap();
        let back = u.mul(&M::from_fn(2, 2, |i, j| if i == j { s[i] } else { 0.0 })).mul(&v.t());
        assert!(back.sub(&a).data.iter().all(|x| x.abs() < 1e-12));
        let root = a.sym_fn(f64::sqrt).unwrap();
        assert!(root.mul(&root).sub(&a).data.iter().all(|x| x.abs() < 1e-12));
    }
}
