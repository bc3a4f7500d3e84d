//! Real fMRIPrep layouts in a study: `_res-`/`_acq-`/`_run-` entities, confounds matched by the
//! entities they carry, choosing among images in `[imaging]` (an ambiguous choice fails `check`
//! listing what exists), several runs per subject (`runs = "all"`: the mean Fisher z; `runs =
//! [1]`), and the run table's counts of dropped and censored volumes.

mod common;

use common::*;
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    repo().join("tests/fixtures/imaging").join(name)
}

const SPACE: &str = "MNI152NLin2009cAsym";

/// sub-01: two runs (float32 and int16 images), each at res-1 and res-2, one confounds file per
/// run (no res entity, as fMRIPrep writes it); sub-02: one run at both resolutions.
fn layout(dir: &Path) {
    for (subject, runs) in [("01", &["1", "2"][..]), ("02", &["1"][..])] {
        let func = dir.join(format!("fmriprep/sub-{subject}/func"));
        std::fs::create_dir_all(&func).unwrap();
        for run in runs {
            let image = if *run == "1" { "bold.nii.gz" } else { "bold_int16.nii.gz" };
            let prefix = format!("sub-{subject}_task-rest_acq-mb4_run-{run}");
            for res in ["1", "2"] {
                let stem = format!("{prefix}_space-{SPACE}_res-{res}_desc-preproc_bold");
                std::fs::copy(fixture(image), func.join(format!("{stem}.nii.gz"))).unwrap();
                std::fs::write(func.join(format!("{stem}.json")), r#"{"RepetitionTime": 2.0}"#).unwrap();
            }
            std::fs::copy(fixture("confounds.tsv"), func.join(format!("{prefix}_desc-confounds_timeseries.tsv")))
                .unwrap();
        }
    }
    std::fs::copy(fixture("labels.nii.gz"), dir.join("labels.nii.gz")).unwrap();
    std::fs::copy(fixture("labels.tsv"), dir.join("labels.tsv")).unwrap();
}

const STUDY: &str = r#"
[study]
name = "runs"
seed = 3

[imaging]
fmriprep = "fmriprep"
task = "rest"
space = "MNI152NLin2009cAsym"
#SELECT

[regions.nuclei]
atlas = "labels.nii.gz"
labels = "labels.tsv"
include = ["amygdala_lh", "amygdala_rh"]

[regions.rois]
atlas = "labels.nii.gz"
labels = "labels.tsv"
include = ["precuneus"]

[denoise]
strategy = "24P"

[connectivity]
pairs = [["nuclei", "rois"]]
fisher_z = true

[tables.connectome]
imaging = "connectome"
"#;

fn study(dir: &Path, select: &str) -> std::process::Output {
    check(dir, &STUDY.replace("#SELECT", select))
}

fn check(dir: &Path, text: &str) -> std::process::Output {
    std::fs::write(dir.join("study.toml"), text).unwrap();
    neurospec(dir, &["check", "study.toml"])
}

/// Pearson r of regions `a` and `b` in a published BEP017 matrix (first column `region`).
fn relmat(path: &Path, a: &str, b: &str) -> f64 {
    let t = Tsv::read(path);
    let row = t.rows.iter().position(|r| r[0] == a).unwrap_or_else(|| panic!("{a} not in {}", path.display()));
    t.num(row, b)
}

#[test]
fn images_of_one_run_must_be_chosen_and_several_runs_combine_as_mean_fisher_z() {
    let dir = tempfile::tempdir().unwrap();
    layout(dir.path());
    // Two resolutions of each run: `check` lists what differs and how to choose.
    let out = study(dir.path(), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("subject 01 run-1: 2 images of task-rest in space-MNI152NLin2009cAsym differ in res (1, 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("choose one in [imaging], e.g. `res = \"2\"`"), "{stderr}");
    // One resolution, but two runs for sub-01: the default is one run per subject.
    let out = study(dir.path(), "res = \"2\"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("subject 01 has 2 runs of task-rest"), "{stderr}");
    assert!(stderr.contains("runs = \"all\""), "{stderr}");
    // An entity value that no image has leaves no run.
    let out = study(dir.path(), "res = \"3\"\nruns = \"all\"");
    assert!(!out.status.success());
    // runs = "all": each run is a stage; sub-01's edge is the mean Fisher z of its two runs.
    let out = study(dir.path(), "res = \"2\"\nruns = \"all\"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ran = executed(&run_json(dir.path(), "study.toml", &[]));
    for stage in ["imaging/sub-01/run-1", "imaging/sub-01/run-2", "imaging/sub-02", "connectome"] {
        assert!(ran.contains(&stage.to_string()), "{stage} did not run: {ran:?}");
    }
    let derivatives = dir.path().join("derivatives/runs");
    let func = derivatives.join("sub-01/func");
    let name = "conn_amygdala_lh__precuneus";
    let run = |r: &str| {
        let file = format!(
            "sub-01_task-rest_acq-mb4_run-{r}_space-{SPACE}_atlas-nucleiRois_meas-pearsoncorrelation_relmat.tsv"
        );
        relmat(&func.join(file), "amygdala_lh", "precuneus").atanh()
    };
    let (z1, z2) = (run("1"), run("2"));
    assert!(z1 != z2);
    let connectome = Tsv::read(&derivatives.join("connectome.tsv"));
    assert_eq!(connectome.rows.len(), 2);
    assert_eq!(connectome.num(0, name), (z1 + z2) / 2.0);
    let table = Tsv::read(&derivatives.join("imaging_runs.tsv"));
    assert_eq!(
        table.header,
        ["participant_id", "session", "run", "volumes", "dummy_scans", "censored", "kept", "status"]
    );
    let runs: Vec<(&str, &str)> =
        (0..table.rows.len()).map(|r| (table.text(r, "participant_id"), table.text(r, "run"))).collect();
    assert_eq!(runs, [("sub-01", "run-1"), ("sub-01", "run-2"), ("sub-02", "n/a")]);
    // runs = [1]: sub-01's value is its first run's, unchanged.
    let out = study(dir.path(), "res = \"2\"\nruns = [1]");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run_json(dir.path(), "study.toml", &[]);
    let connectome = Tsv::read(&derivatives.join("connectome.tsv"));
    assert_eq!(connectome.num(0, name), z1);
}

#[test]
fn dropped_and_censored_volumes_are_counted_and_short_runs_listed() {
    let dir = tempfile::tempdir().unwrap();
    layout(dir.path());
    // Flag volumes 0–5 of sub-02's run as non-steady-state (0–3 are also censored at FD > 0.5 mm).
    let path = dir.path().join("fmriprep/sub-02/func/sub-02_task-rest_acq-mb4_run-1_desc-confounds_timeseries.tsv");
    let text = std::fs::read_to_string(&path).unwrap();
    let flagged: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            0 => format!("{l}\tnon_steady_state_outlier00\n"),
            1..=6 => format!("{l}\t1.0\n"),
            _ => format!("{l}\t0.0\n"),
        })
        .collect();
    std::fs::write(&path, flagged).unwrap();
    // 80 volumes × 2 s. At FD > 0.5 mm both runs keep 66 volumes (132 s); sub-02 then loses
    // volumes 4 and 5 as non-steady-state: 64 volumes, 128 s < 130 s.
    let settings =
        "res = \"2\"\nruns = [1]\n\n[denoise]\nstrategy = \"24P\"\nfd_threshold = 0.5\nmin_clean_seconds = 130";
    let out = check(dir.path(), &STUDY_TAIL_FREE.replace("#SETTINGS", settings));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run_json(dir.path(), "study.toml", &[]);
    let derivatives = dir.path().join("derivatives/runs");
    let table = Tsv::read(&derivatives.join("imaging_runs.tsv"));
    let row = |s: &str| (0..table.rows.len()).find(|&r| table.text(r, "participant_id") == s).unwrap();
    let (one, two) = (row("sub-01"), row("sub-02"));
    let counts = |r: usize| ["volumes", "dummy_scans", "censored", "kept"].map(|c| table.num(r, c));
    assert_eq!(counts(one), [80.0, 0.0, 14.0, 66.0]);
    assert_eq!(counts(two), [80.0, 6.0, 10.0, 64.0]);
    assert_eq!(table.text(one, "status"), "included");
    assert!(
        table.text(two, "status").starts_with("excluded: less than 130 s of clean data (128 s)"),
        "{:?}",
        table.rows
    );
    let connectome = Tsv::read(&derivatives.join("connectome.tsv"));
    assert_eq!(connectome.rows.len(), 1);
    assert_eq!(connectome.rows[0][0], "sub-01");
}

/// The study with its `[denoise]` replaced (the `#SETTINGS` block holds `[imaging]` choices and
/// the whole `[denoise]` section).
const STUDY_TAIL_FREE: &str = r#"
[study]
name = "runs"
seed = 3

[imaging]
fmriprep = "fmriprep"
task = "rest"
space = "MNI152NLin2009cAsym"
#SETTINGS

[regions.nuclei]
atlas = "labels.nii.gz"
labels = "labels.tsv"
include = ["amygdala_lh", "amygdala_rh"]

[regions.rois]
atlas = "labels.nii.gz"
labels = "labels.tsv"
include = ["precuneus"]

[connectivity]
pairs = [["nuclei", "rois"]]
fisher_z = true

[tables.connectome]
imaging = "connectome"
"#;

#[test]
fn extract_on_an_fmriprep_folder_chooses_images_by_entity() {
    let dir = tempfile::tempdir().unwrap();
    layout(dir.path());
    let out = dir.path().join("out");
    let (root, out_text) = (dir.path().join("fmriprep").display().to_string(), out.display().to_string());
    let (atlas, labels) = (fixture("labels.nii.gz").display().to_string(), fixture("labels.tsv").display().to_string());
    let args = |extra: &[&str]| {
        let mut a = vec![
            "extract",
            "--fmriprep",
            &root,
            "--task",
            "rest",
            "--space",
            SPACE,
            "--out-dir",
            &out_text,
            "--atlas",
            &atlas,
            "--labels",
            &labels,
            "--strategy",
            "24P",
        ];
        a.extend_from_slice(extra);
        neurospec(
            dir.path(),
            &a.iter().map(|s| s.to_string()).collect::<Vec<_>>().iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let ambiguous = args(&[]);
    let stderr = String::from_utf8_lossy(&ambiguous.stderr);
    assert_eq!(ambiguous.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("2 images of sub-01_task-rest_acq-mb4_run-1 differ in res (1, 2)"), "{stderr}");
    assert!(stderr.contains("--entity res=2"), "{stderr}");
    let chosen = args(&["--entity", "res=2"]);
    assert!(chosen.status.success(), "{}", String::from_utf8_lossy(&chosen.stderr));
    for run in ["1", "2"] {
        let file = out
            .join(format!("sub-01/func/sub-01_task-rest_acq-mb4_run-{run}_space-{SPACE}_atlas-labels_timeseries.tsv"));
        assert!(file.is_file(), "{}", file.display());
    }
}

#[test]
fn more_dummy_scans_than_volumes_fail_check_by_name() {
    let dir = tempfile::tempdir().unwrap();
    layout(dir.path());
    let settings = "res = \"2\"\nruns = [1]\n\n[denoise]\nstrategy = \"24P\"\ndummy_scans = 80";
    let out = check(dir.path(), &STUDY_TAIL_FREE.replace("#SETTINGS", settings));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("study.toml:") && stderr.contains("dummy_scans = 80 but"), "{stderr}");
    assert!(stderr.contains("has 80 volumes; nothing would be left"), "{stderr}");
    let settings = "res = \"2\"\nruns = [1]\n\n[denoise]\ndummy_scans = \"some\"";
    let out = check(dir.path(), &STUDY_TAIL_FREE.replace("#SETTINGS", settings));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dummy_scans") && stderr.contains("expected `auto` or a whole number"), "{stderr}");
}

#[test]
fn ambiguous_images_and_several_runs_are_listed_in_check() {
    let dir = tempfile::tempdir().unwrap();
    layout(dir.path());
    let ambiguous = String::from_utf8_lossy(&study(dir.path(), "").stderr).to_string();
    insta::assert_snapshot!("ambiguous_images", ambiguous);
    let several = String::from_utf8_lossy(&study(dir.path(), "res = \"2\"").stderr).to_string();
    insta::assert_snapshot!("several_runs", several);
}
