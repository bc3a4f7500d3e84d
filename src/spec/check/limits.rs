//! Every numeric setting in a range that makes sense and keeps memory and time bounded, checked
//! before compute with a located error: cohort sizes, permutation and bootstrap counts, folds
//! and repeats, thresholds, radii and fractions. (Settings with a scientific rule of their own —
//! at least 99 permutations, a CI level between ½ and 1 — are checked by their section.)
//!
//! The upper limits are generous for the studies neurospec serves (UK Biobank's ~50,000 people,
//! 100,000 permutations) and far below what would exhaust a workstation: a larger value is
//! almost always a typo (an extra zero, a pasted seed) and would otherwise abort on allocation
//! or run for days.

use super::Checker;
use crate::keys;
use crate::spec::load::Key;
use crate::spec::{FactorCount, Preset};

/// Most permutations (or sign flips) any analysis may ask for.
pub const MAX_PERMUTATIONS: usize = 1_000_000;
/// Most bootstrap resamples.
pub const MAX_BOOTSTRAP: usize = 1_000_000;
/// Most cross-validation folds and repeats.
pub const MAX_FOLDS: usize = 1_000;
pub const MAX_REPEATS: usize = 10_000;
/// Most simulated data sets for parallel analysis.
pub const MAX_PARALLEL_SIMULATIONS: usize = 1_000_000;
/// Largest sphere radius (mm): bigger than any brain.
pub const MAX_RADIUS_MM: f64 = 200.0;

/// Simulated cohort sizes: (fewest, most) subjects per preset. The table preset holds every
/// subject's ~250 columns in memory (~25 GB at the limit's tenfold); the file presets write a
/// 4D image per run (~0.2 MB each).
pub fn subjects_range(preset: Preset) -> (usize, usize) {
    match preset {
        Preset::UkbSymptoms => (20, 1_000_000),
        Preset::AmygdalaWellbeing => (20, 20_000),
        Preset::KetamineResponse => (10, 10_000),
    }
}

pub(super) fn check(cx: &mut Checker<'_>) {
    let study = cx.study;
    if let Some(sim) = &study.simulate {
        let (low, high) = subjects_range(sim.preset);
        count(cx, keys!["simulate", "subjects"], sim.subjects, low, high, "simulated subjects");
    }
    if let Some(a) = &study.association {
        count(cx, keys!["association", "permutations"], a.permutations, 0, MAX_PERMUTATIONS, "permutations");
        count(cx, keys!["association", "bootstrap"], a.bootstrap, 0, MAX_BOOTSTRAP, "bootstrap resamples");
        if a.permutations == 0 && a.fdr.p == crate::spec::PValueKind::Permutation {
            let here = keys!["association", "fdr", "p"];
            if cx.loaded.span_of(&here).is_some() {
                cx.err(
                    here,
                    "`p = \"permutation\"` needs permutations, but `permutations = 0`".into(),
                    Some("set `permutations` (e.g. 5000) or use `p = \"parametric\"`".into()),
                );
            } else {
                cx.warn(
                    keys!["association", "permutations"],
                    "no permutations: the FDR correction uses parametric p-values".into(),
                );
            }
        }
    }
    if let Some(p) = &study.prediction {
        count(cx, keys!["prediction", "permutations"], p.permutations, 0, MAX_PERMUTATIONS, "permutations");
        count(cx, keys!["prediction", "folds"], p.folds, 0, MAX_FOLDS, "folds");
        count(cx, keys!["prediction", "repeats"], p.repeats, 0, MAX_REPEATS, "repeats");
        for (i, alpha) in p.ridge_alphas.iter().enumerate() {
            finite(cx, keys!["prediction", "ridge_alphas", i], *alpha);
        }
    }
    if let Some(f) = &study.factors {
        let at = |field: &str| keys!["factors", field];
        count(cx, at("parallel_simulations"), f.parallel_simulations, 0, MAX_PARALLEL_SIMULATIONS, "simulations");
        if let FactorCount::Fixed(k) = f.count {
            count(cx, at("count"), k, 0, 1_000, "factors");
        }
        if f.rotation.uses_gamma() {
            finite(cx, at("gamma"), f.gamma);
        }
    }
    for (name, g) in &study.group {
        let at = |field: &str| keys!["group", name.as_str(), field];
        count(cx, at("permutations"), g.permutations, 0, MAX_PERMUTATIONS, "permutations");
        if !(g.cluster_p > 0.0 && g.cluster_p < 1.0) {
            cx.err(at("cluster_p"), format!("cluster_p {} must lie between 0 and 1 (e.g. 0.001)", g.cluster_p), None);
        }
        if let Some(t) = g.cluster_t
            && !(t > 0.0 && t.is_finite())
        {
            cx.err(at("cluster_t"), format!("cluster_t {t} must be a positive number (e.g. 3.1)"), None);
        }
        if ![6, 18, 26].contains(&g.connectivity) {
            cx.err(at("connectivity"), format!("connectivity {} must be 6, 18 or 26", g.connectivity), None);
        }
    }
    for (name, r) in &study.roc {
        let at = |field: &str| keys!["roc", name.as_str(), field];
        count(cx, at("permutations"), r.permutations, 0, MAX_PERMUTATIONS, "permutations");
        count(cx, at("bootstrap"), r.bootstrap, 0, MAX_BOOTSTRAP, "bootstrap resamples");
        count(cx, at("folds"), r.folds, 0, MAX_FOLDS, "folds");
    }
    imaging(cx);
    scores_and_exclusions(cx);
    memory(cx);
}

