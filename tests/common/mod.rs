//! Helpers shared by the integration tests: run the real binary, read result tables.
#![allow(dead_code)]

pub mod bids;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_neurospec")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run neurospec in `cwd`.
pub fn neurospec(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin()).args(args).current_dir(cwd).output().expect("neurospec runs")
}

/// `neurospec run STUDY --json` (plus extra args); panics with stderr on failure.
pub fn run_json(cwd: &Path, study: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", study, "--json"];
    args.extend_from_slice(extra);
    let out = neurospec(cwd, &args);
    assert!(out.status.success(), "run failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

pub fn executed(summary: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = summary["executed_stages"]
        .as_array()
        .expect("executed_stages")
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// A TSV as header + rows.
pub struct Tsv {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Tsv {
    pub fn read(path: &Path) -> Tsv {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text.lines();
        let header = lines.next().unwrap().split('\t').map(String::from).collect();
        let rows = lines.map(|l| l.split('\t').map(String::from).collect()).collect();
        Tsv { header, rows }
    }
    pub fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
    }
    pub fn num(&self, row: usize, name: &str) -> f64 {
        let s = &self.rows[row][self.col(name)];
        if s.is_empty() || s == "n/a" { f64::NAN } else { s.parse().unwrap() }
    }
    pub fn text(&self, row: usize, name: &str) -> &str {
        &self.rows[row][self.col(name)]
    }
}

/// The embedded study with some settings replaced (`from` → `to` pairs), written into `dir`.
pub fn embedded_study(dir: &Path, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(repo().join("studies/ukb-symptoms.toml")).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "study has no `{from}`");
        text = text.replace(from, to);
    }
    let path = dir.join("study.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What makes the simulated ukb-symptoms study quick: 99 permutations, no bootstrap (and so no
/// between-symptom differences, which need it).
pub const QUICK_UKB: &[(&str, &str)] = &[
    ("permutations = 5000", "permutations = 99"),
    ("bootstrap = 1000", "bootstrap = 0"),
    ("differences = [", "# differences = ["),
];

/// `neurospec simulate ukb-symptoms` for `subjects` people into `dir` (data files and
/// `study.toml`), then the study's settings replaced (`from` → `to`, each must occur once);
/// returns the study's text, also written back to `study.toml`.
pub fn simulated_ukb(dir: &Path, subjects: usize, replacements: &[(&str, &str)]) -> String {
    let out = neurospec(dir, &["simulate", "ukb-symptoms", "--out", ".", "--subjects", &subjects.to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut text = std::fs::read_to_string(dir.join("study.toml")).unwrap();
    for (from, to) in replacements {
        assert_eq!(text.matches(from).count(), 1, "study has not one `{from}`");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(dir.join("study.toml"), &text).unwrap();
    text
}

/// Every file under `dir` (relative path → bytes), except provenance records (they hold timings)
/// and the report's views (they hold the run's date and which stages were cached).
pub fn outputs(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().to_string();
                if !rel.starts_with("provenance") && !neurospec::report::is_view(&rel) {
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The largest absolute difference between two equally long sequences. Unlike
/// `fold(0.0, f64::max)`, which silently skips NaN, a NaN on one side only is infinitely far
/// (NaN on both sides — missing in both — agrees), and a length mismatch fails the test.
pub fn max_abs_diff<'a>(a: impl IntoIterator<Item = &'a f64>, b: impl IntoIterator<Item = &'a f64>) -> f64 {
    let (a, b): (Vec<f64>, Vec<f64>) = (a.into_iter().copied().collect(), b.into_iter().copied().collect());
    assert_eq!(a.len(), b.len(), "compared sequences differ in length");
    a.iter()
        .zip(&b)
        .map(|(x, y)| match (x.is_nan(), y.is_nan()) {
            (true, true) => 0.0,
            (false, false) => (x - y).abs(),
            _ => f64::INFINITY,
        })
        .fold(0.0, f64::max)
}

#[test]
fn max_abs_diff_sees_nan_and_length() {
    assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 2.0]), 0.5);
    assert_eq!(max_abs_diff(&[f64::NAN], &[f64::NAN]), 0.0);
    assert_eq!(max_abs_diff(&[1.0, f64::NAN], &[1.0, 2.0]), f64::INFINITY);
    assert!(std::panic::catch_unwind(|| max_abs_diff(&[1.0], &[1.0, 2.0])).is_err());
}
