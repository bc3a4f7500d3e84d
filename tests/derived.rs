//! Derived variables (`[derived]`): computed per subject before exclusions, usable like columns;
//! expression problems are located errors in `check`, and division by zero follows the policy.

mod common;

use common::*;
use std::path::Path;

fn write_data(dir: &Path, zero_baseline: bool) {
    let mut text = String::from("eid\tmadrs_pre\tmadrs_post\tx\n");
    for i in 0..40 {
        let pre = if zero_baseline && i == 3 { 0.0 } else { 20.0 + (i % 7) as f64 * 3.0 };
        let post = pre * (0.2 + 0.02 * (i % 30) as f64);
        let x = (i as f64 * 0.37).sin() + 0.05 * (pre - post);
        text.push_str(&format!("S{i}\t{pre}\t{post}\t{x}\n"));
    }
    std::fs::write(dir.join("clinical.tsv"), text).unwrap();
}

const STUDY: &str = r#"
[study]
name = "derived"
seed = 1

[tables.clinical]
path = "clinical.tsv"

[derived]
change = "madrs_pre - madrs_post"
relative = "(madrs_pre - madrs_post) / madrs_pre"
response = "relative >= 0.5"

[features]
x = ["x"]

[association]
outcomes = ["change"]
covariates = ["response"]
"#;

#[test]
fn derived_variables_feed_the_analysis() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path(), false);
    std::fs::write(dir.path().join("study.toml"), STUDY).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let stats = Tsv::read(&dir.path().join("derivatives/derived/association/all.tsv"));
    // β of x in change ~ x + response, recomputed here from the raw columns (FWL by hand).
    let data = Tsv::read(&dir.path().join("clinical.tsv"));
    let n = data.rows.len();
    let pre: Vec<f64> = (0..n).map(|r| data.num(r, "madrs_pre")).collect();
    let post: Vec<f64> = (0..n).map(|r| data.num(r, "madrs_post")).collect();
    let x: Vec<f64> = (0..n).map(|r| data.num(r, "x")).collect();
    let change: Vec<f64> = pre.iter().zip(&post).map(|(a, b)| a - b).collect();
    let response: Vec<f64> = pre.iter().zip(&post).map(|(a, b)| f64::from((a - b) / a >= 0.5)).collect();
    let z = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / n as f64;
        let sd = (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt();
        v.iter().map(|a| (a - m) / sd).collect::<Vec<f64>>()
    };
    let resid = |v: &[f64]| {
        let r = z(&response);
        let b = v.iter().zip(&r).map(|(a, c)| a * c).sum::<f64>() / r.iter().map(|c| c * c).sum::<f64>();
        v.iter().zip(&r).map(|(a, c)| a - b * c).collect::<Vec<f64>>()
    };
    let (xr, yr) = (resid(&z(&x)), resid(&z(&change)));
    let beta = xr.iter().zip(&yr).map(|(a, b)| a * b).sum::<f64>() / xr.iter().map(|a| a * a).sum::<f64>();
    let ours = stats.num(0, "beta");
    assert!((ours - beta).abs() < 1e-10, "{ours} vs {beta}");
    assert!(response.contains(&1.0) && response.contains(&0.0));
}

#[test]
fn expression_errors_are_located_in_check() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path(), false);
    let study = STUDY
        .replace("change = \"madrs_pre - madrs_post\"", "change = \"madrs_pre - madrs_pst\"")
        .replace("response = \"relative >= 0.5\"", "response = \"relative + (madrs_pre > 3)\"");
    std::fs::write(dir.path().join("study.toml"), study).unwrap();
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("study.toml:10:23: derived variable `change`: unknown column `madrs_pst`"), "{stderr}");
    assert!(stderr.contains("did you mean `madrs_post`?"), "{stderr}");
    assert!(
        stderr.contains(
            "study.toml:12:24: derived variable `response`: `+` needs numbers but its right side is a comparison"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("2 problems found"), "no knock-on errors: {stderr}");
    insta::assert_snapshot!(stderr);
}

#[test]
fn division_by_zero_is_an_error_naming_the_subject_or_missing_by_policy() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path(), true);
    std::fs::write(dir.path().join("study.toml"), STUDY).unwrap();
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("subject S3: `(madrs_pre - madrs_post) / madrs_pre` divides by zero (madrs_pre = 0)"),
        "{stderr}"
    );

    let study = STUDY.replace(
        "relative = \"(madrs_pre - madrs_post) / madrs_pre\"",
        "relative = { expr = \"(madrs_pre - madrs_post) / madrs_pre\", undefined = \"missing\" }",
    );
    std::fs::write(dir.path().join("study.toml"), study).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let exclusions = Tsv::read(&dir.path().join("derivatives/derived/exclusions.tsv"));
    assert_eq!(exclusions.rows.len(), 1, "{:?}", exclusions.rows);
    assert_eq!(exclusions.rows[0][..3], ["sub-S3", "missing_value", "response"]);
}
