//! Denoising region time series with the semantics of nilearn's `signal.clean` (as called by
//! `NiftiLabelsMasker`; reference: tests/fixtures/imaging/NILEARN_SEMANTICS.md).
//!
//! Order of operations, on signals (T × R) and confounds (T × C) alike where it says so:
//! 1. scrubbing, when a filter is applied: the series is cut to the span from the first to the
//!    last kept volume, and censored volumes inside it are replaced, in signals and confounds,
//!    by a not-a-knot cubic spline through the kept volumes (so filtering does not smear motion
//!    spikes); without a filter, censored volumes are simply dropped here;
//! 2. linear detrending of signals and confounds (least-squares line removed per column);
//! 3. Butterworth filtering (order 5, zero phase) of signals and confounds;
//! 4. censored volumes are dropped (when a filter was applied);
//! 5. confounds are z-scored and projected out of the signals (orthonormal basis of the
//!    confound columns, near-collinear columns dropped);
//! 6. signals are z-scored (ddof = 1).
//!
//! One deliberate difference: nilearn 0.14.1 indexes the volumes to interpolate with `~K` on
//! an integer index array, which selects the *mirror* rows n−1−k, so a censored volume whose
//! mirror is also censored is never interpolated (NILEARN_SEMANTICS.md §4.3). We interpolate
//! the censored volumes themselves, which is what nilearn documents; the two agree whenever no
//! censored volume's mirror is censored, and the tests check both facts.

use super::extract::TimeSeries;
use super::filter::{Band, butterworth, filtfilt};
use crate::error::{Error, Result};
use crate::tables::Tsv;
use std::path::Path;

/// Named confound strategies over fMRIPrep's confound columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// No confound regression.
    None,
    /// Six motion parameters.
    P6,
    /// Motion, derivatives, squares and squared derivatives.
    P24,
    /// 24P plus CSF, white matter and global signal with the same expansions.
    P36,
    /// 6P plus the first `n` anatomical CompCor components.
    ACompCor(usize),
    /// 6P plus the global signal.
    Gsr,
    /// Exactly these columns.
    Custom(Vec<String>),
}

const MOTION: [&str; 6] = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"];
const EXPANSIONS: [&str; 4] = ["", "_derivative1", "_power2", "_derivative1_power2"];

impl Strategy {
    pub fn parse(text: &str) -> Result<Strategy> {
        let lower = text.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "none" => Strategy::None,
            "6p" => Strategy::P6,
            "24p" => Strategy::P24,
            "36p" => Strategy::P36,
            "gsr" => Strategy::Gsr,
            _ if lower.starts_with("acompcor") => {
                let n = lower.trim_start_matches("acompcor").trim_start_matches(['-', '_', ':']);
                let n = if n.is_empty() {
                    5
                } else {
                    n.parse()
                        .map_err(|_| Error::Data(format!("`{text}`: write aCompCor with a count, e.g. acompcor6")))?
                };
                Strategy::ACompCor(n)
            }
            _ if text.contains(',') => Strategy::Custom(text.split(',').map(|s| s.trim().to_string()).collect()),
            _ => {
                return Err(Error::Data(format!(
                    "unknown confound strategy `{text}`; use none, 6P, 24P, 36P, acompcorN, gsr, or a comma-separated column list"
                )));
            }
        })
    }

    /// The confound columns this strategy reads.
    pub fn columns(&self) -> Vec<String> {
        let expand = |bases: &[&str]| -> Vec<String> {
            EXPANSIONS.iter().flat_map(|s| bases.iter().map(move |b| format!("{b}{s}"))).collect()
        };
        match self {
            Strategy::None => Vec::new(),
            Strategy::P6 => MOTION.iter().map(|s| s.to_string()).collect(),
            Strategy::P24 => expand(&MOTION),
            Strategy::P36 => {
                let mut c = expand(&MOTION);
                c.extend(expand(&["csf", "white_matter", "global_signal"]));
                c
            }
            Strategy::ACompCor(n) => {
                let mut c: Vec<String> = MOTION.iter().map(|s| s.to_string()).collect();
                c.extend((0..*n).map(|i| format!("a_comp_cor_{i:02}")));
                c
            }
            Strategy::Gsr => {
                let mut c: Vec<String> = MOTION.iter().map(|s| s.to_string()).collect();
                c.push("global_signal".into());
                c
            }
            Strategy::Custom(columns) => columns.clone(),
        }
    }
}

