//! Voxelwise GLM with permutation FWE (`stats::voxelwise`) and ROC analysis (`stats::roc`):
//! agreement with statsmodels / scipy / scikit-learn on the committed fixture made by
//! `tests/fixtures/voxelwise/make_fixture.py`, planted-effect recovery, determinism across thread
//! counts, and null calibration of the family-wise error rate.

use neurospec::imaging::nifti::{read_3d, write_masked_f32};
use neurospec::imaging::regions::Grid;
use neurospec::stats::rng::Rng;
use neurospec::stats::roc::{self, Alternative};
use neurospec::stats::tfce::{Tfce, TfceParams};
use neurospec::stats::voxelwise::{
    ClusterSettings, ClusterThreshold, Connectivity, Covariates, Design, MaskedGrid, Settings, Tail, VoxelwiseResult,
    cluster_table, fit, render_cluster_table, t_for_two_sided_p,
};
use serde_json::Value;
use std::path::Path;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/voxelwise/fixture.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect()
}

/// Voxel-major rows (y[v][i]) flattened: subject i of voxel v at v * n + i.
fn voxel_major(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().flat_map(floats).collect()
}

fn no_progress(_: u64) {}

fn settings(permutations: usize) -> Settings<'static> {
    Settings { permutations, seed: 7, tail: Tail::TwoSided, cluster: None, map_statistic: None }
}

