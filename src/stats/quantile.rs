//! Quantiles and percentile intervals.

/// Quantile of sorted values with linear interpolation between order statistics
/// (numpy's default, Hyndman & Fan type 7): h = (n − 1)·p.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let (a, b, g) = (sorted[lo], sorted[hi], h - lo as f64);
    // numpy's lerp: interpolate from the nearer end, so results match it bit for bit.
    if g >= 0.5 { b - (b - a) * (1.0 - g) } else { a + (b - a) * g }
}

/// Percentile interval at `level` (e.g. 0.95): the (1−level)/2 and (1+level)/2 quantiles.
pub fn percentile_interval(values: &mut [f64], level: f64) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    (quantile_sorted(values, tail), quantile_sorted(values, 1.0 - tail))
}

/// Quartiles (Q1, Q3) of values, NaNs ignored.
pub fn quartiles(values: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    (quantile_sorted(&v, 0.25), quantile_sorted(&v, 0.75))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_linear() {
        // np.quantile([1, 2, 3, 4], [0.25, 0.5, 0.9]) = [1.75, 2.5, 3.7]
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile_sorted(&v, 0.25) - 1.75).abs() < 1e-15);
        assert!((quantile_sorted(&v, 0.5) - 2.5).abs() < 1e-15);
        assert!((quantile_sorted(&v, 0.9) - 3.7).abs() < 1e-12);
    }
}
