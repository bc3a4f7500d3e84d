//! Imaging agreement with nilearn on committed fixtures (tests/fixtures/imaging, made by
//! make_imaging_fixtures.py with the versions in its requirements.txt), and imaging input errors.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/imaging").join(name)
}

/// Read a TSV of numbers (optionally with a leading name column) as header + rows.
fn numbers(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let t = Tsv::read(path);
    let skip = usize::from(t.header[0] == "region" || t.header[0].is_empty());
    let header = t.header[skip..].to_vec();
    let rows = t.rows.iter().map(|r| r[skip..].iter().map(|v| v.parse().unwrap()).collect()).collect();
    (header, rows)
}

/// Max |ours − theirs| relative to the SD of theirs.
fn compare(ours: &Path, theirs: &Path) -> f64 {
    let (h1, a) = numbers(ours);
    let (h2, b) = numbers(theirs);
    assert_eq!(h1, h2, "region names/order differ from {}", theirs.display());
    assert_eq!(a.len(), b.len(), "row count differs from {}", theirs.display());
    assert!(a.iter().zip(&b).all(|(x, y)| x.len() == y.len()), "row lengths differ from {}", theirs.display());
    let all: Vec<f64> = b.iter().flatten().copied().collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let sd = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
    let worst = common::max_abs_diff(a.iter().flatten(), b.iter().flatten());
    worst / sd
}

fn extract(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut full = vec!["extract"];
    full.extend_from_slice(args);
    neurospec(dir, &full)
}