fn relative_error(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// t and β of every voxel for every design, against statsmodels OLS; df too.
#[test]
fn t_values_match_statsmodels() {
    let f = fixture();
    let n = f["n"].as_u64().unwrap() as usize;
    let y = voxel_major(&f["y"]);
    let diff = voxel_major(&f["diff"]);
    let covariates = Covariates {
        names: vec!["cov1".into(), "cov2".into()],
        values: [floats(&f["covariates"]["cov1"]), floats(&f["covariates"]["cov2"])].concat(),
    };
    let group = bools(&f["group"]);
    let designs = [
        ("two_sample_cov", Design::TwoSample { group: group.clone(), covariates: covariates.clone() }, &y),
        ("two_sample", Design::TwoSample { group, covariates: Covariates::none() }, &y),
        ("correlation", Design::Correlation { x: floats(&f["x"]), covariates }, &y),
        ("paired", Design::Paired, &diff),
    ];
    let mut worst = 0.0f64;
    for (name, design, data) in designs {
        let ours = fit(data, n, &design, &settings(0), &no_progress).unwrap();
        let expected = &f["models"][name];
        assert_eq!(ours.df, expected["df"].as_f64().unwrap(), "{name}: df");
        assert_eq!(ours.degenerate_voxels, 0);
        for (column, values) in [("t", &ours.t), ("beta", &ours.beta)] {
            for (v, (a, b)) in values.iter().zip(floats(&expected[column])).enumerate() {
                let err = relative_error(*a, b);
                worst = worst.max(err);
                assert!(err <= 1e-8, "{name} voxel {v}: {column} ours {a} statsmodels {b} (relative error {err:e})");
            }
        }
        // Parametric p is the two-sided Student p of that t.
        for (t, p) in ours.t.iter().zip(&ours.p) {
            assert!((neurospec::stats::t_two_sided_p(*t, ours.df) - p).abs() < 1e-15);
        }
        assert!(ours.p_fwe.iter().all(|p| p.is_nan()), "no permutations, no permutation p");
    }
    eprintln!("worst relative error of t / beta against statsmodels: {worst:e}");
}

/// Cluster-forming thresholds given as p convert to scipy's t quantiles.
#[test]
fn p_thresholds_match_scipy() {
    for row in fixture()["thresholds"].as_array().unwrap() {
        let ours = t_for_two_sided_p(row["p_two_sided"].as_f64().unwrap(), row["df"].as_f64().unwrap());
        let expected = row["t"].as_f64().unwrap();
        assert!(relative_error(ours, expected) < 1e-10, "ours {ours} scipy {expected}");
    }
}

/// AUC equals scikit-learn's roc_auc_score (ties included); DeLong variance equals the slow
/// kernel-matrix formula computed in Python (and, for `small`, the hand computation below).
#[test]
fn auc_matches_sklearn_and_delong_matches_kernel_formula() {
    for set in fixture()["roc"].as_array().unwrap() {
        let name = set["name"].as_str().unwrap();
        let scores = floats(&set["scores"]);
        let labels = bools(&set["labels"]);
        let auc = roc::auc(&scores, &labels).unwrap();
        let expected = set["auc"].as_f64().unwrap();
        assert!((auc - expected).abs() <= 1e-12, "{name}: AUC ours {auc} sklearn {expected}");
        let var = roc::delong_variance(&scores, &labels).unwrap();
        let expected = set["delong_variance"].as_f64().unwrap();
        assert!(relative_error(var, expected) <= 1e-12, "{name}: DeLong ours {var} kernel formula {expected}");
    }
    // By hand: positives 0.9, 0.7, 0.55, 0.4; negatives 0.8, 0.6, 0.4.
    // V10 = [1, 2/3, 1/3, 1/6] (S10 = 236/1728), V01 = [1/4, 1/2, 7/8] (S01 = 114/1152),
    // AUC = 6.5/12, Var = S10/4 + S01/3 = 464/6912.
    let scores = [0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.4];
    let labels = [true, false, true, false, true, false, true];
    assert!((roc::auc(&scores, &labels).unwrap() - 6.5 / 12.0).abs() < 1e-15);
    assert!((roc::delong_variance(&scores, &labels).unwrap() - 464.0 / 6912.0).abs() < 1e-15);
    let (low, high) = roc::delong_interval(&scores, &labels, 0.95).unwrap();
    let half = 1.959_963_984_540_054 * (464.0f64 / 6912.0).sqrt();
    assert!((low - (6.5 / 12.0 - half)).abs() < 1e-12 && (high - (6.5f64 / 12.0 + half).min(1.0)).abs() < 1e-12);
}

#[test]
fn roc_permutation_and_bootstrap() {
    // Perfect separation: the one-sided p is as small as B allows, never below 1/(B+1).
    let scores: Vec<f64> = (0..20).map(|i| i as f64).collect();
    let labels: Vec<bool> = (0..20).map(|i| i >= 10).collect();
    let p = roc::permutation_p(&scores, &labels, 999, 3, Alternative::Greater).unwrap();
    assert_eq!(p, 1.0 / 1000.0);
    // The score points the wrong way: one-sided p is large, two-sided small.
    let flipped: Vec<bool> = labels.iter().map(|l| !l).collect();
    assert!(roc::permutation_p(&scores, &flipped, 999, 3, Alternative::Greater).unwrap() > 0.99);
    assert_eq!(roc::permutation_p(&scores, &flipped, 999, 3, Alternative::TwoSided).unwrap(), 1.0 / 1000.0);

    let set = &fixture()["roc"][0];
    let (scores, labels) = (floats(&set["scores"]), bools(&set["labels"]));
    let auc = roc::auc(&scores, &labels).unwrap();
    let (low, high) = roc::bootstrap_interval(&scores, &labels, 2000, 5, 0.95).unwrap();
    assert!(0.0 <= low && low < auc && auc < high && high <= 1.0, "[{low}, {high}] around {auc}");
    assert_eq!((low, high), roc::bootstrap_interval(&scores, &labels, 2000, 5, 0.95).unwrap(), "seeded");
    // The summary bundles the same numbers and passes the circularity flag through.
    let settings = roc::RocSettings {
        ci_level: 0.95,
        bootstrap: 500,
        permutations: 500,
        seed: 1,
        alternative: Alternative::Greater,
        circular: true,
        exchange: Default::default(),
    };
    let summary = roc::summarise(&scores, &labels, &settings).unwrap();
    assert_eq!(summary.auc, auc);
    assert_eq!(summary.delong_ci, roc::delong_interval(&scores, &labels, 0.95).unwrap());
    assert_eq!(summary.delong_se, roc::delong_variance(&scores, &labels).unwrap().sqrt());
    assert!(summary.circular && summary.positives + summary.negatives == scores.len());
    assert!(summary.p_perm >= 1.0 / 501.0 && summary.p_perm < 0.1, "p {}", summary.p_perm);
    assert!(summary.bootstrap_ci.0 < auc && auc < summary.bootstrap_ci.1);
    // The bootstrap and DeLong intervals roughly agree for a moderate sample.
    let (dl, dh) = roc::delong_interval(&scores, &labels, 0.95).unwrap();
    assert!((dl - low).abs() < 0.08 && (dh - high).abs() < 0.08, "DeLong [{dl}, {dh}] bootstrap [{low}, {high}]");
}

/// Selecting the best of many null features on all subjects gives an optimistic AUC; the
/// cross-validated AUC (selection redone inside each training fold) does not, and the selection
/// never sees the held-out subjects.
#[test]
fn cross_validated_auc_removes_selection_optimism() {
    let (n, features) = (40, 200);
    let mut rng = Rng::new(11);
    let labels: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
    let data: Vec<Vec<f64>> = (0..features).map(|_| (0..n).map(|_| rng.normal()).collect()).collect();
    let best_on = |subjects: &[usize]| -> usize {
        let l: Vec<bool> = subjects.iter().map(|&i| labels[i]).collect();
        (0..features)
            .max_by(|&a, &b| {
                let auc = |f: usize| roc::auc(&subjects.iter().map(|&i| data[f][i]).collect::<Vec<_>>(), &l).unwrap();
                auc(a).total_cmp(&auc(b))
            })
            .unwrap()
    };
    let all: Vec<usize> = (0..n).collect();
    let circular = roc::auc(&data[best_on(&all)], &labels).unwrap();
    let seen_test = std::cell::Cell::new(false);
    let cv = roc::cross_validated_auc(&labels, 5, 1, |train| {
        let chosen = best_on(train);
        let train = train.to_vec();
        let data = &data;
        let seen = &seen_test;
        Ok(move |i: usize| {
            seen.set(seen.get() || train.contains(&i));
            data[chosen][i]
        })
    })
    .unwrap();
    assert!(!seen_test.get(), "a held-out subject was in its own training set");
    eprintln!("best of {features} null features: in-sample AUC {circular}, cross-validated {}", cv.auc);
    assert!(circular > 0.68, "in-sample AUC of the best null feature {circular}");
    assert!(cv.auc < circular - 0.1 && (0.2..0.8).contains(&cv.auc), "cross-validated {} circular {circular}", cv.auc);
    assert_eq!(cv.fold_auc.len(), 5);
    assert!(cv.scores.iter().all(|s| s.is_finite()));
    assert!(roc::cross_validated_auc(&labels, 1, 1, |_| Ok(|_: usize| 0.0)).is_err());
}

/// A 16³ grid with a planted 3×3×3 blob (group 1 higher): the blob is the first cluster, with
/// cluster FWE p < 0.05 and max-T p < 0.05 at its voxels; nothing else survives either
/// correction; the table and the NIfTI map put it in the right place.
#[test]
fn planted_cluster_is_found() {
    let (grid, mask) = cube_mask(16);
    let blob = |c: [usize; 3]| (5..8).contains(&c[0]) && (9..12).contains(&c[1]) && (4..7).contains(&c[2]);
    let n = 30;
    let group: Vec<bool> = (0..n).map(|i| i < 15).collect();
    let mut rng = Rng::new(2);
    let mut y = Vec::with_capacity(n * mask.len());
    for v in 0..mask.len() {
        let shift = if blob(mask.ijk(v)) { 2.5 } else { 0.0 };
        y.extend(group.iter().map(|&g| rng.normal() + if g { shift } else { 0.0 }));
    }
    let settings = Settings {
        permutations: 199,
        seed: 4,
        tail: Tail::TwoSided,
        cluster: Some(ClusterSettings {
            threshold: ClusterThreshold::T(3.1),
            connectivity: Connectivity::Corners26,
            mask: &mask,
        }),
        map_statistic: None,
    };
    let design = Design::TwoSample { group, covariates: Covariates::none() };
    let result = fit(&y, n, &design, &settings, &no_progress).unwrap();
    let clusters = result.clusters.as_ref().unwrap();
    let first = &clusters.clusters[0];
    assert_eq!(first.sign, 1);
    assert_eq!(first.voxels.len(), 27, "the blob and only the blob");
    assert!(first.voxels.iter().all(|&v| blob(mask.ijk(v))));
    assert!(first.p_fwe < 0.05, "cluster p {}", first.p_fwe);
    assert!(
        clusters.clusters[1..].iter().all(|c| c.p_fwe >= 0.05 && c.voxels.len() < 5),
        "{:?}",
        &clusters.clusters[1]
    );
    for v in 0..mask.len() {
        if blob(mask.ijk(v)) {
            assert!(result.p_fwe[v] < 0.05, "blob voxel {v}: t {} p_fwe {}", result.t[v], result.p_fwe[v]);
        } else {
            assert!(result.p_fwe[v] >= 0.05, "voxel {v} outside the blob: p_fwe {}", result.p_fwe[v]);
        }
    }
    assert_eq!(clusters.null_max_size.len(), 200);
    assert_eq!(clusters.null_max_size[0], 27, "the identity is the observed map");

    let label = |v: usize| blob(mask.ijk(v)).then(|| "Blob".to_string());
    let rows = cluster_table(clusters, &mask, Some(&label));
    let peak = mask.ijk(first.peak);
    assert_eq!(rows[0].peak_ijk, peak);
    assert_eq!(
        rows[0].peak_xyz,
        [-30.0 + 2.0 * peak[0] as f64, -40.0 + 2.0 * peak[1] as f64, 10.0 + 2.0 * peak[2] as f64]
    );
    assert_eq!(rows[0].volume_mm3, 27.0 * 8.0);
    assert_eq!(rows[0].peak_t, result.t[first.peak]);
    assert!(result.t.iter().zip(0..).filter(|(_, v)| first.voxels.contains(v)).all(|(t, _)| *t <= rows[0].peak_t));
    let tsv = render_cluster_table(&rows);
    let lines: Vec<Vec<&str>> = tsv.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines[0][0], "cluster");
    assert!(lines.iter().all(|l| l.len() == lines[0].len()));
    assert_eq!(&lines[1][..3], &["1", "+", "27"]);
    assert_eq!(lines[1].last(), Some(&"Blob"));
    assert!(lines[2..].iter().all(|l| l.last() == Some(&"n/a")));

    // The t map as NIfTI: masked values in place, zero elsewhere, the grid's affine.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.nii.gz");
    let coding = neurospec::imaging::nifti::Coding {
        xform_code: 4,
        qform: None,
        intent: neurospec::imaging::nifti::Intent::t(result.df as f64),
    };
    write_masked_f32(&path, grid.shape, grid.affine, &mask.voxels, &result.t, 0.0, coding).unwrap();
    let (header, volume) = read_3d(&path).unwrap();
    assert_eq!(header.shape3(), grid.shape);
    // MNI-152 sform code kept; NIFTI_INTENT_TTEST with the degrees of freedom in intent_p1.
    assert_eq!(header.xform_code, 4);
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap()), &mut raw)
        .unwrap();
    assert_eq!(i16::from_le_bytes([raw[68], raw[69]]), 3);
    assert_eq!(f32::from_le_bytes(raw[56..60].try_into().unwrap()), result.df as f32);
    assert_eq!(i16::from_le_bytes([raw[254], raw[255]]), 4);
    assert_eq!(header.affine, grid.affine);
    for (v, &flat) in mask.voxels.iter().enumerate() {
        assert_eq!(volume[flat], result.t[v] as f32 as f64);
    }
    assert_eq!(volume.iter().filter(|x| **x == 0.0).count(), grid.len() - mask.len());
}

