//! Real-data input paths: TSV, CSV and Parquet tables give identical results; a split by column;
//! `--keep-going` runs what does not depend on a failure.

mod common;

use common::*;
use std::path::Path;

fn cohort(dir: &Path, format: &str, subjects: usize) {
    let out = neurospec(
        dir,
        &["simulate", "ukb-symptoms", "--out", ".", "--subjects", &subjects.to_string(), "--format", format],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let study = dir.join("study.toml");
    let text = std::fs::read_to_string(&study).unwrap();
    std::fs::write(
        &study,
        text.replace("permutations = 5000", "permutations = 199").replace("bootstrap = 1000", "bootstrap = 100"),
    )
    .unwrap();
}

#[test]
fn tsv_csv_and_parquet_inputs_give_identical_results() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut results = Vec::new();
    for (dir, format) in dirs.iter().zip(["tsv", "csv", "parquet"]) {
        cohort(dir.path(), format, 1500);
        assert!(dir.path().join(format!("idps.{format}")).is_file());
        let check = neurospec(dir.path(), &["check", "study.toml"]);
        assert!(check.status.success(), "{format}: {}", String::from_utf8_lossy(&check.stderr));
        run_json(dir.path(), "study.toml", &[]);
        let out = dir.path().join("derivatives/ukb-symptoms");
        results.push(
            // (exclusions.tsv names the table file, whose extension differs)
            ["association/discovery.tsv", "association/held-out.tsv", "scores.tsv", "split.tsv"]
                .map(|f| std::fs::read(out.join(f)).unwrap()),
        );
    }
    assert!(results[0] == results[1], "CSV input gives different results from TSV");
    assert!(results[0] == results[2], "Parquet input gives different results from TSV");
}

