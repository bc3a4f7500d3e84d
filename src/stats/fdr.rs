//! Benjamini–Hochberg false discovery rate.

/// BH-adjusted p-values (q-values), in input order: q_(i) = min_{j ≥ i} min(1, m·p_(j)/j).
/// NaN p-values are left NaN and do not count towards m.
pub fn bh_adjust(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    // Stable sort on p; ties keep input order (the result does not depend on tie order).
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = order.len() as f64;
    let mut q = vec![f64::NAN; p.len()];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m / (rank + 1) as f64).min(1.0);
        q[i] = running;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_known_case() {
        // statsmodels multipletests([0.01, 0.04, 0.03, 0.5], method="fdr_bh")
        let q = bh_adjust(&[0.01, 0.04, 0.03, 0.5]);
        let expected = [0.04, 0.053_333_333_333_333_33, 0.053_333_333_333_333_33, 0.5];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-15, "{q:?}");
        }
        assert!(bh_adjust(&[f64::NAN, 0.2])[0].is_nan());
    }
}
