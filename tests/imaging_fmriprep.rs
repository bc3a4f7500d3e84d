//! fMRIPrep's own confound files (the ones inside nilearn's wheel: 21+ `_timeseries`, 1.4–20.x
//! `_regressors`, and a 1.0–1.1 camel-case copy made from the latter) with a synthetic BOLD:
//! non-steady-state volumes dropped, censoring, presets and aCompCor from the sidecar agree
//! with nilearn's `load_confounds` (+ `sample_mask`) and `NiftiLabelsMasker` to 1e-9
//! (tests/fixtures/imaging/fmriprep, made by make_fmriprep_fixtures.py); bad flags, too many
//! dummy scans and runs left with too little data are located errors.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/imaging/fmriprep").join(name)
}

fn confounds_file(generation: &str) -> PathBuf {
    fixture(match generation {
        "v21" => "v21_desc-confounds_timeseries.tsv",
        "v20" => "v20_desc-confounds_regressors.tsv",
        _ => "v1_desc-confounds_regressors.tsv",
    })
}

fn extract(dir: &Path, confounds: &Path, extra: &[&str]) -> (std::process::Output, PathBuf) {
    let out = dir.join("ts.tsv");
    let _ = std::fs::remove_file(&out);
    let (bold, atlas, labels) = (fixture("bold.nii.gz"), fixture("labels.nii.gz"), fixture("labels.tsv"));
    let mut args = vec![
        "extract",
        "--bold",
        bold.to_str().unwrap(),
        "--atlas",
        atlas.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--confounds",
        confounds.to_str().unwrap(),
        "--min-volumes",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (neurospec(dir, &args), out)
}

fn numbers(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let t = Tsv::read(path);
    (t.header.clone(), t.rows.iter().map(|r| r.iter().map(|v| v.parse().unwrap()).collect()).collect())
}

/// (generation, case, strategy, censoring: fd, std DVARS, motion_outlierNN columns)
type Case = (&'static str, &'static str, &'static str, Option<f64>, Option<f64>, bool);

/// Every case of make_fmriprep_fixtures.py, as neurospec spells it.
const CASES: [Case; 16] = [
    ("v21", "24P", "24P", None, None, false),
    ("v21", "36P", "36P", None, None, false),
    ("v21", "acompcor5", "acompcor5", None, None, false),
    ("v21", "scrubbing", "scrubbing", None, None, false),
    ("v21", "scrub6P_fd3_dvars3", "6P", Some(3.0), Some(3.0), false),
    ("v21", "simple", "simple", None, None, false),
    ("v21", "compcor", "compcor", None, None, false),
    ("v21", "none_motion_outliers", "none", None, None, true),
    ("v20", "24P", "24P", None, None, false),
    ("v20", "36P", "36P", None, None, false),
    ("v20", "acompcor5", "acompcor5", None, None, false),
    ("v20", "scrubbing", "scrubbing", None, None, false),
    ("v20", "scrub6P_fd0.15_dvars1.2", "6P", Some(0.15), Some(1.2), false),
    ("v1", "24P", "24P", None, None, false),
    ("v1", "36P", "36P", None, None, false),
    ("v1", "acompcor5", "acompcor5", None, None, false),
];

/// Cases whose regression leaves fewer than 2 degrees of freedom on these 30-volume files.
const ILL_POSED: [(&str, &str); 7] = [
    ("v21", "24P"),
    ("v21", "36P"),
    ("v21", "simple"),
    ("v21", "compcor"),
    ("v20", "36P"),
    ("v20", "scrubbing"),
    ("v1", "36P"),
];

fn words(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().split_whitespace().map(str::to_string).collect()
}

#[test]
fn confound_columns_and_sample_masks_match_nilearn_load_confounds() {
    use neurospec::imaging::denoise::{Censoring, Confounds, Strategy};
    use neurospec::imaging::run::{DummyScans, dropped_volumes};
    for (generation, case, strategy, fd, dvars, motion_outliers) in CASES {
        let confounds = Confounds::read(&confounds_file(generation)).unwrap();
        let strategy = Strategy::parse(strategy).unwrap();
        let mut ours = strategy.columns(&confounds).unwrap();
        let mut theirs = words(&fixture(&format!("columns_{generation}_{case}.txt")));
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{generation} {case}: confound columns");
        let asked = Censoring { fd_threshold: fd, std_dvars_threshold: dvars, motion_outliers, min_segment: 5 };
        let censoring = if asked.is_active() { asked } else { strategy.censoring().unwrap_or(asked) };
        let (dummy, censored) =
            dropped_volumes(Some(&confounds), DummyScans::Auto, &censoring, 30, Path::new("bold.nii.gz")).unwrap();
        let kept: Vec<String> = (0..30).filter(|&i| !dummy[i] && !censored[i]).map(|i| i.to_string()).collect();
        assert_eq!(kept, words(&fixture(&format!("kept_{generation}_{case}.txt"))), "{generation} {case}: sample mask");
    }
}

#[test]
fn time_series_match_nilearn_where_the_regression_is_well_posed() {
    let dir = tempfile::tempdir().unwrap();
    let mut worst = 0.0f64;
    let mut compared = 0;
    for (generation, case, strategy, fd, dvars, motion_outliers) in CASES {
        let (fd, dvars) = (fd.map(|v| v.to_string()), dvars.map(|v| v.to_string()));
        let mut extra = vec!["--strategy", strategy];
        if let Some(fd) = &fd {
            extra.extend(["--fd-threshold", fd]);
        }
        if let Some(dvars) = &dvars {
            extra.extend(["--std-dvars-threshold", dvars]);
        }
        if motion_outliers {
            extra.push("--motion-outliers");
        }
        let (output, out) = extract(dir.path(), &confounds_file(generation), &extra);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if ILL_POSED.contains(&(generation, case)) {
            assert!(!output.status.success(), "{generation} {case}: expected a refusal");
            assert!(stderr.contains("degrees of freedom (at least 2 are needed)"), "{generation} {case}: {stderr}");
            continue;
        }
        if case == "scrubbing" {
            assert!(stderr.contains("excluded: fewer than 1 volumes (0)"), "{generation} {case}: {stderr}");
            continue;
        }
        assert!(output.status.success(), "{generation} {case}: {stderr}");
        let (ours_header, ours) = numbers(&out);
        let (theirs_header, theirs) = numbers(&fixture(&format!("ts_{generation}_{case}.tsv")));
        assert_eq!(ours_header, theirs_header);
        assert_eq!(ours.len(), theirs.len(), "{generation} {case}: rows");
        let error = max_abs_diff(ours.iter().flatten(), theirs.iter().flatten());
        assert!(error <= 1e-9, "{generation} {case}: max |ours − nilearn| = {error:e}");
        worst = worst.max(error);
        compared += 1;
    }
    assert_eq!(compared, 8);
    println!("worst difference from nilearn over {compared} cases: {worst:e}");
}

#[test]
fn non_steady_state_volumes_are_dropped_by_default_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (output, out) = extract(dir.path(), &confounds_file("v21"), &["--strategy", "acompcor5"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(numbers(&out).1.len(), 27);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dropped 3 non-steady-state volumes, censored 0, kept 27 of 30"), "{stderr}");
    // `--dummy-scans 0` keeps all 30; a count drops exactly that many first volumes.
    for (dummy, rows) in [("0", 30), ("5", 25)] {
        let (output, out) =
            extract(dir.path(), &confounds_file("v21"), &["--strategy", "acompcor5", "--dummy-scans", dummy]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(numbers(&out).1.len(), rows, "--dummy-scans {dummy}");
    }
}

#[test]
fn bad_flags_and_runs_left_with_too_little_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let error = |confounds: &Path, extra: &[&str]| {
        let (output, _) = extract(dir.path(), confounds, extra);
        assert!(!output.status.success(), "expected a failure for {extra:?}");
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    // A flag column that is not 0/1, named with its file and line.
    let text = std::fs::read_to_string(confounds_file("v21")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split('\t').collect();
    let at = header.iter().position(|h| *h == "non_steady_state_outlier01").unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[5].split('\t').map(str::to_string).collect();
    cells[at] = "0.5".into();
    lines[5] = cells.join("\t");
    let bad = dir.path().join("sub-01_task-rest_desc-confounds_timeseries.tsv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let e = error(&bad, &["--strategy", "6P"]);
    assert!(e.contains("desc-confounds_timeseries.tsv:6: flag column `non_steady_state_outlier01` has `0.5`"), "{e}");
    // More dummy scans than volumes.
    let e = error(&confounds_file("v21"), &["--strategy", "6P", "--dummy-scans", "30"]);
    assert!(e.contains("dummy_scans = 30 but") && e.contains("has 30 volumes"), "{e}");
    // nilearn's scrubbing preset censors every volume of the 21+ file: nothing is left.
    assert!(words(&fixture("kept_v21_scrubbing.txt")).is_empty());
    let e = error(&confounds_file("v21"), &["--strategy", "scrubbing"]);
    assert!(
        e.contains("excluded: fewer than 1 volumes (0) after dropping 3 non-steady-state and censoring 27 of 30"),
        "{e}"
    );
    // Too little clean data: 27 volumes × 2 s = 54 s.
    let e = error(&confounds_file("v21"), &["--strategy", "6P", "--min-clean-seconds", "60"]);
    assert!(e.contains("excluded: less than 60 s of clean data (54 s)"), "{e}");
    // Variance-explained aCompCor needs the sidecar, and reads it when present.
    let (output, _) = extract(dir.path(), &confounds_file("v21"), &["--strategy", "acompcor50%"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let plain = dir.path().join("plain_desc-confounds_timeseries.tsv");
    std::fs::copy(confounds_file("v21"), &plain).unwrap();
    let e = error(&plain, &["--strategy", "acompcor50%"]);
    assert!(e.contains("choosing aCompCor components by variance explained needs the JSON sidecar"), "{e}");
}
