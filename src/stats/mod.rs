//! Statistics: seeded randomness, OLS, permutation and bootstrap inference, FDR, quantiles,
//! voxelwise GLM with max-T and cluster-extent FWE, ROC analysis.

pub mod association;
pub mod dense;
pub mod exchange;
pub mod fdr;
pub mod linalg;
pub mod nbs;
pub mod predict;
pub mod quantile;
pub mod rng;
pub mod roc;
pub mod tfce;
pub mod voxelwise;

/// Reusable buffers for the threads that ask: `take` one (or make one when none is free), use
/// it, `give` it back. Holds as many as were ever in use at once.
pub struct Pool<T>(std::sync::Mutex<Vec<T>>);

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool(Default::default())
    }
}

impl<T> Pool<T> {
    pub fn take(&self, make: impl FnOnce() -> T) -> T {
        self.0.lock().ok().and_then(|mut free| free.pop()).unwrap_or_else(make)
    }

    pub fn give(&self, item: T) {
        if let Ok(mut free) = self.0.lock() {
            free.push(item);
        }
    }
}

/// Two-sided p-value of a t statistic with `df` degrees of freedom, from the regularised
/// incomplete beta function: p = I_{df/(df+t²)}(df/2, 1/2). Accurate in the far tail, where
/// `1 - cdf` would cancel.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return if t.is_nan() { f64::NAN } else { 0.0 };
    }
    let x = df / (df + t * t);
    statrs::function::beta::beta_reg(df / 2.0, 0.5, x).clamp(0.0, 1.0)
}

/// Mean and SD (ddof = 1) of finite values.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_p_values_match_known_values() {
        // R: 2*pt(-2.0, 10) = 0.07338803; 2*pt(-6.52, 25000) ≈ 7.1e-11
        assert!((t_two_sided_p(2.0, 10.0) - 0.073_388_034_770_740_7).abs() < 1e-12);
        assert!((t_two_sided_p(-2.0, 10.0) - 0.073_388_034_770_740_7).abs() < 1e-12);
        assert_eq!(t_two_sided_p(0.0, 5.0), 1.0);
        let p = t_two_sided_p(6.52, 25_000.0);
        assert!(p > 6.5e-11 && p < 7.6e-11, "{p}");
    }
}