/// A confounds table (fMRIPrep `*_desc-confounds_timeseries.tsv`).
pub struct Confounds {
    pub path: String,
    table: Tsv,
}

impl Confounds {
    pub fn read(path: &Path) -> Result<Confounds> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(Confounds { path: path.display().to_string(), table: Tsv::parse(&text) })
    }

    pub fn rows(&self) -> usize {
        self.table.rows.len()
    }

    /// Columns as a T × C row-major matrix. `n/a` in the first row (fMRIPrep cannot difference
    /// the first volume) takes the second row's value, as nilearn's `load_confounds` does; any
    /// other missing value is an error.
    pub fn matrix(&self, columns: &[String]) -> Result<Vec<f64>> {
        let t = self.rows();
        let mut out = vec![0.0; t * columns.len()];
        for (c, name) in columns.iter().enumerate() {
            let at = self.table.col(name).ok_or_else(|| {
                let hint = crate::error::did_you_mean(name, self.table.header.iter().map(String::as_str))
                    .map(|b| format!(" (did you mean `{b}`?)"))
                    .unwrap_or_default();
                Error::data(format!("{}: no confound column `{name}`{hint}", self.path))
            })?;
            for row in 0..t {
                let cell = self.table.rows[row].get(at).map(String::as_str).unwrap_or("");
                let parse = |row: usize| -> Result<f64> {
                    let text = self.table.rows[row].get(at).map(String::as_str).unwrap_or("").trim();
                    text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                        Error::data(format!(
                            "{}:{}: confound `{name}` has `{text}`; expected a number",
                            self.path,
                            row + 2
                        ))
                    })
                };
                let value = match cell.trim() {
                    "n/a" | "" | "NaN" | "nan" if row == 0 && t > 1 => parse(1)?,
                    _ => parse(row)?,
                };
                out[row * columns.len() + c] = value;
            }
        }
        Ok(out)
    }

    /// Framewise displacement per volume (the first volume's `n/a` read as 0).
    pub fn framewise_displacement(&self) -> Result<Vec<f64>> {
        let t = self.rows();
        let at = self
            .table
            .col("framewise_displacement")
            .ok_or_else(|| Error::data(format!("{}: no `framewise_displacement` column for scrubbing", self.path)))?;
        (0..t)
            .map(|row| {
                let cell = self.table.rows[row].get(at).map(String::as_str).unwrap_or("").trim().to_string();
                if row == 0 && (cell == "n/a" || cell.is_empty()) {
                    return Ok(0.0);
                }
                cell.parse::<f64>()
                    .map_err(|_| Error::data(format!("{}:{}: framewise_displacement has `{cell}`", self.path, row + 2)))
            })
            .collect()
    }
}

/// Volumes kept after scrubbing: FD ≤ threshold, and no kept segment shorter than `min_segment`.
pub fn scrub(fd: &[f64], threshold: f64, min_segment: usize) -> Vec<usize> {
    let mut keep: Vec<bool> = fd.iter().map(|v| *v <= threshold).collect();
    let mut t = 0;
    while t < keep.len() {
        if keep[t] {
            let start = t;
            while t < keep.len() && keep[t] {
                t += 1;
            }
            if t - start < min_segment {
                keep[start..t].iter_mut().for_each(|k| *k = false);
            }
        } else {
            t += 1;
        }
    }
    keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect()
}

