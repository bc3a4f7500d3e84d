//! The embedded study, at full size, recovers what the simulator planted and controls false
//! positives among the true nulls.

mod common;

use common::*;
use std::collections::HashMap;

#[test]
fn planted_effects_are_recovered_and_nulls_are_controlled() {
    let dir = tempfile::tempdir().unwrap();
    // The shipped study as is: 25,000 subjects, 5,000 permutations, 1,000 bootstraps.
    embedded_study(dir.path(), &[]);
    let summary = run_json(dir.path(), "study.toml", &[]);
    assert_eq!(summary["failed"], 0);
    let out = dir.path().join("derivatives/ukb-symptoms");

    let truth_table = Tsv::read(&out.join("simulation/truth.tsv"));
    let truth: HashMap<(String, String), f64> = (0..truth_table.rows.len())
        .map(|r| {
            (
                (truth_table.text(r, "feature").to_string(), truth_table.text(r, "outcome").to_string()),
                truth_table.num(r, "beta"),
            )
        })
        .collect();
    let planted = truth.values().filter(|b| **b != 0.0).count();
    assert_eq!(planted, 8);

    let discovery = Tsv::read(&out.join("association/discovery.tsv"));
    assert_eq!(discovery.rows.len(), truth.len(), "every feature × outcome is tested");
    let mut detected = 0;
    let (mut nulls, mut null_hits, mut null_nominal) = (0usize, 0usize, 0usize);
    for r in 0..discovery.rows.len() {
        let key = (discovery.text(r, "feature").to_string(), discovery.text(r, "outcome").to_string());
        let beta = truth[&key];
        if beta != 0.0 {
            let (lo, hi) = (discovery.num(r, "ci_low"), discovery.num(r, "ci_high"));
            assert!(
                lo <= beta && beta <= hi,
                "{key:?}: planted β {beta:.4} outside its bootstrap CI [{lo:.4}, {hi:.4}]"
            );
            assert!(discovery.num(r, "beta") < 0.0, "{key:?}: planted effects are negative");
            detected += usize::from(discovery.text(r, "significant") == "TRUE");
        } else {
            nulls += 1;
            null_hits += usize::from(discovery.text(r, "significant") == "TRUE");
            null_nominal += usize::from(discovery.num(r, "p_perm") < 0.05);
        }
    }
    let m = nulls as f64;
    let slack = 3.0 * (0.05 * 0.95 / m).sqrt();
    let null_rate = null_hits as f64 / m;
    assert!(null_rate <= 0.05 + slack, "FDR-significant rate among {nulls} true nulls: {null_rate:.4}");
    // Permutation p-values of true nulls are calibrated (nulls within a modality are correlated,
    // hence the wider band).
    let nominal = null_nominal as f64 / m;
    assert!((nominal - 0.05).abs() <= 4.0 * (0.05 * 0.95 / m).sqrt(), "P(p_perm < 0.05 | null) = {nominal:.4}");
    assert!(detected >= 4, "only {detected} of 8 planted effects FDR-significant at n ≈ 20,000");

    // Replication bookkeeping agrees with the two result tables.
    let replication = Tsv::read(&out.join("replication.tsv"));
    let hits = (0..discovery.rows.len()).filter(|&r| discovery.text(r, "significant") == "TRUE").count();
    assert_eq!(replication.rows.len(), hits);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("replication_summary.json")).unwrap()).unwrap();
    let replicated = (0..replication.rows.len()).filter(|&r| replication.text(r, "replicated") == "TRUE").count();
    assert_eq!(summary["replicated"], replicated);
    assert_eq!(summary["discovery_hits"], hits);

    // Every exclusion is counted: available = included + excluded.
    let counts = Tsv::read(&out.join("exclusion_summary.tsv"));
    let get = |reason: &str| -> f64 {
        (0..counts.rows.len()).filter(|&r| counts.text(r, "reason") == reason).map(|r| counts.num(r, "subjects")).sum()
    };
    let excluded: f64 = (0..counts.rows.len())
        .filter(|&r| !["available", "included"].contains(&counts.text(r, "reason")))
        .map(|r| counts.num(r, "subjects"))
        .sum();
    assert_eq!(get("available"), 25_000.0);
    assert_eq!(get("included"), get("available") - excluded);
    assert_eq!(Tsv::read(&out.join("exclusions.tsv")).rows.len() as f64, excluded);
    assert_eq!(discovery.num(0, "n") + Tsv::read(&out.join("association/held-out.tsv")).num(0, "n"), get("included"));

    differences_recover_planted_contrasts(&out, &truth, &discovery);
    region_means_average_the_edges(&out, &discovery);
}