#[test]
fn split_by_column_holds_out_the_named_values() {
    let dir = tempfile::tempdir().unwrap();
    cohort(dir.path(), "tsv", 800);
    let study = dir.path().join("study.toml");
    // Within each side sex is constant, so it cannot also be a covariate.
    let text = std::fs::read_to_string(&study)
        .unwrap()
        .replace("\"age\", \"sex\", \"age^2\", \"age*sex\", \"height\"", "\"age\", \"age^2\", \"height\"");
    let start = text.find("[split]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    let text = format!(
        "{}[split]\nmethod = \"column\"\ncolumn = \"sex\"\nheld_out_values = [\"1\"]{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&study, text).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let split = Tsv::read(&dir.path().join("derivatives/ukb-symptoms/split.tsv"));
    let pheno = Tsv::read(&dir.path().join("pheno.tsv"));
    let sex: std::collections::HashMap<&str, &str> =
        (0..pheno.rows.len()).map(|r| (pheno.text(r, "eid"), pheno.text(r, "sex"))).collect();
    let mut held = 0;
    for r in 0..split.rows.len() {
        let is_held = split.text(r, "sample") == "held-out";
        assert_eq!(is_held, sex[split.text(r, "participant_id").trim_start_matches("sub-")] == "1");
        held += usize::from(is_held);
    }
    assert!(held > 100 && held < split.rows.len() - 100);
}

#[test]
fn keep_going_runs_everything_that_does_not_depend_on_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    cohort(dir.path(), "tsv", 600);
    // A constant outcome column: its association stages fail (zero variance).
    let pheno = dir.path().join("pheno.tsv");
    let text = std::fs::read_to_string(&pheno).unwrap();
    let with_constant: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { format!("{l}\tconstant") } else { format!("{l}\t3") })
        .collect();
    std::fs::write(&pheno, with_constant.join("\n") + "\n").unwrap();
    let study = dir.path().join("study.toml");
    let text = std::fs::read_to_string(&study).unwrap();
    // The first `"anxiety"]` closes the outcome list (the pairs of `differences` come later).
    std::fs::write(&study, text.replacen("\"anxiety\"]", "\"anxiety\", \"constant\"]", 1)).unwrap();
    assert!(std::fs::read_to_string(&study).unwrap().contains("\"constant\""), "outcome list edited");

    let out = neurospec(dir.path(), &["run", "study.toml", "--json", "--keep-going"]);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failed"], 2, "{summary}");
    let ran = executed(&summary);
    assert_eq!(ran.iter().filter(|s| s.starts_with("associate/")).count(), 6, "{ran:?}");
    assert_eq!(summary["skipped"], 3, "fdr ×2 and replicate depend on the failures: {summary}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("associate/constant/discovery") && stderr.contains("zero variance"), "{stderr}");
    assert!(!dir.path().join("derivatives").exists(), "a failed run publishes nothing");

    // Without --keep-going the run stops early: fewer stages execute.
    let dir2 = tempfile::tempdir().unwrap();
    for f in ["pheno.tsv", "idps.tsv", "study.toml"] {
        std::fs::copy(dir.path().join(f), dir2.path().join(f)).unwrap();
    }
    let out = neurospec(dir2.path(), &["run", "study.toml", "--json", "-j", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // With --keep-going 13 of the 18 stages execute (2 fail, 3 depend on them).
    assert!(summary["executed"].as_u64().unwrap() < 13, "{summary}");
}

fn with_split(dir: &Path, split: &str) {
    let study = dir.join("study.toml");
    let text = std::fs::read_to_string(&study).unwrap();
    let start = text.find("[split]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    std::fs::write(&study, format!("{}{split}{}", &text[..start], &text[end..])).unwrap();
}

#[test]
fn grouped_splits_keep_families_together_and_stratified_splits_keep_proportions() {
    let dir = tempfile::tempdir().unwrap();
    cohort(dir.path(), "tsv", 1200);
    // Families of 1–4 siblings.
    let pheno = dir.path().join("pheno.tsv");
    let text = std::fs::read_to_string(&pheno).unwrap();
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { format!("{l}\tfamily") } else { format!("{l}\tfam{}", (i * 7 / 19) % 400) })
        .collect();
    std::fs::write(&pheno, lines.join("\n") + "\n").unwrap();
    with_split(dir.path(), "[split]\nmethod = \"grouped\"\ncolumn = \"family\"\nheld_out_fraction = 0.3");
    run_json(dir.path(), "study.toml", &[]);
    let split = Tsv::read(&dir.path().join("derivatives/ukb-symptoms/split.tsv"));
    let p = Tsv::read(&pheno);
    let family: std::collections::HashMap<&str, &str> =
        (0..p.rows.len()).map(|r| (p.text(r, "eid"), p.text(r, "family"))).collect();
    let mut side: std::collections::HashMap<&str, &str> = Default::default();
    let mut held = 0;
    for r in 0..split.rows.len() {
        let f = family[split.text(r, "participant_id").trim_start_matches("sub-")];
        let s = split.text(r, "sample");
        assert_eq!(*side.entry(f).or_insert(s), s, "family {f} straddles the split");
        held += usize::from(s == "held-out");
    }
    let fraction = held as f64 / split.rows.len() as f64;
    assert!((fraction - 0.3).abs() < 0.02, "held-out fraction {fraction}");

    with_split(dir.path(), "[split]\nmethod = \"stratified\"\ncolumn = \"sex\"\nheld_out_fraction = 0.25");
    run_json(dir.path(), "study.toml", &[]);
    let split = Tsv::read(&dir.path().join("derivatives/ukb-symptoms/split.tsv"));
    let sex: std::collections::HashMap<&str, &str> =
        (0..p.rows.len()).map(|r| (p.text(r, "eid"), p.text(r, "sex"))).collect();
    for value in ["0", "1"] {
        let members: Vec<usize> = (0..split.rows.len())
            .filter(|&r| sex[split.text(r, "participant_id").trim_start_matches("sub-")] == value)
            .collect();
        let held = members.iter().filter(|&&r| split.text(r, "sample") == "held-out").count();
        let expected = (members.len() as f64 * 0.25).round() as usize;
        assert_eq!(held, expected, "sex {value}: {held} of {} held out", members.len());
    }
}
