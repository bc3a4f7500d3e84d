//! Butterworth filtering, forward and backward (zero phase), as `scipy.signal.butter(...,
//! output="sos")` followed by `scipy.signal.sosfiltfilt(..., padtype="odd")` — what nilearn's
//! `signal.clean` uses for `low_pass` / `high_pass`.
//!
//! Design: analogue Butterworth prototype poles p_k = −exp(iπ(2k − N + 1)/(2N)), pre-warped
//! cut-offs ω = 4·tan(π·W/2) (W as a fraction of Nyquist), low-pass / high-pass / band-pass
//! transformation of the zeros, poles and gain, bilinear transform with fs = 2, then second-order
//! sections (conjugate poles paired, a lone real pole in a first-order section). The filter is
//! applied forward, then backward, after odd extension of `padlen = 3·(2·sections + 1 −
//! first-order sections)` samples at both ends, each pass starting from the steady state of the
//! cascade for the first sample — scipy's `sosfilt_zi` scaled by it.

use faer::c64;

/// Second-order sections [b0, b1, b2, a0 = 1, a1, a2].
pub type Sos = Vec<[f64; 6]>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Band {
    /// Keep frequencies below the cut-off (fraction of Nyquist).
    Low(f64),
    High(f64),
    /// Keep frequencies between low and high (fractions of Nyquist).
    Pass(f64, f64),
}

fn prewarp(w: f64) -> f64 {
    4.0 * (std::f64::consts::PI * w / 2.0).tan()
}

/// Butterworth design of order `order` as second-order sections.
pub fn butterworth(order: usize, band: Band) -> Sos {
    let n = order as f64;
    let proto: Vec<c64> = (0..order)
        .map(|k| {
            let m = -(order as f64) + 1.0 + 2.0 * k as f64;
            let theta = std::f64::consts::PI * m / (2.0 * n);
            -c64::new(theta.cos(), theta.sin())
        })
        .collect();
    let (zeros, poles, gain): (Vec<c64>, Vec<c64>, f64) = match band {
        Band::Low(w) => {
            let wo = prewarp(w);
            (Vec::new(), proto.iter().map(|p| p * wo).collect(), wo.powi(order as i32))
        }
        Band::High(w) => {
            let wo = prewarp(w);
            let poles: Vec<c64> = proto.iter().map(|p| c64::new(wo, 0.0) / p).collect();
            // k · real(Π(−z)/Π(−p)) with no prototype zeros.
            let prod = proto.iter().fold(c64::new(1.0, 0.0), |acc, p| acc * (-p));
            (vec![c64::new(0.0, 0.0); order], poles, (c64::new(1.0, 0.0) / prod).re)
        }
        Band::Pass(lo, hi) => {
            let (w1, w2) = (prewarp(lo), prewarp(hi));
            let bw = w2 - w1;
            let wo = (w1 * w2).sqrt();
            let mut poles = Vec::with_capacity(2 * order);
            for p in &proto {
                let pl = p * (bw / 2.0);
                let root = (pl * pl - wo * wo).sqrt();
                poles.push(pl + root);
                poles.push(pl - root);
            }
            (vec![c64::new(0.0, 0.0); order], poles, bw.powi(order as i32))
        }
    };
    // Bilinear transform, fs = 2 (so 2·fs = 4).
    let fs2 = 4.0;
    let zd: Vec<c64> = zeros.iter().map(|z| (fs2 + z) / (fs2 - z)).collect();
    let pd: Vec<c64> = poles.iter().map(|p| (fs2 + p) / (fs2 - p)).collect();
    let mut zd = zd;
    while zd.len() < pd.len() {
        zd.push(c64::new(-1.0, 0.0));
    }
    let num = zeros.iter().fold(c64::new(1.0, 0.0), |acc, z| acc * (fs2 - z));
    let den = poles.iter().fold(c64::new(1.0, 0.0), |acc, p| acc * (fs2 - p));
    let k = gain * (num / den).re;
    sections(&zd, &pd, k)
}

