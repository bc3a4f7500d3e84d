//! Filling censored volumes before filtering: a cubic spline with not-a-knot end conditions
//! through the kept volumes (scipy's `CubicSpline(x, y)`, extrapolating past the ends), as
//! nilearn does before band-pass filtering scrubbed data.

/// Second derivatives of the not-a-knot cubic spline through (x, y); x strictly increasing.
fn second_derivatives(x: &[f64], y: &[f64]) -> Vec<f64> {
    let n = x.len();
    let h: Vec<f64> = (0..n - 1).map(|i| x[i + 1] - x[i]).collect();
    if n < 4 {
        // 2 points: a line; 3 points: the parabola through them (constant second derivative).
        if n == 3 {
            let m = 2.0 * ((y[2] - y[1]) / h[1] - (y[1] - y[0]) / h[0]) / (h[0] + h[1]);
            return vec![m; 3];
        }
        return vec![0.0; n];
    }
    // Unknowns M_1 … M_{n−2}; M_0 and M_{n−1} follow from the not-a-knot conditions.
    let m = n - 2;
    let mut sub = vec![0.0; m];
    let mut diag = vec![0.0; m];
    let mut sup = vec![0.0; m];
    let mut rhs = vec![0.0; m];
    for k in 0..m {
        let i = k + 1;
        sub[k] = h[i - 1];
        diag[k] = 2.0 * (h[i - 1] + h[i]);
        sup[k] = h[i];
        rhs[k] = 6.0 * ((y[i + 1] - y[i]) / h[i] - (y[i] - y[i - 1]) / h[i - 1]);
    }
    // M_0 = ((h0 + h1) M_1 − h0 M_2) / h1, substituted into the first equation.
    let (h0, h1) = (h[0], h[1]);
    diag[0] += h0 * (h0 + h1) / h1;
    sup[0] -= h0 * h0 / h1;
    // M_{n−1} = ((h_{n−2} + h_{n−3}) M_{n−2} − h_{n−2} M_{n−3}) / h_{n−3}, into the last one.
    let (ha, hb) = (h[n - 3], h[n - 2]);
    diag[m - 1] += hb * (ha + hb) / ha;
    sub[m - 1] -= hb * hb / ha;
    // Thomas algorithm (the system is diagonally dominant).
    for k in 1..m {
        let w = sub[k] / diag[k - 1];
        diag[k] -= w * sup[k - 1];
        rhs[k] -= w * rhs[k - 1];
    }
    let mut inner = vec![0.0; m];
    inner[m - 1] = rhs[m - 1] / diag[m - 1];
    for k in (0..m - 1).rev() {
        inner[k] = (rhs[k] - sup[k] * inner[k + 1]) / diag[k];
    }
    let mut out = Vec::with_capacity(n);
    out.push(((h0 + h1) * inner[0] - h0 * inner.get(1).copied().unwrap_or(inner[0])) / h1);
    out.extend_from_slice(&inner);
    let last = ((ha + hb) * inner[m - 1] - hb * if m >= 2 { inner[m - 2] } else { inner[0] }) / ha;
    out.push(last);
    out
}

fn evaluate(x: &[f64], y: &[f64], m: &[f64], at: f64) -> f64 {
    let n = x.len();
    if n == 1 {
        return y[0];
    }
    let i = match x.iter().position(|&v| v > at) {
        Some(0) => 0,
        Some(p) => p - 1,
        None => n - 2,
    }
    .min(n - 2);
    let h = x[i + 1] - x[i];
    let (a, b) = (x[i + 1] - at, at - x[i]);
    m[i] * a.powi(3) / (6.0 * h)
        + m[i + 1] * b.powi(3) / (6.0 * h)
        + (y[i] / h - m[i] * h / 6.0) * a
        + (y[i + 1] / h - m[i + 1] * h / 6.0) * b
}

/// Replace the values of censored volumes (those not in `keep`) of each column of a T × C
/// row-major matrix by the spline through the kept volumes.
pub fn fill_censored(values: &mut [f64], t: usize, c: usize, keep: &[usize]) {
    if keep.len() == t || keep.is_empty() || c == 0 {
        return;
    }
    let x: Vec<f64> = keep.iter().map(|&i| i as f64).collect();
    let censored: Vec<usize> = (0..t).filter(|i| keep.binary_search(i).is_err()).collect();
    for col in 0..c {
        let y: Vec<f64> = keep.iter().map(|&i| values[i * c + col]).collect();
        let m = second_derivatives(&x, &y);
        for &i in &censored {
            values[i * c + col] = evaluate(&x, &y, &m, i as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_cubics_exactly() {
        // A not-a-knot spline reproduces any cubic, including when extrapolating.
        let f = |x: f64| 0.5 * x * x * x - 2.0 * x * x + x - 3.0;
        let keep = [0usize, 1, 3, 4, 7, 8, 9];
        let mut v: Vec<f64> = (0..11).map(|i| f(i as f64)).collect();
        let truth = v.clone();
        for i in [2, 5, 6, 10] {
            v[i] = 999.0;
        }
        fill_censored(&mut v, 11, 1, &keep);
        for i in 0..11 {
            assert!((v[i] - truth[i]).abs() < 1e-9, "t={i}: {} vs {}", v[i], truth[i]);
        }
    }
}
