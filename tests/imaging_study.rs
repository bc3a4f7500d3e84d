//! Imaging inside a study: fMRIPrep runs → per-subject extraction stages → the connectome table,
//! cached and checked like everything else.

mod common;

use common::*;
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    repo().join("tests/fixtures/imaging").join(name)
}

const SPACE: &str = "MNI152NLin2009cAsym";

/// Three subjects (the fixture run as float32 .nii.gz, uncompressed .nii and scaled int16) and a
/// subject folder with no functional run; atlas files beside the study.
fn layout(dir: &Path) {
    for (subject, image) in [("01", "bold.nii.gz"), ("02", "bold_int16.nii.gz"), ("03", "bold.nii")] {
        let func = dir.join(format!("fmriprep/sub-{subject}/func"));
        std::fs::create_dir_all(&func).unwrap();
        let ext = if image.ends_with(".gz") { "nii.gz" } else { "nii" };
        let prefix = format!("sub-{subject}_task-rest");
        std::fs::copy(fixture(image), func.join(format!("{prefix}_space-{SPACE}_desc-preproc_bold.{ext}"))).unwrap();
        std::fs::write(
            func.join(format!("{prefix}_space-{SPACE}_desc-preproc_bold.json")),
            r#"{"RepetitionTime": 2.0}"#,
        )
        .unwrap();
        std::fs::copy(fixture("confounds.tsv"), func.join(format!("{prefix}_desc-confounds_timeseries.tsv"))).unwrap();
    }
    std::fs::create_dir_all(dir.join("fmriprep/sub-04/anat")).unwrap();
    std::fs::copy(fixture("labels.nii.gz"), dir.join("labels.nii.gz")).unwrap();
    std::fs::copy(fixture("labels.tsv"), dir.join("labels.tsv")).unwrap();
    std::fs::write(dir.join("pheno.tsv"), "eid\tage\n01\t30\n02\t40\n03\t50\n").unwrap();
}

const STUDY: &str = r#"
[study]
name = "nuclei"
seed = 3

[imaging]
fmriprep = "fmriprep"
task = "rest"
space = "MNI152NLin2009cAsym"
missing_runs = "exclude"

[regions.nuclei]
atlas = "labels.nii.gz"
labels = "labels.tsv"
include = ["amygdala_lh", "amygdala_rh"]

[regions.rois]
atlas = "labels.nii.gz"
labels = "labels.tsv"
include = ["precuneus", "insula_lh"]

[denoise]
strategy = "24P"
band = [0.01, 0.1]

[connectivity]
pairs = [["nuclei", "rois"]]
fisher_z = true

[tables.pheno]
path = "pheno.tsv"

[tables.connectome]
imaging = "connectome"
"#;