fn extract_ok(dir: &Path, args: &[&str]) {
    let out = extract(dir, args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn region_means_match_nilearn_labels_masker() {
    let dir = tempfile::tempdir().unwrap();
    let labels = fixture("labels.tsv");
    for (bold, atlas, expected) in [
        ("bold.nii.gz", "labels.nii.gz", "ts_raw.tsv"),
        ("bold.nii", "labels.nii.gz", "ts_raw.tsv"),
        ("bold_int16.nii.gz", "labels.nii.gz", "ts_raw_int16.tsv"),
        ("bold.nii.gz", "labels_2mm.nii.gz", "ts_resampled.tsv"),
    ] {
        let out = dir.path().join("ts.tsv");
        extract_ok(
            dir.path(),
            &[
                "--bold",
                fixture(bold).to_str().unwrap(),
                "--atlas",
                fixture(atlas).to_str().unwrap(),
                "--labels",
                labels.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--regions-out",
                dir.path().join("regions.tsv").to_str().unwrap(),
            ],
        );
        let error = compare(&out, &fixture(expected));
        assert!(error <= 1e-5, "{bold} × {atlas}: max difference {error:e} × SD");
    }
    // Voxel counts before and after nearest-neighbour resampling agree with nilearn's.
    let ours = Tsv::read(&dir.path().join("regions.tsv"));
    let theirs = Tsv::read(&fixture("resampled_counts.tsv"));
    for r in 0..theirs.rows.len() {
        assert_eq!(ours.text(r, "region"), theirs.text(r, "name"));
        assert_eq!(ours.num(r, "voxels_before"), theirs.num(r, "voxels_before"));
        assert_eq!(ours.num(r, "voxels_after"), theirs.num(r, "voxels_after"));
    }
}

#[test]
fn every_denoising_strategy_matches_nilearn_signal_clean() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 7] = [
        ("ts_6P", &["--strategy", "6P"]),
        ("ts_24P", &["--strategy", "24P"]),
        ("ts_36P", &["--strategy", "36P"]),
        ("ts_acompcor6", &["--strategy", "acompcor6"]),
        ("ts_gsr", &["--strategy", "gsr"]),
        ("ts_24P_bandpass", &["--strategy", "24P", "--band", "0.01", "0.1"]),
        ("ts_24P_bandpass", &["--strategy", "24P", "--band", "0.01", "0.1", "--tr", "2"]),
    ];
    for (expected, extra) in cases {
        let out = dir.path().join(format!("{expected}.tsv"));
        let mut args = vec![
            "--bold".to_string(),
            fixture("bold.nii.gz").display().to_string(),
            "--atlas".to_string(),
            fixture("labels.nii.gz").display().to_string(),
            "--labels".to_string(),
            fixture("labels.tsv").display().to_string(),
            "--confounds".to_string(),
            fixture("confounds.tsv").display().to_string(),
            "--out".to_string(),
            out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        extract_ok(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        // Against nilearn itself (float32 image path) and against its float64 re-run.
        let error = compare(&out, &fixture(&format!("{expected}.tsv")));
        assert!(error <= 1e-5, "{expected}: max difference {error:e} × SD vs nilearn");
        let error64 = compare(&out, &fixture(&format!("{expected}_f64.tsv")));
        assert!(error64 <= 1e-9, "{expected}: max difference {error64:e} × SD vs nilearn in float64");
    }
}

#[test]
fn connectivity_matches_nilearn_and_numpy() {
    let dir = tempfile::tempdir().unwrap();
    for (measure, fisher, expected) in [
        ("pearson", false, "conn_pearson.tsv"),
        ("pearson", true, "conn_pearson_fisherz.tsv"),
        ("correlation", false, "conn_correlation_lw.tsv"),
        ("partial", false, "conn_partial_lw.tsv"),
    ] {
        let matrix = dir.path().join("m.tsv");
        let mut args = vec![
            "--bold".to_string(),
            fixture("bold.nii.gz").display().to_string(),
            "--atlas".to_string(),
            fixture("labels.nii.gz").display().to_string(),
            "--labels".to_string(),
            fixture("labels.tsv").display().to_string(),
            "--confounds".to_string(),
            fixture("confounds.tsv").display().to_string(),
            "--strategy".to_string(),
            "24P".to_string(),
            "--out".to_string(),
            dir.path().join("ts.tsv").display().to_string(),
            "--connectivity".to_string(),
            measure.to_string(),
            "--connectivity-out".to_string(),
            matrix.display().to_string(),
        ];
        if fisher {
            args.push("--fisher-z".into());
        }
        extract_ok(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        let (_, ours) = numbers(&matrix);
        let (_, theirs) = numbers(&fixture(expected));
        let worst = common::max_abs_diff(ours.iter().flatten(), theirs.iter().flatten());
        assert!(worst <= 1e-6, "{expected}: max abs difference {worst:e}");
    }
}

fn write_image(path: &Path, dim: &[usize], data: &[f32]) {
    let affine = [[3.0, 0.0, 0.0, -18.0], [0.0, 3.0, 0.0, -21.0], [0.0, 0.0, 3.0, -15.0]];
    neurospec::imaging::nifti::write_f32(path, dim, affine, Some(2.0), data).unwrap();
}

fn error_of(dir: &Path, bold: &Path, atlas: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--bold", bold.to_str().unwrap(), "--atlas", atlas.to_str().unwrap(), "--out", "ts.tsv"];
    args.extend_from_slice(extra);
    let out = extract(dir, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "expected a data error: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.join("ts.tsv").exists(), "nothing is written on error");
    stderr
}

#[test]
fn bad_images_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let atlas = fixture("labels.nii.gz");

    // Truncated .nii.gz.
    let bytes = std::fs::read(fixture("bold.nii.gz")).unwrap();
    let cut = d.join("cut.nii.gz");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let e = error_of(d, &cut, &atlas, &[]);
    assert!(e.contains("cut.nii.gz") && (e.contains("truncated") || e.contains("corrupt")), "{e}");

    // A 3D image where a 4D one is needed.
    let three_d = d.join("anat.nii.gz");
    write_image(&three_d, &[12, 14, 10], &vec![1.0; 12 * 14 * 10]);
    let e = error_of(d, &three_d, &atlas, &[]);
    assert!(e.contains("anat.nii.gz") && e.contains("expected a 4D image"), "{e}");

    // NaN voxel inside a region.
    let (_, labels) = neurospec::imaging::nifti::read_3d(&atlas).unwrap();
    let inside = labels.iter().position(|&v| v == 1.0).unwrap();
    let n = 12 * 14 * 10;
    let mut data: Vec<f32> = (0..n * 20).map(|i| ((i * 7919) % 1000) as f32).collect();
    data[5 * n + inside] = f32::NAN;
    let nan = d.join("nan.nii.gz");
    write_image(&nan, &[12, 14, 10, 20], &data);
    let e = error_of(d, &nan, &atlas, &["--labels", fixture("labels.tsv").to_str().unwrap()]);
    assert!(
        e.contains("nan.nii.gz") && e.contains("amygdala_lh") && e.contains("volume 6") && e.contains("NaN"),
        "{e}"
    );

    // A region whose time series is constant.
    let mut flat: Vec<f32> = (0..n * 20).map(|i| ((i * 7919) % 1000) as f32).collect();
    for t in 0..20 {
        for (v, &l) in labels.iter().enumerate() {
            if l == 8.0 {
                flat[t * n + v] = 5.0;
            }
        }
    }
    let flat_path = d.join("flat.nii.gz");
    write_image(&flat_path, &[12, 14, 10, 20], &flat);
    let labels_arg = fixture("labels.tsv");
    let e = error_of(d, &flat_path, &atlas, &["--labels", labels_arg.to_str().unwrap(), "--min-volumes", "1"]);
    assert!(e.contains("precuneus") && e.contains("constant"), "{e}");
    // A 20-volume run is shorter than the default min_volumes (50): a listed exclusion.
    let e = error_of(d, &flat_path, &atlas, &["--labels", labels_arg.to_str().unwrap()]);
    assert!(e.contains("excluded: fewer than 50 volumes (20)"), "{e}");

    // Atlas on another grid with resampling forbidden: names both files.
    let e = error_of(d, &fixture("bold.nii.gz"), &fixture("labels_2mm.nii.gz"), &["--no-resample"]);
    assert!(e.contains("labels_2mm.nii.gz") && e.contains("bold.nii.gz") && e.contains("grid"), "{e}");

    // A region that loses every voxel when resampled: a tiny label far from BOLD voxel centres.
    let mut tiny = vec![0.0f32; 40 * 40 * 40];
    tiny[20 + 40 * (20 + 40 * 20)] = 1.0;
    let tiny_path = d.join("tiny.nii.gz");
    let affine = [[0.5, 0.0, 0.0, -9.25], [0.0, 0.5, 0.0, -10.25], [0.0, 0.0, 0.5, -9.25]];
    neurospec::imaging::nifti::write_f32(&tiny_path, &[40, 40, 40], affine, None, &tiny).unwrap();
    let table = d.join("tiny.tsv");
    std::fs::write(&table, "index\tname\n1\tdorsal_raphe\n").unwrap();
    let e = error_of(d, &fixture("bold.nii.gz"), &tiny_path, &["--labels", table.to_str().unwrap()]);
    assert!(e.contains("dorsal_raphe") && e.contains("loses all its voxels"), "{e}");
}

fn scrubbed(dir: &Path, confounds: &Path, out: &Path) {
    extract_ok(
        dir,
        &[
            "--bold",
            fixture("bold.nii.gz").to_str().unwrap(),
            "--atlas",
            fixture("labels.nii.gz").to_str().unwrap(),
            "--labels",
            fixture("labels.tsv").to_str().unwrap(),
            "--confounds",
            confounds.to_str().unwrap(),
            "--strategy",
            "24P",
            "--band",
            "0.01",
            "0.1",
            "--fd-threshold",
            "0.5",
            "--out",
            out.to_str().unwrap(),
        ],
    );
}

#[test]
fn scrubbing_matches_nilearn_and_its_documented_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    // FD > 0.5 mm plus segments shorter than 5 volumes: nilearn's own result.
    let out = dir.path().join("scrub.tsv");
    scrubbed(dir.path(), &fixture("confounds.tsv"), &out);
    assert!(compare(&out, &fixture("ts_24P_scrub.tsv")) <= 1e-5);
    assert!(compare(&out, &fixture("ts_24P_scrub_f64.tsv")) <= 1e-9);

    // Censoring volumes 10, 30 and 69 (69 = 79 − 10): nilearn 0.14.1 interpolates mirror rows,
    // so volumes 10 and 69 are never interpolated there. We follow the documented algorithm.
    let text = std::fs::read_to_string(fixture("confounds.tsv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let fd = lines[0].split('\t').position(|h| h == "framewise_displacement").unwrap();
    for (t, line) in lines.iter_mut().enumerate().skip(1) {
        let mut cells: Vec<String> = line.split('\t').map(String::from).collect();
        let volume = t - 1;
        cells[fd] = if volume == 0 {
            "n/a".into()
        } else if [10, 30, 69].contains(&volume) {
            "0.9".into()
        } else {
            "0.1".into()
        };
        *line = cells.join("\t");
    }
    let mirror_confounds = dir.path().join("mirror_confounds.tsv");
    std::fs::write(&mirror_confounds, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("mirror.tsv");
    scrubbed(dir.path(), &mirror_confounds, &out);
    let intended = compare(&out, &fixture("ts_24P_scrub_mirror_intended_f64.tsv"));
    assert!(intended <= 1e-9, "documented algorithm: {intended:e} × SD");
    let nilearn = compare(&out, &fixture("ts_24P_scrub_mirror_f64.tsv"));
    assert!(nilearn > 0.1, "nilearn's mirrored interpolation should differ here ({nilearn})");
}

#[test]
fn seed_matrices_and_seed_to_voxel_maps_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A one-voxel sphere: its region series is that voxel's series, so the seed × region matrix
    // entry must equal the seed-to-voxel map at that voxel.
    let (header, _) = neurospec::imaging::nifti::read_3d(&fixture("labels.nii.gz")).unwrap();
    let grid = neurospec::imaging::regions::Grid::of(&header);
    let (i, j, k) = (6, 7, 5);
    let centre = grid.world(i, j, k);
    let sphere = format!("probe:{},{},{}:0.5", centre[0], centre[1], centre[2]);
    let rect = d.join("rect.tsv");
    extract_ok(
        d,
        &[
            "--bold",
            fixture("bold.nii.gz").to_str().unwrap(),
            "--atlas",
            fixture("labels.nii.gz").to_str().unwrap(),
            "--labels",
            fixture("labels.tsv").to_str().unwrap(),
            "--sphere",
            &sphere,
            "--confounds",
            fixture("confounds.tsv").to_str().unwrap(),
            "--strategy",
            "24P",
            "--out",
            d.join("ts.tsv").to_str().unwrap(),
            "--connectivity",
            "pearson",
            "--fisher-z",
            "--seeds",
            "amygdala_lh,amygdala_rh",
            "--connectivity-out",
            rect.to_str().unwrap(),
            "--seed-maps-out",
            d.join("maps").to_str().unwrap(),
        ],
    );
    let table = Tsv::read(&rect);
    assert_eq!(table.header, ["seed", "hippocampus_lh", "hippocampus_rh", "precuneus", "insula_lh", "probe"]);
    assert_eq!(table.rows.len(), 2);
    // Region entries agree with nilearn's Pearson matrix (as Fisher z).
    let (names, full) = numbers(&fixture("conn_pearson.tsv"));
    let at = |n: &str| names.iter().position(|x| x == n).unwrap();
    let expected = full[at("amygdala_lh")][at("precuneus")].atanh();
    assert!((table.num(0, "precuneus") - expected).abs() < 1e-6);
    for (row, seed) in [(0, "amygdala_lh"), (1, "amygdala_rh")] {
        let (_, map) = neurospec::imaging::nifti::read_3d(&d.join(format!("maps/{seed}_fisherz.nii.gz"))).unwrap();
        let voxel = map[grid.index(i, j, k)];
        let entry = table.num(row, "probe");
        assert!((voxel - entry).abs() < 1e-5, "{seed}: map {voxel} vs matrix {entry}");
        assert!(map.iter().filter(|v| **v != 0.0).count() > 100, "the map covers the brain voxels");
    }
}

#[test]
fn fmriprep_folders_are_discovered_and_written_bids_style() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fmriprep");
    let space = "MNI152NLin2009cAsym";
    for (subject, session) in [("01", None), ("02", Some("pre"))] {
        let mut func = root.join(format!("sub-{subject}"));
        let mut prefix = format!("sub-{subject}");
        if let Some(s) = session {
            func = func.join(format!("ses-{s}"));
            prefix = format!("{prefix}_ses-{s}");
        }
        let func = func.join("func");
        std::fs::create_dir_all(&func).unwrap();
        std::fs::copy(
            fixture("bold.nii.gz"),
            func.join(format!("{prefix}_task-rest_space-{space}_desc-preproc_bold.nii.gz")),
        )
        .unwrap();
        std::fs::write(
            func.join(format!("{prefix}_task-rest_space-{space}_desc-preproc_bold.json")),
            r#"{"RepetitionTime": 2.0}"#,
        )
        .unwrap();
        std::fs::copy(fixture("confounds.tsv"), func.join(format!("{prefix}_task-rest_desc-confounds_timeseries.tsv")))
            .unwrap();
    }
    std::fs::create_dir_all(root.join("sub-03/anat")).unwrap();
    let out = dir.path().join("out");
    let args = |missing: &str| {
        vec![
            "--fmriprep".to_string(),
            root.display().to_string(),
            "--task".into(),
            "rest".into(),
            "--space".into(),
            space.into(),
            "--out-dir".into(),
            out.display().to_string(),
            "--atlas".into(),
            fixture("labels.nii.gz").display().to_string(),
            "--labels".into(),
            fixture("labels.tsv").display().to_string(),
            "--strategy".into(),
            "24P".into(),
            "--band".into(),
            "0.01".into(),
            "0.1".into(),
            "--connectivity".into(),
            "pearson".into(),
            "--missing".into(),
            missing.into(),
        ]
    };
    let strict = extract(dir.path(), &args("error").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("sub-03"), "{}", String::from_utf8_lossy(&strict.stderr));
    let lenient = extract(dir.path(), &args("skip").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(lenient.status.success(), "{}", String::from_utf8_lossy(&lenient.stderr));
    assert!(
        String::from_utf8_lossy(&lenient.stderr)
            .contains("excluded (no run of task-rest in space-MNI152NLin2009cAsym): sub-03")
    );
    // TR came from the JSON sidecar; results equal nilearn's band-passed 24P series.
    for path in [
        "sub-01/func/sub-01_task-rest_space-MNI152NLin2009cAsym_atlas-labels_timeseries.tsv",
        "sub-02/ses-pre/func/sub-02_ses-pre_task-rest_space-MNI152NLin2009cAsym_atlas-labels_timeseries.tsv",
    ] {
        assert!(compare(&out.join(path), &fixture("ts_24P_bandpass.tsv")) <= 1e-5, "{path}");
    }
    assert!(
        out.join(
            "sub-01/func/sub-01_task-rest_space-MNI152NLin2009cAsym_atlas-labels_meas-pearsoncorrelation_relmat.tsv"
        )
        .is_file()
    );
    assert!(out.join("dataset_description.json").is_file());
    // Every name parses as BIDS, with sub/ses/task/space/atlas/meas in order: two runs' series
    // and matrices, each with its JSON sidecar.
    assert_eq!(common::bids::check_subject_names(&out, "MNI152NLin2009cAsym"), 8);
    // The sidecars are the study's: BEP017 keys, TR (from the BOLD sidecar), the denoising.
    assert_eq!(common::bids::check_connectivity(&out), 2);
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("sub-01/func/sub-01_task-rest_space-MNI152NLin2009cAsym_atlas-labels_timeseries.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["RepetitionTime"], 2.0);
    assert_eq!(sidecar["Denoising"]["Strategy"], "24P");
    assert_eq!(sidecar["Denoising"]["HighPass"], 0.01);
    assert_eq!(sidecar["NumberOfVolumesKept"], sidecar["NumberOfVolumes"]);
}

#[test]
fn an_impossible_band_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for band in [["0.1", "0.01"], ["0.01", "0.3"]] {
        let out = extract(
            dir.path(),
            &[
                "--bold",
                fixture("bold.nii.gz").to_str().unwrap(),
                "--atlas",
                fixture("labels.nii.gz").to_str().unwrap(),
                "--band",
                band[0],
                band[1],
                "--out",
                "ts.tsv",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("Hz"), "{stderr}");
    }
}