/// Group zeros and poles into second-order sections.
fn sections(zeros: &[c64], poles: &[c64], gain: f64) -> Sos {
    let tol = 1e-9;
    // Poles: conjugate pairs (upper half plane representative), then real poles in pairs.
    let mut complex: Vec<c64> = poles.iter().copied().filter(|p| p.im > tol).collect();
    complex.sort_by(|a, b| a.norm().total_cmp(&b.norm()));
    let mut real: Vec<f64> = poles.iter().filter(|p| p.im.abs() <= tol).map(|p| p.re).collect();
    real.sort_by(f64::total_cmp);
    let mut pole_groups: Vec<[f64; 2]> = complex.iter().map(|p| [-2.0 * p.re, p.norm_sqr()]).collect();
    for pair in real.chunks(2) {
        pole_groups.push(if pair.len() == 2 { [-(pair[0] + pair[1]), pair[0] * pair[1]] } else { [-pair[0], 0.0] });
    }
    // Zeros (all real here: ±1 or 0 → ±1 after the transform), paired likewise.
    let mut zero_real: Vec<f64> = zeros.iter().map(|z| z.re).collect();
    zero_real.sort_by(f64::total_cmp);
    let mut zero_groups: Vec<[f64; 2]> = Vec::new();
    // Pair a +1 with a −1 where possible, as scipy's nearest-pairing yields for band-pass.
    let (mut plus, mut minus): (Vec<f64>, Vec<f64>) = zero_real.iter().partition(|z| **z > 0.0);
    while !plus.is_empty() || !minus.is_empty() {
        let pair: Vec<f64> = match (plus.pop(), minus.pop()) {
            (Some(a), Some(b)) => vec![a, b],
            (Some(a), None) => match plus.pop() {
                Some(b) => vec![a, b],
                None => vec![a],
            },
            (None, Some(a)) => match minus.pop() {
                Some(b) => vec![a, b],
                None => vec![a],
            },
            (None, None) => unreachable!(),
        };
        zero_groups.push(if pair.len() == 2 { [-(pair[0] + pair[1]), pair[0] * pair[1]] } else { [-pair[0], 0.0] });
    }
    let count = pole_groups.len().max(zero_groups.len());
    let mut sos = Vec::with_capacity(count);
    for s in 0..count {
        let p = pole_groups.get(s).copied().unwrap_or([0.0, 0.0]);
        let z = zero_groups.get(s).copied().unwrap_or([0.0, 0.0]);
        let first_order_zero = zero_groups.get(s).is_some_and(|g| g[1] == 0.0 && p[1] == 0.0);
        let b = if first_order_zero { [1.0, z[0], 0.0] } else { [1.0, z[0], z[1]] };
        sos.push([b[0], b[1], b[2], 1.0, p[0], p[1]]);
    }
    for v in sos[0].iter_mut().take(3) {
        *v *= gain;
    }
    sos
}

/// Steady-state initial conditions of each section for a unit step (scipy's `sosfilt_zi`).
fn sosfilt_zi(sos: &Sos) -> Vec<[f64; 2]> {
    let mut scale = 1.0;
    let mut out = Vec::with_capacity(sos.len());
    for s in sos {
        let (b, a) = ([s[0], s[1], s[2]], [s[3], s[4], s[5]]);
        // Solve (I − Aᵀ) zi = b[1:] − a[1:]·b0 with A the companion matrix of a.
        let rhs = [b[1] - a[1] * b[0], b[2] - a[2] * b[0]];
        // [[1 + a1, −1], [a2, 1]] zi = rhs
        let det = (1.0 + a[1]) + a[2];
        let z0 = (rhs[0] + rhs[1]) / det;
        let z1 = rhs[1] - a[2] * z0;
        out.push([z0 * scale, z1 * scale]);
        scale *= (b[0] + b[1] + b[2]) / (a[0] + a[1] + a[2]);
    }
    out
}

fn sosfilt(sos: &Sos, x: &mut [f64], zi: &[[f64; 2]], x0: f64) {
    for (s, z) in sos.iter().zip(zi) {
        let (mut z0, mut z1) = (z[0] * x0, z[1] * x0);
        for v in x.iter_mut() {
            let input = *v;
            let y = s[0] * input + z0;
            z0 = s[1] * input - s[4] * y + z1;
            z1 = s[2] * input - s[5] * y;
            *v = y;
        }
    }
}

/// Default pad length of `sosfiltfilt`.
pub fn default_padlen(sos: &Sos) -> usize {
    let b2_zero = sos.iter().filter(|s| s[2] == 0.0).count();
    let a2_zero = sos.iter().filter(|s| s[5] == 0.0).count();
    3 * (2 * sos.len() + 1 - b2_zero.min(a2_zero))
}

/// Zero-phase filtering of one series (scipy `sosfiltfilt`, `padtype="odd"`). Series not longer
/// than the pad length are an error for the caller to report.
pub fn filtfilt(sos: &Sos, x: &[f64]) -> Result<Vec<f64>, String> {
    let padlen = default_padlen(sos);
    let n = x.len();
    if n <= padlen {
        return Err(format!("{n} volumes are too few to filter (need more than {padlen})"));
    }
    let mut ext = Vec::with_capacity(n + 2 * padlen);
    for i in (1..=padlen).rev() {
        ext.push(2.0 * x[0] - x[i]);
    }
    ext.extend_from_slice(x);
    for i in 1..=padlen {
        ext.push(2.0 * x[n - 1] - x[n - 1 - i]);
    }
    let zi = sosfilt_zi(sos);
    let first = ext[0];
    sosfilt(sos, &mut ext, &zi, first);
    ext.reverse();
    let first = ext[0];
    sosfilt(sos, &mut ext, &zi, first);
    ext.reverse();
    Ok(ext[padlen..padlen + n].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against scipy (tests/fixtures/filter/make_filter_fixture.py).
    #[test]
    fn matches_scipy_sosfiltfilt() {
        let text = include_str!("../../tests/fixtures/filter/expected.tsv");
        let rows: Vec<Vec<f64>> =
            text.lines().skip(1).map(|l| l.split('\t').map(|v| v.parse().unwrap()).collect()).collect();
        let x: Vec<f64> = rows.iter().map(|r| r[0]).collect();
        for (column, band) in [(1, Band::Low(0.4)), (2, Band::High(0.04)), (3, Band::Pass(0.04, 0.4))] {
            let ours = filtfilt(&butterworth(5, band), &x).unwrap();
            let worst = ours.iter().zip(&rows).map(|(a, r)| (a - r[column]).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-9, "{band:?}: max abs difference {worst:e}");
        }
    }
}
