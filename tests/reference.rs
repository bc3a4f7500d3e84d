//! Agreement with the reference implementations users trust, on committed fixtures made by
//! `tests/fixtures/make_fixtures.py` (versions in `tests/fixtures/requirements.txt`).

mod common;

use common::*;

fn relative_error(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// OLS β/SE/t/p of every feature × outcome, through the whole pipeline (table reading,
/// covariate terms, z-scoring), against statsmodels.
#[test]
fn ols_matches_statsmodels() {
    let dir = tempfile::tempdir().unwrap();
    let data = repo().join("tests/fixtures/ols/data.tsv");
    let study = format!(
        r#"
[study]
name = "ols-fixture"
seed = 1

[tables.data]
path = "{}"

[features]
x = ["x*"]

[association]
outcomes = ["y1", "y2"]
covariates = ["age", "sex", "age^2", "age*sex", "height"]
"#,
        data.display()
    );
    std::fs::write(dir.path().join("study.toml"), study).unwrap();
    std::fs::write(dir.path().join("data.tsv"), std::fs::read(&data).unwrap()).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let ours = Tsv::read(&dir.path().join("derivatives/ols-fixture/association/all.tsv"));
    let expected = Tsv::read(&repo().join("tests/fixtures/ols/expected.tsv"));
    assert_eq!(ours.rows.len(), expected.rows.len());
    let mut worst = 0.0f64;
    for e in 0..expected.rows.len() {
        let row = (0..ours.rows.len())
            .find(|&r| {
                ours.text(r, "outcome") == expected.text(e, "outcome")
                    && ours.text(r, "feature") == expected.text(e, "feature")
            })
            .expect("every fixture row has a result");
        assert_eq!(ours.num(row, "n"), expected.num(e, "n"));
        for column in ["beta", "se", "t", "p"] {
            let err = relative_error(ours.num(row, column), expected.num(e, column));
            assert!(
                err <= 1e-8,
                "{} ~ {}: {column} ours {} statsmodels {} (relative error {err:e})",
                expected.text(e, "outcome"),
                expected.text(e, "feature"),
                ours.num(row, column),
                expected.num(e, column)
            );
            worst = worst.max(err);
        }
    }
    eprintln!("worst relative error vs statsmodels: {worst:e}");
}

#[test]
fn bh_fdr_matches_statsmodels() {
    let fixture = Tsv::read(&repo().join("tests/fixtures/fdr/pvalues.tsv"));
    let mut families: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for r in 0..fixture.rows.len() {
        families.entry(fixture.text(r, "family").to_string()).or_default().push(r);
    }
    assert!(families.len() >= 3);
    for rows in families.values() {
        let p: Vec<f64> = rows.iter().map(|&r| fixture.num(r, "p")).collect();
        let q = neurospec::stats::fdr::bh_adjust(&p);
        for (&r, ours) in rows.iter().zip(q) {
            let expected = fixture.num(r, "q_bh");
            assert!(relative_error(ours, expected) <= 1e-12, "row {r}: ours {ours}, statsmodels {expected}");
        }
    }
}

#[test]
fn percentile_intervals_match_numpy() {
    let expected = Tsv::read(&repo().join("tests/fixtures/quantile/expected.tsv"));
    for r in 0..expected.rows.len() {
        let n = expected.text(r, "n");
        let alpha = expected.num(r, "alpha");
        let text = std::fs::read_to_string(repo().join(format!("tests/fixtures/quantile/values_{n}.txt"))).unwrap();
        let mut values: Vec<f64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
        let (lo, hi) = neurospec::stats::quantile::percentile_interval(&mut values, 1.0 - alpha);
        assert!(relative_error(lo, expected.num(r, "lo")) <= 1e-12, "n={n} alpha={alpha}: lo {lo}");
        assert!(relative_error(hi, expected.num(r, "hi")) <= 1e-12, "n={n} alpha={alpha}: hi {hi}");
    }
}

/// Categorical covariates (`C(sex)`, `C(site, ref=…)`, text columns, a site name with a space)
/// and FreeSurfer-style column names, through the whole pipeline, against statsmodels with
/// patsy's treatment coding.
#[test]
fn categorical_covariates_match_statsmodels() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("tests/fixtures/categorical/data.tsv"), dir.path().join("data.tsv")).unwrap();
    let study = r#"
[study]
name = "categorical-fixture"
seed = 1
subject_id = "participant_id"

[tables.data]
path = "data.tsv"

[features]
fs = ["lh_G&S_frontomargin_thickness", "Left-Amygdala", "rh_*"]

[association]
outcomes = ["y"]
covariates = ["age", "C(sex)", 'C(site, ref="Reading")']
permutations = 99
"#;
    std::fs::write(dir.path().join("study.toml"), study).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/categorical-fixture/association");
    let ours = Tsv::read(&out.join("all.tsv"));
    let expected = Tsv::read(&repo().join("tests/fixtures/categorical/expected.tsv"));
    assert_eq!(ours.rows.len(), 3);
    let mut worst = 0.0f64;
    for e in 0..expected.rows.len() {
        let row = (0..ours.rows.len())
            .find(|&r| ours.text(r, "feature") == expected.text(e, "feature"))
            .expect("every fixture feature has a result");
        assert_eq!(ours.num(row, "n"), expected.num(e, "n"));
        for column in ["beta", "se", "t", "p"] {
            let err = relative_error(ours.num(row, column), expected.num(e, column));
            assert!(err <= 1e-8, "{}: {column} relative error {err:e}", expected.text(e, "feature"));
            worst = worst.max(err);
        }
    }
    eprintln!("worst relative error vs statsmodels (categorical covariates): {worst:e}");
    // The coding is published: levels, reference, counts.
    let levels = std::fs::read_to_string(out.join("all_covariate_levels.tsv")).unwrap();
    assert!(levels.starts_with("term\tcolumn\tsample\tlevel\treference\tsubjects\n"), "{levels}");
    let site = "C(site, ref=\"Reading\")";
    for line in [
        format!("{site}\tsite\tall\tReading\tTRUE\t60"),
        format!("{site}\tsite\tall\tCheadle\tFALSE\t60"),
        format!("{site}\tsite\tall\tSt Albans\tFALSE\t50"),
        "C(sex)\tsex\tall\tF\tTRUE\t".to_string(),
    ] {
        assert!(levels.contains(&line), "missing `{line}` in\n{levels}");
    }
}