#[test]
fn a_study_extracts_every_subject_and_builds_the_connectome() {
    let dir = tempfile::tempdir().unwrap();
    layout(dir.path());
    std::fs::write(dir.path().join("study.toml"), STUDY).unwrap();
    let check = neurospec(dir.path(), &["check", "study.toml"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let first = run_json(dir.path(), "study.toml", &[]);
    let ran = executed(&first);
    for stage in ["imaging/sub-01", "imaging/sub-02", "imaging/sub-03", "connectome", "table/connectome"] {
        assert!(ran.contains(&stage.to_string()), "{stage} did not run: {ran:?}");
    }
    let out = dir.path().join("derivatives/nuclei");
    let connectome = Tsv::read(&out.join("connectome.tsv"));
    assert_eq!(
        connectome.header,
        [
            "participant_id",
            "conn_amygdala_lh__precuneus",
            "conn_amygdala_lh__insula_lh",
            "conn_amygdala_rh__precuneus",
            "conn_amygdala_rh__insula_lh"
        ]
    );
    assert_eq!(connectome.rows.len(), 3);
    // Edges equal the Fisher z of nilearn's Pearson matrix of the band-passed 24P series.
    let expected_series = Tsv::read(&fixture("ts_24P_bandpass_f64.tsv"));
    let col =
        |name: &str| -> Vec<f64> { (0..expected_series.rows.len()).map(|r| expected_series.num(r, name)).collect() };
    let r = |a: &[f64], b: &[f64]| {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    };
    let expected = r(&col("amygdala_lh"), &col("precuneus")).atanh();
    for row in 0..3 {
        let ours = connectome.num(row, "conn_amygdala_lh__precuneus");
        // Subject 02's image is the same data quantised to int16 (steps of 0.01).
        let tolerance = if connectome.text(row, "participant_id") == "sub-02" { 1e-3 } else { 1e-5 };
        assert!(
            (ours - expected).abs() < tolerance,
            "subject {}: {ours} vs {expected}",
            connectome.text(row, "participant_id")
        );
    }
    let runs = Tsv::read(&out.join("imaging_runs.tsv"));
    let status = runs.col("status");
    assert!(runs.rows.iter().any(|r| r[0] == "sub-04" && r[status].contains("no usable run")), "{:?}", runs.rows);
    assert!(out.join(format!("sub-01/func/sub-01_task-rest_space-{SPACE}_atlas-nucleiRois_timeseries.tsv")).is_file());
    common::bids::check_folder(&out, Some(SPACE));

    // Nothing changed: nothing runs. Editing the denoising reruns the imaging runs.
    assert_eq!(run_json(dir.path(), "study.toml", &[])["executed"], 0);
    let study = dir.path().join("study.toml");
    std::fs::write(&study, STUDY.replace("band = [0.01, 0.1]", "band = [0.01, 0.08]")).unwrap();
    let after = executed(&run_json(dir.path(), "study.toml", &[]));
    assert!(after.contains(&"imaging/sub-01".to_string()) && after.contains(&"connectome".to_string()), "{after:?}");
}

#[test]
fn imaging_problems_fail_check_by_name() {
    let dir = tempfile::tempdir().unwrap();
    layout(dir.path());
    // A sphere far outside the brain, a misspelt label, an undeclared set, a strict missing-run policy.
    let study = STUDY
        .replace("missing_runs = \"exclude\"", "missing_runs = \"error\"")
        .replace("include = [\"precuneus\", \"insula_lh\"]", "include = [\"precuneus\", \"insula\"]")
        .replace("pairs = [[\"nuclei\", \"rois\"]]", "pairs = [[\"nuclei\", \"roi\"]]");
    std::fs::write(dir.path().join("study.toml"), study).unwrap();
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sub-04") && stderr.contains("missing_runs"), "{stderr}");
    assert!(stderr.contains("label `insula` is not in the label table"), "{stderr}");
    insta::assert_snapshot!("imaging_problems", stderr);

    let lost = STUDY.replace(
        "[denoise]",
        "[regions.raphe]\nspheres = [{ name = \"dorsal_raphe\", centre = [300.0, 0.0, 0.0], radius = 2.0 }]\n\n[denoise]",
    );
    std::fs::write(dir.path().join("study.toml"), lost).unwrap();
    let out = neurospec(dir.path(), &["check", "study.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("dorsal_raphe") && stderr.contains("no voxel"), "{stderr}");
    let shown = stderr.replace(&dir.path().display().to_string(), "[DIR]");
    insta::assert_snapshot!("region_lost_in_resampling", shown);
}

/// Two sessions per subject, paired by subject: one connectome row per subject with every edge
/// once per session; a subject missing a session is excluded and listed; undeclared sessions
/// are an error that suggests declaring them.
#[test]
fn sessions_are_discovered_and_paired_per_subject() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (subject, sessions) in [("01", vec!["pre", "post"]), ("02", vec!["pre", "post"]), ("03", vec!["pre"])] {
        for session in sessions {
            let func = d.join(format!("fmriprep/sub-{subject}/ses-{session}/func"));
            std::fs::create_dir_all(&func).unwrap();
            let prefix = format!("sub-{subject}_ses-{session}_task-rest");
            let image = if session == "pre" { "bold.nii.gz" } else { "bold_int16.nii.gz" };
            std::fs::copy(fixture(image), func.join(format!("{prefix}_space-{SPACE}_desc-preproc_bold.nii.gz")))
                .unwrap();
            std::fs::write(
                func.join(format!("{prefix}_space-{SPACE}_desc-preproc_bold.json")),
                r#"{"RepetitionTime": 2.0}"#,
            )
            .unwrap();
            std::fs::copy(fixture("confounds.tsv"), func.join(format!("{prefix}_desc-confounds_timeseries.tsv")))
                .unwrap();
        }
    }
    std::fs::copy(fixture("labels.nii.gz"), d.join("labels.nii.gz")).unwrap();
    std::fs::copy(fixture("labels.tsv"), d.join("labels.tsv")).unwrap();
    std::fs::write(d.join("pheno.tsv"), "eid\tage\n01\t30\n02\t40\n03\t50\n").unwrap();

    std::fs::write(d.join("study.toml"), STUDY).unwrap();
    let out = neurospec(d, &["check", "study.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("subject 01 has 2 runs of task-rest") && stderr.contains("sessions = [\"post\", \"pre\"]"),
        "{stderr}"
    );

    let study =
        STUDY.replace("missing_runs = \"exclude\"", "missing_runs = \"exclude\"\nsessions = [\"pre\", \"post\"]");
    std::fs::write(d.join("study.toml"), &study).unwrap();
    let ran = executed(&run_json(d, "study.toml", &[]));
    for stage in ["imaging/sub-01/ses-pre", "imaging/sub-01/ses-post", "imaging/sub-02/ses-post", "connectome"] {
        assert!(ran.contains(&stage.to_string()), "{stage} did not run: {ran:?}");
    }
    assert!(!ran.iter().any(|s| s.starts_with("imaging/sub-03")), "{ran:?}");
    let out = d.join("derivatives/nuclei");
    let connectome = Tsv::read(&out.join("connectome.tsv"));
    assert_eq!(connectome.rows.len(), 2);
    assert_eq!(connectome.header[1], "conn_amygdala_lh__precuneus__pre");
    assert_eq!(connectome.header[5], "conn_amygdala_lh__precuneus__post");
    // pre is the float image, post the same data quantised to int16: equal to 1e-3.
    for row in 0..2 {
        let (pre, post) = (
            connectome.num(row, "conn_amygdala_lh__precuneus__pre"),
            connectome.num(row, "conn_amygdala_lh__precuneus__post"),
        );
        assert!((pre - post).abs() < 1e-3 && pre != post, "{pre} vs {post}");
    }
    let runs = Tsv::read(&out.join("imaging_runs.tsv"));
    let status = runs.col("status");
    assert!(runs.rows.iter().any(|r| r[0] == "sub-03" && r[status].contains("no usable run")), "{:?}", runs.rows);
    let series =
        format!("sub-01/ses-post/func/sub-01_ses-post_task-rest_space-{SPACE}_atlas-nucleiRois_timeseries.tsv");
    assert!(out.join(series).is_file());
    common::bids::check_folder(&out, Some(SPACE));
}

/// The first run on each distinct BOLD grid publishes that grid's regions, label image and mean
/// BOLD volume (the voxel mean of the volumes after the non-steady-state ones, before cleaning);
/// a run on a grid already published adds none; the report draws the first grid and links the
/// others.
#[test]
fn each_bold_grid_publishes_its_regions_and_mean_volume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    layout(d);
    // sub-02 (an int16 copy) becomes the float fixture one voxel (3 mm) further along x (sform
    // and qform): a second grid. sub-03 shares sub-01's grid.
    let func = d.join("fmriprep/sub-02/func");
    std::fs::remove_file(func.join(format!("sub-02_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz"))).unwrap();
    let mut shifted = std::fs::read(fixture("bold.nii")).unwrap();
    for at in [268, 292] {
        let x = f32::from_le_bytes(shifted[at..at + 4].try_into().unwrap()) + 3.0;
        shifted[at..at + 4].copy_from_slice(&x.to_le_bytes());
    }
    std::fs::write(func.join(format!("sub-02_task-rest_space-{SPACE}_desc-preproc_bold.nii")), &shifted).unwrap();
    let study = STUDY.replace("band = [0.01, 0.1]", "band = [0.01, 0.1]\ndummy_scans = 2");
    std::fs::write(d.join("study.toml"), study).unwrap();
    run_json(d, "study.toml", &[]);
    let out = d.join("derivatives/nuclei");
    let name =
        |subject: &str, suffix: &str| format!("sub-{subject}/func/sub-{subject}_task-rest_space-{SPACE}_{suffix}");
    for subject in ["01", "02"] {
        for suffix in ["desc-mean_boldref.nii.gz", "atlas-nucleiRois_dseg.nii.gz", "atlas-nucleiRois_dseg.tsv"] {
            assert!(out.join(name(subject, suffix)).is_file(), "{} not published", name(subject, suffix));
        }
    }
    let published = common::bids::files(&out);
    assert!(!published.iter().any(|f| f.starts_with("sub-03/") && (f.contains("boldref") || f.contains("dseg"))));

    // The mean volume, recomputed from the fixture's float32 voxels (volumes 3 to 80).
    let raw = std::fs::read(fixture("bold.nii")).unwrap();
    let dim: Vec<usize> =
        (0..4).map(|i| i16::from_le_bytes(raw[42 + 2 * i..44 + 2 * i].try_into().unwrap()) as usize).collect();
    assert_eq!(i16::from_le_bytes(raw[70..72].try_into().unwrap()), 16, "float32 fixture");
    let offset = f32::from_le_bytes(raw[108..112].try_into().unwrap()) as usize;
    let voxels = dim[0] * dim[1] * dim[2];
    let value = |t: usize, v: usize| {
        let at = offset + 4 * (t * voxels + v);
        f64::from(f32::from_le_bytes(raw[at..at + 4].try_into().unwrap()))
    };
    for subject in ["01", "02"] {
        let (header, mean) =
            neurospec::imaging::nifti::read_3d(&out.join(name(subject, "desc-mean_boldref.nii.gz"))).unwrap();
        assert_eq!(header.shape3(), [dim[0], dim[1], dim[2]]);
        let (bold, _) =
            neurospec::imaging::nifti::read_3d(&out.join(name(subject, "atlas-nucleiRois_dseg.nii.gz"))).unwrap();
        assert_eq!(header.affine, bold.affine, "sub-{subject}: the reference is on its label image's grid");
        let expected_x = if subject == "01" { -18.0 } else { -15.0 };
        assert_eq!(header.affine[0][3], expected_x, "sub-{subject}: its own BOLD grid");
        for (v, got) in mean.iter().enumerate() {
            let expected = (2..dim[3]).map(|t| value(t, v)).sum::<f64>() / (dim[3] - 2) as f64;
            assert!((got - expected).abs() <= 1e-6 * expected.abs().max(1.0), "voxel {v}: {got} vs {expected}");
        }
    }
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("lie on 2 distinct BOLD grids"), "the report names the grids");
    assert!(report.contains(&name("02", "desc-mean_boldref.nii.gz")), "the second grid's reference is linked");
    common::bids::check_folder(&out, Some(SPACE));
}
