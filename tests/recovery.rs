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
            detected += usize::from(discovery.text(r, "significant") == "1");
        } else {
            nulls += 1;
            null_hits += usize::from(discovery.text(r, "significant") == "1");
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
    let hits = (0..discovery.rows.len()).filter(|&r| discovery.text(r, "significant") == "1").count();
    assert_eq!(replication.rows.len(), hits);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("replication_summary.json")).unwrap()).unwrap();
    let replicated = (0..replication.rows.len()).filter(|&r| replication.text(r, "replicated") == "1").count();
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
}