/// A grid of side `side` (2 mm voxels) whose mask drops one corner region, so mask order and
/// grid order differ from a plain cube.
fn cube_mask(side: usize) -> (Grid, MaskedGrid) {
    let grid = Grid {
        shape: [side, side, side],
        affine: [[2.0, 0.0, 0.0, -30.0], [0.0, 2.0, 0.0, -40.0], [0.0, 0.0, 2.0, 10.0]],
    };
    let mut mask = vec![0.0; grid.len()];
    for k in 0..side {
        for j in 0..side {
            for i in 0..side {
                if i + j + k > 2 {
                    mask[grid.index(i, j, k)] = 1.0;
                }
            }
        }
    }
    let masked = MaskedGrid::from_mask(grid.clone(), &mask).unwrap();
    (grid, masked)
}

fn bits(result: &VoxelwiseResult) -> Vec<u64> {
    let mut out: Vec<u64> = [&result.t, &result.p, &result.p_perm, &result.p_fwe, &result.null_max_t]
        .iter()
        .flat_map(|v| v.iter().map(|x| x.to_bits()))
        .collect();
    out.extend(result.null_map_statistic.iter().map(|x| x.to_bits()));
    if let Some(c) = &result.clusters {
        out.extend(c.null_max_size.iter().map(|&s| s as u64));
        out.extend(c.clusters.iter().flat_map(|c| [c.voxels.len() as u64, c.peak as u64, c.p_fwe.to_bits()]));
    }
    out
}

