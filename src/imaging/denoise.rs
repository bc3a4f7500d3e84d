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

pub use super::confounds::{CompCor, Confounds};
use super::extract::TimeSeries;
use super::filter::{Band, butterworth, filtfilt};
use crate::error::{Error, Result};

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
    /// fMRIPrep's cosine (high-pass) columns, 6P and anatomical CompCor components
    /// (`combined` mask).
    ACompCor(CompCor),
    /// 6P plus the global signal.
    Gsr,
    /// nilearn's `load_confounds_strategy` presets: `simple` (cosines, 24P, CSF and white
    /// matter), `scrubbing` (cosines, 24P, CSF and white matter with expansions, and censoring
    /// at FD > 0.5 mm or std DVARS > 1.5 with 5-volume segments), `compcor` (cosines, 24P,
    /// every `combined` aCompCor component).
    Preset(Preset),
    /// Exactly these columns.
    Custom(Vec<String>),
}

/// nilearn's named denoising presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Simple,
    Scrubbing,
    CompCor,
}

/// Censoring thresholds that nilearn's `scrubbing` preset applies: FD (mm), std DVARS, and the
/// shortest kept segment (volumes).
pub const SCRUBBING_PRESET: Censoring =
    Censoring { fd_threshold: Some(0.5), std_dvars_threshold: Some(1.5), motion_outliers: false, min_segment: 5 };

const MOTION: [&str; 6] = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"];
const EXPANSIONS: [&str; 4] = ["", "_derivative1", "_power2", "_derivative1_power2"];

fn expand(bases: &[&str]) -> Vec<String> {
    EXPANSIONS.iter().flat_map(|s| bases.iter().map(move |b| format!("{b}{s}"))).collect()
}

impl Strategy {
    pub fn parse(text: &str) -> Result<Strategy> {
        let lower = text.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "none" => Strategy::None,
            "6p" => Strategy::P6,
            "24p" => Strategy::P24,
            "36p" => Strategy::P36,
            "gsr" => Strategy::Gsr,
            "simple" => Strategy::Preset(Preset::Simple),
            "scrubbing" => Strategy::Preset(Preset::Scrubbing),
            "compcor" => Strategy::Preset(Preset::CompCor),
            _ if lower.starts_with("acompcor") => {
                let n = lower.trim_start_matches("acompcor").trim_start_matches(['-', '_', ':']);
                let bad = || {
                    Error::Data(format!(
                        "`{text}`: write aCompCor with a count (acompcor6), `acompcor_all`, or a cumulative \
                         variance explained (acompcor50%)"
                    ))
                };
                let choice = if n.is_empty() {
                    CompCor::Count(5)
                } else if n == "all" {
                    CompCor::All
                } else if let Some(percent) = n.strip_suffix('%') {
                    let p: f64 = percent.parse().map_err(|_| bad())?;
                    if !(p > 0.0 && p <= 100.0) {
                        return Err(bad());
                    }
                    CompCor::Variance(p / 100.0)
                } else {
                    CompCor::Count(n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?)
                };
                Strategy::ACompCor(choice)
            }
            _ if text.contains(',') => Strategy::Custom(text.split(',').map(|s| s.trim().to_string()).collect()),
            _ => {
                return Err(Error::Data(format!(
                    "unknown confound strategy `{text}`; use none, 6P, 24P, 36P, acompcorN, acompcor_all, \
                     acompcorN%, gsr, nilearn's presets simple, scrubbing or compcor, or a comma-separated column list"
                )));
            }
        })
    }

    /// The confound columns this strategy reads from `confounds` (presets and aCompCor depend
    /// on what the file holds: its cosine columns and its sidecar).
    pub fn columns(&self, confounds: &Confounds) -> Result<Vec<String>> {
        let motion: Vec<String> = MOTION.iter().map(|s| s.to_string()).collect();
        Ok(match self {
            Strategy::None => Vec::new(),
            Strategy::P6 => motion,
            Strategy::P24 => expand(&MOTION),
            Strategy::P36 => {
                let mut c = expand(&MOTION);
                c.extend(expand(&["csf", "white_matter", "global_signal"]));
                c
            }
            Strategy::ACompCor(choice) => {
                // fMRIPrep computes CompCor after its high-pass: its cosines go with it (nilearn
                // refuses compcor without `high_pass`).
                let mut c = confounds.family("cosine");
                c.extend(motion);
                c.extend(confounds.acompcor(choice)?);
                c
            }
            Strategy::Gsr => {
                let mut c = motion;
                c.push("global_signal".into());
                c
            }
            Strategy::Preset(preset) => {
                let mut c = confounds.family("cosine");
                c.extend(expand(&MOTION));
                match preset {
                    Preset::Simple => c.extend(["csf".to_string(), "white_matter".to_string()]),
                    Preset::Scrubbing => c.extend(expand(&["csf", "white_matter"])),
                    Preset::CompCor => c.extend(confounds.acompcor(&CompCor::All)?),
                }
                c
            }
            Strategy::Custom(columns) => columns.clone(),
        })
    }

    /// Censoring the strategy itself implies (nilearn's `scrubbing` preset), used when the
    /// settings ask for none.
    pub fn censoring(&self) -> Option<Censoring> {
        (*self == Strategy::Preset(Preset::Scrubbing)).then_some(SCRUBBING_PRESET)
    }
}