/// Cleaning settings.
#[derive(Debug, Clone)]
pub struct Clean {
    pub detrend: bool,
    pub standardise: bool,
    pub standardise_confounds: bool,
    /// Band in Hz (low cut, high cut); either may be absent.
    pub high_pass: Option<f64>,
    pub low_pass: Option<f64>,
    /// Repetition time (s); needed for filtering.
    pub tr: Option<f64>,
}

fn detrend_columns(x: &mut [f64], t: usize, c: usize) {
    // Remove mean and least-squares linear trend, as scipy.signal.detrend(type="linear").
    let tm = (t as f64 - 1.0) / 2.0;
    let stt: f64 = (0..t).map(|i| (i as f64 - tm).powi(2)).sum();
    for col in 0..c {
        let mean = (0..t).map(|i| x[i * c + col]).sum::<f64>() / t as f64;
        let slope = (0..t).map(|i| (i as f64 - tm) * (x[i * c + col] - mean)).sum::<f64>() / stt;
        for i in 0..t {
            x[i * c + col] -= mean + slope * (i as f64 - tm);
        }
    }
}

fn zscore_columns(x: &mut [f64], t: usize, c: usize) {
    for col in 0..c {
        let mean = (0..t).map(|i| x[i * c + col]).sum::<f64>() / t as f64;
        let var = (0..t).map(|i| (x[i * c + col] - mean).powi(2)).sum::<f64>() / (t as f64 - 1.0);
        let sd = var.sqrt();
        let sd = if sd < f64::EPSILON { 1.0 } else { sd };
        for i in 0..t {
            x[i * c + col] = (x[i * c + col] - mean) / sd;
        }
    }
}

fn filter_columns(x: &mut [f64], t: usize, c: usize, sos: &super::filter::Sos) -> Result<()> {
    for col in 0..c {
        let series: Vec<f64> = (0..t).map(|i| x[i * c + col]).collect();
        let filtered = filtfilt(sos, &series).map_err(Error::data)?;
        for i in 0..t {
            x[i * c + col] = filtered[i];
        }
    }
    Ok(())
}

/// Why a band-pass (cut-offs in Hz; `None` omits a side) cannot be applied at repetition time
/// `tr` (s), or `None` when it can: each cut-off must lie strictly between 0 and the Nyquist
/// frequency, and the high-pass below the low-pass.
pub fn band_problem(high: Option<f64>, low: Option<f64>, tr: f64) -> Option<String> {
    let nyquist = 0.5 / tr;
    for (name, cut) in [("high-pass", high), ("low-pass", low)] {
        if let Some(c) = cut
            && !(c > 0.0 && c < nyquist)
        {
            return Some(format!(
                "{name} cut-off {c} Hz must lie between 0 and the Nyquist frequency {nyquist} Hz (TR {tr} s)"
            ));
        }
    }
    match (high, low) {
        (Some(h), Some(l)) if h >= l => {
            Some(format!("the band [{h}, {l}] Hz is empty: the high-pass cut-off must be below the low-pass one"))
        }
        _ => None,
    }
}

