//! The amygdala-wellbeing study end to end on its simulated cohort: the factor model recovers
//! the planted dimensions, the planted nucleus → ROI edges are the ones selected, held-out
//! prediction matches what the planted effects imply, families never straddle the split, and
//! editing the factor model reruns no imaging stage.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The shipped study at test size (fewer repeats and permutations), in `dir`.
fn study(dir: &Path, edit: impl Fn(String) -> String) {
    let text = std::fs::read_to_string(repo().join("studies/amygdala-wellbeing.toml")).unwrap();
    let text = text.replace("repeats = 5", "repeats = 2").replace("permutations = 500", "permutations = 99");
    std::fs::write(dir.join("study.toml"), edit(text)).unwrap();
}

fn congruence(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f64>() * b.iter().map(|x| x * x).sum::<f64>()).sqrt()
}

fn column(t: &Tsv, name: &str) -> Vec<f64> {
    (0..t.rows.len()).map(|r| t.num(r, name)).collect()
}

#[test]
fn the_study_recovers_the_planted_dimensions_and_edges() {
    let dir = tempfile::tempdir().unwrap();
    study(dir.path(), |t| t);
    let first = run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/amygdala-wellbeing");
    let truth = dir.path().join("data/amygdala-wellbeing/truth");
    common::bids::check_folder(&out, Some("MNI152NLin2009cAsym"));

    // Parallel analysis picks 4 factors; each matches one planted dimension with congruence ≥ 0.95.
    let fit: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("factors/fit.json")).unwrap()).unwrap();
    assert_eq!(fit["parallel_analysis"]["factors"], 4, "{}", fit["parallel_analysis"]);
    assert_eq!(fit["fit_sample"], "discovery");
    let loadings = Tsv::read(&out.join("factors/loadings.tsv"));
    let planted = Tsv::read(&truth.join("loadings.tsv"));
    assert_eq!(column(&loadings, "F1").len(), 33);
    let dimensions = ["social_life", "negative_emotion", "sleep", "anger_rejection"];
    let mut factor_of = BTreeMap::new();
    for d in dimensions {
        let (best, c) = (1..=4)
            .map(|f| (format!("F{f}"), congruence(&column(&loadings, &format!("F{f}")), &column(&planted, d))))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!(c >= 0.95, "{d}: best Tucker congruence {c} ({best})");
        factor_of.insert(d, best);
    }
    assert_eq!(factor_of.values().collect::<BTreeSet<_>>().len(), 4, "{factor_of:?}");

    // Each dimension's planted edges are its two strongest and are selected (with their sign) in
    // at least 90% of folds; held-out r of the model chosen by cross-validation lies inside the
    // 99.9% interval around the r the planted effects imply. That r is what a model using exactly
    // the planted edges reaches, an upper bound for one estimated from 400 people (here the
    // held-out r are 0.54-0.71 around implied 0.69-0.70, and the cross-validated ones 0.60-0.67).
    let edges = Tsv::read(&truth.join("edges.tsv"));
    let implied = Tsv::read(&truth.join("dimensions.tsv"));
    for (row, d) in dimensions.iter().enumerate() {
        let f = &factor_of[d];
        let table = Tsv::read(&out.join(format!("prediction/{f}_edges.tsv")));
        let mut ranked: Vec<(f64, String)> =
            (0..table.rows.len()).map(|r| (-table.num(r, "mean_r").abs(), table.rows[r][0].clone())).collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let planted: Vec<usize> = (0..edges.rows.len()).filter(|&r| edges.rows[r][1] == *d).collect();
        for &e in &planted {
            let name = &edges.rows[e][0];
            assert!(
                ranked[..planted.len()].iter().any(|(_, n)| n == name),
                "{d}: {name} not among the top: {ranked:?}"
            );
            let r = (0..table.rows.len()).find(|&r| &table.rows[r][0] == name).unwrap();
            let selected = if edges.num(e, "b") > 0.0 {
                table.num(r, "selected_positive")
            } else {
                table.num(r, "selected_negative")
            };
            assert!(selected >= 0.9, "{d}: {name} selected in {selected} of folds");
        }
        let metrics = Tsv::read(&out.join(format!("prediction/{f}_metrics.tsv")));
        let table = &metrics;
        let rows = |evaluation: &'static str| (0..table.rows.len()).filter(move |&r| table.rows[r][2] == evaluation);
        let chosen =
            rows("cross-validation").max_by(|&a, &b| metrics.num(a, "r").total_cmp(&metrics.num(b, "r"))).unwrap();
        let model = &metrics.rows[chosen][1];
        let held = rows("held-out").find(|&r| &metrics.rows[r][1] == model).unwrap();
        let (r, n) = (metrics.num(held, "r"), metrics.num(held, "n"));
        assert!(metrics.num(chosen, "p_r") <= 0.01 + 1e-12, "{d}: CV permutation p {}", metrics.num(chosen, "p_r"));
        assert_eq!(implied.rows[row][0], *d);
        let rho = implied.num(row, "implied_r");
        let half = 3.29 / (n - 3.0).sqrt();
        let (lo, hi) = ((rho.atanh() - half).tanh(), (rho.atanh() + half).tanh());
        assert!(r > lo && r < hi, "{d} ({f}, {model}): held-out r {r} outside [{lo}, {hi}] around {rho}");
    }

    // No family on both sides of the grouped split.
    let split = Tsv::read(&out.join("split.tsv"));
    let participants = Tsv::read(&dir.path().join("data/amygdala-wellbeing/participants.tsv"));
    let family: BTreeMap<&str, &str> =
        participants.rows.iter().map(|r| (r[0].as_str(), r[participants.col("family_id")].as_str())).collect();
    let mut side: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &split.rows {
        let f = family[r[0].trim_start_matches("sub-")];
        assert_eq!(*side.entry(f).or_insert(r[1].as_str()), r[1].as_str(), "family {f} straddles the split");
    }

    // Editing the factor model reruns the factor model and what reads it, and no image.
    assert!(executed(&first).iter().filter(|s| s.starts_with("imaging/")).count() == 500);
    study(dir.path(), |t| t.replace("rotation = \"oblimin\"", "rotation = \"promax\""));
    let second = run_json(dir.path(), "study.toml", &[]);
    let rerun = executed(&second);
    assert_eq!(rerun, ["factors", "predict/F1", "predict/F2", "predict/F3", "predict/F4"], "{rerun:?}");
}

#[test]
fn check_names_the_numbers_when_the_split_is_too_small() {
    let dir = tempfile::tempdir().unwrap();
    study(dir.path(), |t| t.replace("subjects = 500", "subjects = 30").replace("folds = 10", "folds = 15"));
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the discovery set has at most 24 subjects, too few to factor-analyse 33 items (needs at least 35)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "the discovery set has at most 24 subjects, too few for 15-fold cross-validation (needs at least 30)"
        ),
        "{stderr}"
    );
}