/// Bitwise identical results with 1 and 2 threads; every p at least 1/(B+1) (the identity
/// counts); the identity is entry 0 of the null maxima.
#[test]
fn deterministic_across_thread_counts_and_identity_counts() {
    let (_, mask) = cube_mask(8);
    let n = 18;
    let mut rng = Rng::new(9);
    let y: Vec<f64> = (0..n * mask.len()).map(|_| rng.normal()).collect();
    let covariates = Covariates { names: vec!["age".into()], values: (0..n).map(|_| rng.normal()).collect() };
    let designs = [Design::Correlation { x: (0..n).map(|i| i as f64).collect(), covariates }, Design::Paired];
    for design in &designs {
        for tail in [Tail::TwoSided, Tail::Negative] {
            let tfce = Tfce::new(&mask, Connectivity::Faces6, TfceParams::default(), tail).unwrap();
            let tfce_max = |t: &[f64]| tfce.maximum(t);
            let settings = Settings {
                permutations: 150, // three blocks, the last one partial
                seed: 1,
                tail,
                cluster: Some(ClusterSettings {
                    threshold: ClusterThreshold::P(0.05),
                    connectivity: Connectivity::Faces6,
                    mask: &mask,
                }),
                map_statistic: Some(&tfce_max),
            };
            let run = |threads: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| fit(&y, n, design, &settings, &no_progress).unwrap())
            };
            let (one, two) = (run(1), run(2));
            assert_eq!(bits(&one), bits(&two), "{design:?} {tail:?}");
            let floor = 1.0 / 151.0;
            assert!(one.p_perm.iter().chain(&one.p_fwe).all(|p| *p >= floor && *p <= 1.0));
            let observed_max =
                one.t.iter().map(|t| if tail == Tail::Negative { -t } else { t.abs() }).fold(f64::MIN, f64::max);
            assert!(relative_error(one.null_max_t[0], observed_max) < 1e-9);
            assert_eq!(one.null_max_t.len(), 151);
            let most = one.t.iter().enumerate().max_by(|a, b| (a.1.abs()).total_cmp(&b.1.abs())).unwrap().0;
            if tail == Tail::TwoSided {
                assert!(one.p_fwe[most] >= floor && one.p_perm[most] <= one.p_fwe[most]);
            }
            let tfce = tfce.infer(&one.t, &one.null_map_statistic, 150);
            assert_eq!(one.null_map_statistic.len(), 151);
            assert!(tfce.p_fwe.iter().all(|p| *p >= floor && *p <= 1.0));
            let tfce_max =
                tfce.map.iter().map(|v| if tail == Tail::Negative { -v } else { v.abs() }).fold(0.0, f64::max);
            assert!(relative_error(one.null_map_statistic[0], tfce_max) < 1e-12);
            for c in &one.clusters.as_ref().unwrap().clusters {
                assert!(c.p_fwe >= floor);
                assert!(tail == Tail::TwoSided || c.sign == -1);
            }
        }
    }
}