/// Clean region time series. `confounds` is T × C row-major (C may be 0); `keep` lists the
/// volumes retained after scrubbing (None = all).
pub fn clean(
    ts: &TimeSeries,
    confounds: &[f64],
    n_confounds: usize,
    keep: Option<&[usize]>,
    spec: &Clean,
) -> Result<TimeSeries> {
    let t = ts.volumes;
    let r = ts.regions();
    let mut signals = ts.values.clone();
    let mut conf = confounds.to_vec();
    let band = match (spec.high_pass, spec.low_pass) {
        (None, None) => None,
        (high, low) => {
            let tr = spec.tr.ok_or_else(|| Error::Data("filtering needs the repetition time (--tr)".into()))?;
            if let Some(problem) = band_problem(high, low, tr) {
                return Err(Error::Data(problem));
            }
            let nyquist = 0.5 / tr;
            Some(match (high, low) {
                (Some(h), Some(l)) => Band::Pass(h / nyquist, l / nyquist),
                (Some(h), None) => Band::High(h / nyquist),
                (None, Some(l)) => Band::Low(l / nyquist),
                (None, None) => unreachable!(),
            })
        }
    };
    // Scrubbing. With a filter: keep the span from the first to the last kept volume, fill the
    // censored volumes inside it with a spline through the kept ones, filter, then drop them.
    // Without a filter: drop censored volumes first (nilearn detrends the shortened series).
    let (mut t, mut keep_after): (usize, Option<Vec<usize>>) = (t, None);
    if let Some(keep) = keep {
        let pick = |x: &[f64], c: usize, rows: &[usize]| -> Vec<f64> {
            rows.iter().flat_map(|&i| x[i * c..(i + 1) * c].to_vec()).collect()
        };
        if band.is_some() {
            let (first, last) = (keep[0], keep[keep.len() - 1]);
            let span: Vec<usize> = (first..=last).collect();
            signals = pick(&signals, r, &span);
            conf = pick(&conf, n_confounds, &span);
            t = span.len();
            let shifted: Vec<usize> = keep.iter().map(|k| k - first).collect();
            super::interpolate::fill_censored(&mut signals, t, r, &shifted);
            super::interpolate::fill_censored(&mut conf, t, n_confounds, &shifted);
            keep_after = Some(shifted);
        } else {
            signals = pick(&signals, r, keep);
            conf = pick(&conf, n_confounds, keep);
            t = keep.len();
        }
    }
    if spec.detrend {
        detrend_columns(&mut signals, t, r);
        detrend_columns(&mut conf, t, n_confounds);
    }
    if let Some(band) = band {
        let sos = butterworth(5, band);
        filter_columns(&mut signals, t, r, &sos)?;
        filter_columns(&mut conf, t, n_confounds, &sos)?;
    }
    let (signals, conf, t) = match keep_after {
        Some(keep) => {
            let pick =
                |x: &[f64], c: usize| keep.iter().flat_map(|&i| x[i * c..(i + 1) * c].to_vec()).collect::<Vec<f64>>();
            (pick(&signals, r), pick(&conf, n_confounds), keep.len())
        }
        None => (signals, conf, t),
    };
    let mut signals = signals;
    if n_confounds > 0 {
        let mut conf = conf;
        if spec.standardise_confounds {
            zscore_columns(&mut conf, t, n_confounds);
        }
        project_out(&mut signals, t, r, &conf, n_confounds);
    }
    if spec.standardise {
        zscore_columns(&mut signals, t, r);
    }
    Ok(TimeSeries { names: ts.names.clone(), values: signals, volumes: t, tr: ts.tr })
}

/// Remove from each signal column its projection on the span of the confound columns.
fn project_out(signals: &mut [f64], t: usize, r: usize, conf: &[f64], c: usize) {
    // Column-major copy of confounds; Gram–Schmidt with re-orthogonalisation, dropping columns
    // whose residual norm is below 100·eps of their original norm (rank-deficient confounds).
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for col in 0..c {
        let mut v: Vec<f64> = (0..t).map(|i| conf[i * c + col]).collect();
        let norm0 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for _ in 0..2 {
            for q in &basis {
                let d: f64 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(q).for_each(|(x, qq)| *x -= d * qq);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 100.0 * f64::EPSILON * norm0.max(f64::MIN_POSITIVE) && norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
            basis.push(v);
        }
    }
    for col in 0..r {
        let mut s: Vec<f64> = (0..t).map(|i| signals[i * r + col]).collect();
        for q in &basis {
            let d: f64 = q.iter().zip(&s).map(|(a, b)| a * b).sum();
            s.iter_mut().zip(q).for_each(|(x, qq)| *x -= d * qq);
        }
        for i in 0..t {
            signals[i * r + col] = s[i];
        }
    }
}