/// Which volumes to censor for motion.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Censoring {
    /// Framewise displacement above this (mm).
    pub fd_threshold: Option<f64>,
    /// Standardised DVARS (`std_dvars`) above this.
    pub std_dvars_threshold: Option<f64>,
    /// Volumes flagged by fMRIPrep's `motion_outlierNN` columns.
    pub motion_outliers: bool,
    /// Kept segments shorter than this many volumes are censored too.
    pub min_segment: usize,
}

impl Censoring {
    pub fn is_active(&self) -> bool {
        self.fd_threshold.is_some() || self.std_dvars_threshold.is_some() || self.motion_outliers
    }

    /// Censored volumes (true = censored) of a run described by `confounds`.
    pub fn censored(&self, confounds: &Confounds) -> Result<Vec<bool>> {
        let mut outlier = vec![false; confounds.rows()];
        if let Some(threshold) = self.fd_threshold {
            let fd = confounds.framewise_displacement()?;
            outlier.iter_mut().zip(fd).for_each(|(o, v)| *o |= v > threshold);
        }
        if let Some(threshold) = self.std_dvars_threshold {
            let dvars = confounds.measure("std_dvars", "censoring by std_dvars_threshold")?;
            outlier.iter_mut().zip(dvars).for_each(|(o, v)| *o |= v > threshold);
        }
        if self.motion_outliers {
            if confounds.family("motion_outlier").is_empty() {
                return Err(Error::data(format!(
                    "{}: no `motion_outlierNN` column, but motion_outliers = true asks for them",
                    confounds.path
                )));
            }
            let flags = confounds.flagged("motion_outlier")?;
            outlier.iter_mut().zip(flags).for_each(|(o, f)| *o |= f);
        }
        Ok(segment_rule(&outlier, self.min_segment))
    }
}

/// nilearn's segment rule (`optimize_scrub`): when any volume is an outlier, kept segments
/// shorter than `min_segment` volumes (at the start, the end, or between outliers) are
/// censored too. Without outliers nothing is censored.
pub fn segment_rule(outlier: &[bool], min_segment: usize) -> Vec<bool> {
    let mut censored = outlier.to_vec();
    if min_segment == 0 || !outlier.iter().any(|o| *o) {
        return censored;
    }
    let mut t = 0;
    while t < censored.len() {
        if outlier[t] {
            t += 1;
            continue;
        }
        let start = t;
        while t < outlier.len() && !outlier[t] {
            t += 1;
        }
        if t - start < min_segment {
            censored[start..t].iter_mut().for_each(|c| *c = true);
        }
    }
    censored
}

/// Volumes kept after scrubbing: FD ≤ threshold, and no kept segment shorter than `min_segment`.
pub fn scrub(fd: &[f64], threshold: f64, min_segment: usize) -> Vec<usize> {
    let outlier: Vec<bool> = fd.iter().map(|v| *v > threshold).collect();
    segment_rule(&outlier, min_segment).iter().enumerate().filter(|(_, c)| !**c).map(|(i, _)| i).collect()
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
        let rank = project_out(&mut signals, t, r, &conf, n_confounds);
        // Removing the mean and trend (detrend) or the mean (z-scoring) costs degrees of freedom
        // too; with fewer than 2 left, every residual series is a multiple of one vector (all
        // correlations ±1) or rounding noise.
        let trend = if spec.detrend { 2 } else { usize::from(spec.standardise) };
        let left = t.saturating_sub(trend).saturating_sub(rank);
        if left < MIN_RESIDUAL_DOF {
            return Err(Error::data(format!(
                "{n_confounds} confound columns (rank {rank}) on {t} volumes leave {left} degrees of freedom \
                 (at least {MIN_RESIDUAL_DOF} are needed); choose a strategy with fewer columns (e.g. 6P or acompcor5) \
                 or keep more volumes"
            )));
        }
    }
    if spec.standardise {
        zscore_columns(&mut signals, t, r);
    }
    Ok(TimeSeries { names: ts.names.clone(), values: signals, volumes: t, tr: ts.tr })
}

/// Fewest degrees of freedom a cleaned series must keep after confound regression.
pub const MIN_RESIDUAL_DOF: usize = 2;

/// Remove from each signal column its projection on the span of the confound columns; returns
/// the rank of that span.
fn project_out(signals: &mut [f64], t: usize, r: usize, conf: &[f64], c: usize) -> usize {
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
    basis.len()
}