#[test]
fn bad_inputs_are_named() {
    let n = 6;
    let mut y = vec![1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 1.0, 0.0, 2.0, 1.0, 3.0, 2.0];
    y[9] = f64::NAN;
    let err = fit(&y, n, &Design::Paired, &settings(0), &no_progress).unwrap_err().to_string();
    assert!(err.contains("subject 3") && err.contains("voxel 1"), "{err}");
    y[9] = 1.0;
    let covariates = Covariates {
        names: vec!["age".into(), "age_months".into()],
        values: [[20.0, 30.0, 40.0, 25.0, 35.0, 45.0], [240.0, 360.0, 480.0, 300.0, 420.0, 540.0]].concat(),
    };
    let design = Design::TwoSample { group: vec![true, true, true, false, false, false], covariates };
    let err = fit(&y, n, &design, &settings(0), &no_progress).unwrap_err().to_string();
    assert!(err.contains("age_months"), "{err}");
    let design = Design::TwoSample { group: vec![true; 6], covariates: Covariates::none() };
    assert!(fit(&y, n, &design, &settings(0), &no_progress).unwrap_err().to_string().contains("both groups"));
    // A constant voxel is reported, not fatal.
    let mut y2 = y.clone();
    y2[6..].fill(3.0);
    let ok = fit(
        &y2,
        n,
        &Design::TwoSample { group: vec![true, false, true, false, true, false], covariates: Covariates::none() },
        &settings(9),
        &no_progress,
    )
    .unwrap();
    assert_eq!(ok.degenerate_voxels, 1);
    assert!(ok.t[1].is_nan() && ok.p_fwe[1].is_nan() && ok.t[0].is_finite());
}