/// Copies of the tables a run holds at once (the read table, its cached encoding, the joined
/// dataset and a model's working matrices), as a multiple of one numeric copy.
const TABLE_COPIES: u64 = 6;

/// The memory a run's tables would take, estimated from the simulated cohort size (subjects ×
/// columns × 8 bytes) or the table files' sizes (≥ the text of every cell; a number takes 8
/// bytes in memory), refused when it exceeds the machine's memory.
fn memory(cx: &mut Checker<'_>) {
    let study = cx.study;
    // A setting already out of range says more than an estimate from it.
    if cx.has_errors() {
        return;
    }
    let Some(available) = total_memory() else { return };
    let (bytes, keys, what) = match &study.simulate {
        Some(sim) if !sim.preset.writes_files() => {
            let columns: usize = crate::sim::tables(sim.preset)
                .iter()
                .filter_map(|t| crate::sim::columns(sim.preset, t))
                .map(|c| c.len())
                .sum();
            let bytes = (sim.subjects as u64).saturating_mul(columns as u64).saturating_mul(8 * TABLE_COPIES);
            (bytes, keys!["simulate", "subjects"], format!("{} simulated subjects × {columns} columns", sim.subjects))
        }
        _ => {
            let size: u64 = study
                .tables
                .values()
                .filter_map(|t| t.path.as_ref())
                .filter_map(|p| std::fs::metadata(cx.loaded.resolve(p)).ok())
                .map(|m| m.len())
                .sum();
            (size.saturating_mul(8 * TABLE_COPIES / 2), keys!["tables"], format!("{} MB of tables", size / 1_000_000))
        }
    };
    if bytes > available {
        cx.err(
            keys,
            format!(
                "{what} would need about {:.1} GB of memory, more than this machine has ({:.1} GB)",
                bytes as f64 / 1e9,
                available as f64 / 1e9
            ),
            Some("run it on a larger machine, or reduce the cohort or the tables".into()),
        );
    }
}