/// de Lange et al.'s between-symptom differences: β_a − β_b per feature agrees with the two
/// outcomes' β, every planted difference lies inside its paired-bootstrap CI (and the one large
/// planted contrast excludes zero), and CIs of true null differences exclude zero at about 5%.
fn differences_recover_planted_contrasts(
    out: &std::path::Path,
    truth: &HashMap<(String, String), f64>,
    discovery: &Tsv,
) {
    let differences = Tsv::read(&out.join("association/discovery_differences.tsv"));
    let beta: HashMap<(String, String), f64> = (0..discovery.rows.len())
        .map(|r| ((discovery.text(r, "feature").into(), discovery.text(r, "outcome").into()), discovery.num(r, "beta")))
        .collect();
    // Three pairs of three outcomes: as many rows as the discovery table (outcomes × features).
    assert_eq!(differences.rows.len(), discovery.rows.len());
    let (mut nulls, mut null_excluding) = (0usize, 0usize);
    for r in 0..differences.rows.len() {
        let (a, b, feature) =
            (differences.text(r, "outcome_a"), differences.text(r, "outcome_b"), differences.text(r, "feature"));
        let key = |o: &str| (feature.to_string(), o.to_string());
        assert_eq!(differences.num(r, "difference"), beta[&key(a)] - beta[&key(b)], "{feature}: {a} − {b}");
        assert_eq!(differences.num(r, "resamples"), 1000.0);
        let planted = truth[&key(a)] - truth[&key(b)];
        let (lo, hi) = (differences.num(r, "ci_low"), differences.num(r, "ci_high"));
        let excludes = differences.text(r, "ci_excludes_zero") == "TRUE";
        assert_eq!(excludes, lo > 0.0 || hi < 0.0);
        if planted != 0.0 {
            assert!(lo <= planted && planted <= hi, "{feature} {a} − {b}: planted {planted} outside [{lo}, {hi}]");
            if feature == "fc_n02_n07" {
                assert!(excludes, "the planted depression edge differs from insomnia and anxiety");
            }
        } else {
            nulls += 1;
            null_excluding += usize::from(excludes);
        }
    }
    let rate = null_excluding as f64 / nulls as f64;
    assert!(
        (rate - 0.05).abs() <= 4.0 * (0.05 * 0.95 / nulls as f64).sqrt(),
        "null differences excluding 0: {rate:.4}"
    );
}

/// Region means: each node's mean β is the mean of its edges' β in the feature results.
fn region_means_average_the_edges(out: &std::path::Path, discovery: &Tsv) {
    for outcome in ["insomnia", "depression", "anxiety"] {
        let regions = Tsv::read(&out.join(format!("association/discovery_{outcome}_region_means.tsv")));
        assert_eq!(regions.rows.len(), 10, "ten nodes");
        for r in 0..regions.rows.len() {
            let node = regions.text(r, "region");
            let edges: Vec<f64> = (0..discovery.rows.len())
                .filter(|&k| discovery.text(k, "outcome") == outcome && discovery.text(k, "group") == "connectivity")
                .filter(|&k| discovery.text(k, "feature").split('_').skip(1).any(|part| part == node))
                .map(|k| discovery.num(k, "beta"))
                .collect();
            assert_eq!(regions.num(r, "edges"), edges.len() as f64, "{outcome} {node}");
            let mean = edges.iter().sum::<f64>() / edges.len() as f64;
            assert!((regions.num(r, "mean_beta") - mean).abs() < 1e-15, "{outcome} {node}");
            assert!(regions.num(r, "p_perm") <= regions.num(r, "p_fwe"));
        }
    }
}