/// Under the null, the family-wise false-positive rate of max-T, of cluster extent and of TFCE at
/// α = 0.05 is within binomial bounds (200 repetitions: 99.9% interval [2, 21] rejections), for
/// Freedman–Lane with covariates and for sign-flipping.
#[test]
fn null_family_wise_error_rate_is_calibrated() {
    let grid = Grid { shape: [10, 10, 5], affine: [[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]] };
    let mask = MaskedGrid::from_mask(grid.clone(), &vec![1.0; grid.len()]).unwrap();
    let n = 20;
    let repetitions = 200;
    for paired in [false, true] {
        let (mut voxel_hits, mut cluster_hits, mut tfce_hits) = (0, 0, 0);
        let tfce = Tfce::new(&mask, Connectivity::Corners26, TfceParams::default(), Tail::TwoSided).unwrap();
        let tfce_max = |t: &[f64]| tfce.maximum(t);
        for rep in 0..repetitions {
            let mut rng = Rng::derived(100, &format!("null/{paired}/{rep}"));
            // Spatially correlated noise: each voxel averages its own and its x-neighbour's draw.
            let raw: Vec<f64> = (0..n * mask.len()).map(|_| rng.normal()).collect();
            let y: Vec<f64> = (0..mask.len())
                .flat_map(|v| {
                    let u = if v % 10 == 9 { v } else { v + 1 };
                    let raw = &raw;
                    (0..n).map(move |i| raw[v * n + i] + 0.7 * raw[u * n + i])
                })
                .collect();
            let design = if paired {
                Design::Paired
            } else {
                Design::TwoSample {
                    group: (0..n).map(|i| i % 2 == 0).collect(),
                    covariates: Covariates {
                        names: vec!["age".into(), "sex".into()],
                        values: (0..n).map(|_| rng.normal()).chain((0..n).map(|i| (i % 3 == 0) as u8 as f64)).collect(),
                    },
                }
            };
            let settings = Settings {
                permutations: 199,
                seed: rep,
                tail: Tail::TwoSided,
                cluster: Some(ClusterSettings {
                    threshold: ClusterThreshold::P(0.01),
                    connectivity: Connectivity::Corners26,
                    mask: &mask,
                }),
                map_statistic: Some(&tfce_max),
            };
            let result = fit(&y, n, &design, &settings, &no_progress).unwrap();
            voxel_hits += usize::from(result.p_fwe.iter().any(|p| *p <= 0.05));
            cluster_hits += usize::from(result.clusters.unwrap().clusters.iter().any(|c| c.p_fwe <= 0.05));
            let tfce = tfce.infer(&result.t, &result.null_map_statistic, 199);
            tfce_hits += usize::from(tfce.p_fwe.iter().any(|p| *p <= 0.05));
        }
        eprintln!(
            "null FWE rate (paired = {paired}): max-T {voxel_hits}/{repetitions}, cluster {cluster_hits}/{repetitions}, \
             TFCE {tfce_hits}/{repetitions}"
        );
        assert!((2..=21).contains(&tfce_hits), "TFCE false positives {tfce_hits}/{repetitions}");
        assert!((2..=21).contains(&voxel_hits), "max-T false positives {voxel_hits}/{repetitions}");
        assert!((2..=21).contains(&cluster_hits), "cluster false positives {cluster_hits}/{repetitions}");
    }
}

/// With Gaussian errors the permutation distribution of t approximates Student's t: the
/// uncorrected permutation p of every voxel is close to the parametric p (Freedman–Lane with
/// covariates, and sign-flipping), and the max-T p is never below it.
#[test]
fn permutation_p_approximates_parametric_p() {
    let f = fixture();
    let n = f["n"].as_u64().unwrap() as usize;
    let covariates = Covariates {
        names: vec!["cov1".into(), "cov2".into()],
        values: [floats(&f["covariates"]["cov1"]), floats(&f["covariates"]["cov2"])].concat(),
    };
    let designs = [
        ("correlation", Design::Correlation { x: floats(&f["x"]), covariates }, voxel_major(&f["y"])),
        ("paired", Design::Paired, voxel_major(&f["diff"])),
    ];
    for (name, design, y) in &designs {
        let result = fit(y, n, design, &settings(3999), &no_progress).unwrap();
        let mut worst = 0.0f64;
        for v in 0..result.t.len() {
            worst = worst.max((result.p_perm[v] - result.p[v]).abs());
            assert!(result.p_fwe[v] >= result.p_perm[v]);
        }
        eprintln!("{name}: largest |p_perm − p| {worst}");
        assert!(worst < 0.04, "{name}: permutation and parametric p differ by {worst}");
    }
}