/// Physical memory in bytes (Linux `/proc/meminfo`), if known. Tests set
/// `NEUROSPEC_TEST_MEMORY_BYTES` to pretend a smaller machine.
fn total_memory() -> Option<u64> {
    if let Some(bytes) = std::env::var("NEUROSPEC_TEST_MEMORY_BYTES").ok().and_then(|v| v.parse().ok()) {
        return Some(bytes);
    }
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn imaging(cx: &mut Checker<'_>) {
    let study = cx.study;
    let d = &study.denoise;
    if let Some(fd) = d.fd_threshold
        && !(fd > 0.0 && fd.is_finite())
    {
        cx.err(
            keys!["denoise", "fd_threshold"],
            format!("fd_threshold {fd} must be a positive number of mm (e.g. 0.5)"),
            None,
        );
    }
    if let Some(v) = d.std_dvars_threshold
        && !(v > 0.0 && v.is_finite())
    {
        cx.err(
            keys!["denoise", "std_dvars_threshold"],
            format!("std_dvars_threshold {v} must be a positive number (nilearn's scrubbing uses 1.5)"),
            None,
        );
    }
    if let Some(v) = d.min_clean_seconds
        && !(v >= 0.0 && v.is_finite())
    {
        cx.err(
            keys!["denoise", "min_clean_seconds"],
            format!("min_clean_seconds {v} must be a number of seconds, 0 or more (e.g. 240)"),
            None,
        );
    }
    if d.min_volumes == 0 {
        cx.err(keys!["denoise", "min_volumes"], "min_volumes must be at least 1".into(), None);
    }
    if let Some([high, low]) = d.band {
        let ok = high >= 0.0 && low > 0.0 && (high < low || low.is_infinite()) && high.is_finite();
        if !ok {
            cx.err(
                keys!["denoise", "band"],
                format!("band [{high}, {low}] must be [high-pass, low-pass] in Hz with 0 ≤ high-pass < low-pass"),
                Some("e.g. band = [0.01, 0.1]".into()),
            );
        }
    }
    for (set, r) in &study.regions {
        let at = |field: &str| keys!["regions", set.as_str(), field];
        if !(0.0..=1.0).contains(&r.min_kept_fraction) {
            cx.err(at("min_kept_fraction"), "min_kept_fraction must lie between 0 and 1".into(), None);
        }
        if let Some(t) = r.map_threshold
            && !(t > 0.0 && t <= 100.0)
        {
            cx.err(at("map_threshold"), format!("map_threshold {t} is a probability in % (0 < p ≤ 100)"), None);
        }
        for (i, s) in r.spheres.iter().enumerate() {
            let here = keys!["regions", set.as_str(), "spheres", i];
            if !(s.radius > 0.0 && s.radius <= MAX_RADIUS_MM) || s.centre.iter().any(|c| !c.is_finite()) {
                cx.err(
                    here,
                    format!("sphere `{}` needs a finite centre and a radius between 0 and {MAX_RADIUS_MM} mm", s.name),
                    None,
                );
            }
        }
    }
}

fn scores_and_exclusions(cx: &mut Checker<'_>) {
    let study = cx.study;
    for (name, s) in &study.scores {
        if s.range.iter().any(|v| !v.is_finite()) {
            cx.err(keys!["scores", name.as_str(), "range"], "range must hold two finite numbers".into(), None);
        }
        for (i, code) in s.missing_codes.iter().enumerate() {
            finite(cx, keys!["scores", name.as_str(), "missing_codes", i], *code);
        }
    }
    for (r, rule) in study.exclusions.iqr.iter().enumerate() {
        if rule.k.is_infinite() {
            cx.err(keys!["exclusions", "iqr", r, "k"], "k must be a finite number (e.g. 1.5)".into(), None);
        }
    }
}

/// `value` within `low..=high`, else an error naming the limit.
fn count(cx: &mut Checker<'_>, keys: Vec<Key>, value: usize, low: usize, high: usize, what: &str) {
    if value > high {
        cx.err(
            keys,
            format!("{value} {what} is more than neurospec allows ({high}); memory and time would be unbounded"),
            Some("is there an extra digit?".into()),
        );
    } else if value < low {
        cx.err(keys, format!("{value} {what} is too few; use at least {low}"), None);
    }
}

fn finite(cx: &mut Checker<'_>, keys: Vec<Key>, value: f64) {
    if !value.is_finite() {
        cx.err(keys, format!("{value} is not a finite number"), None);
    }
}
