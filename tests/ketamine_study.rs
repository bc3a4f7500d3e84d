//! The ketamine-amygdala study end to end on its simulated cohort: sessions paired per subject,
//! derived response, the planted left laterobasal → precuneus effect found voxelwise with
//! family-wise error control at its location (responders > non-responders before treatment,
//! a decrease after it, a correlation with symptom change), and the ROC of the chosen edge
//! flagged circular with a cross-validated AUC beside it.

mod common;

use common::*;

#[test]
fn the_planted_cluster_is_found_at_its_location_with_fwe_control() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("studies/ketamine-amygdala.toml")).unwrap();
    // Test size: 999 permutations instead of 5,000.
    let text = text.replace("permutations = 5000", "permutations = 999");
    std::fs::write(dir.path().join("study.toml"), text).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/ketamine-amygdala");
    common::bids::check_folder(&out, Some("MNI152NLin2009cAsym"));
    // Group maps keep the mask's xform code (the simulator writes 2, "aligned").
    let (tmap, _) = neurospec::imaging::nifti::read_3d(&out.join("group/responders_pre_stat-t.nii.gz")).unwrap();
    let mask = dir.path().join("data/ketamine-response/brain_mask.nii.gz");
    assert_eq!(tmap.xform_code, neurospec::imaging::nifti::read_3d(&mask).unwrap().0.xform_code);
    let planted = Tsv::read(&dir.path().join("data/ketamine-response/truth/planted.tsv"));
    let planted_voxels: Vec<[usize; 3]> = planted.rows[0][planted.col("voxels_ijk")]
        .split(';')
        .map(|v| {
            let c: Vec<usize> = v.split(',').map(|x| x.parse().unwrap()).collect();
            [c[0], c[1], c[2]]
        })
        .collect();
    for (analysis, sign) in [("responders_pre", "+"), ("post_vs_pre", "-"), ("change_pre", "+")] {
        let clusters = Tsv::read(&out.join(format!("group/{analysis}_clusters.tsv")));
        assert!(!clusters.rows.is_empty(), "{analysis}: no cluster");
        // The most significant cluster is the planted one: right sign, FWE p < 0.05, its peak
        // inside the planted voxels, labelled precuneus.
        let best = (0..clusters.rows.len())
            .min_by(|&a, &b| clusters.num(a, "p_fwe").total_cmp(&clusters.num(b, "p_fwe")))
            .unwrap();
        let peak = [
            clusters.num(best, "peak_i") as usize,
            clusters.num(best, "peak_j") as usize,
            clusters.num(best, "peak_k") as usize,
        ];
        assert!(clusters.num(best, "p_fwe") < 0.05, "{analysis}: cluster p_FWE {}", clusters.num(best, "p_fwe"));
        assert_eq!(clusters.rows[best][clusters.col("sign")], sign, "{analysis}");
        assert!(planted_voxels.contains(&peak), "{analysis}: peak {peak:?} outside the planted cluster");
        assert_eq!(clusters.rows[best][clusters.col("label")], "precuneus", "{analysis}");
        // Every other cluster is not significant: the null regions stay null.
        for r in (0..clusters.rows.len()).filter(|&r| r != best) {
            assert!(
                clusters.num(r, "p_fwe") >= 0.05,
                "{analysis}: a second significant cluster {:?}",
                clusters.rows[r]
            );
        }
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("group/post_vs_pre_summary.json")).unwrap()).unwrap();
    assert_eq!(summary["subjects"], 49);
    assert_eq!(summary["permutations"], 999);

    // Each subject's seed-to-voxel map per session is published as NIfTI on the BOLD grid.
    for session in ["pre", "post"] {
        let map = out.join(format!(
            "sub-K01/ses-{session}/func/sub-K01_ses-{session}_task-rest_space-MNI152NLin2009cAsym_seed-LBleft_desc-fisherz_map.nii.gz"
        ));
        let (header, values) = neurospec::imaging::nifti::read_3d(&map).unwrap();
        assert_eq!(header.shape3(), [20, 24, 20]);
        assert!(values.iter().filter(|v| **v != 0.0).count() > 4000, "{session}: the map covers the mask");
    }

    let roc = Tsv::read(&out.join("roc/lb_precuneus.tsv"));
    assert_eq!(roc.rows.len(), 2);
    assert_eq!(roc.rows[0][roc.col("evaluation")], "in-sample");
    assert_eq!(roc.rows[0][roc.col("circular")], "TRUE");
    assert_eq!(roc.rows[1][roc.col("evaluation")], "cross-validated");
    assert_eq!(roc.rows[1][roc.col("circular")], "FALSE");
    let (in_sample, cv) = (roc.num(0, "auc"), roc.num(1, "auc"));
    assert!(in_sample > 0.65 && roc.num(0, "p_perm") < 0.05, "in-sample AUC {in_sample}");
    assert!(cv <= in_sample, "cross-validated AUC {cv} above the circular {in_sample}");

    // The value taken from the voxelwise cluster: circular in-sample, refitted per fold.
    let roc = Tsv::read(&out.join("roc/lb_cluster.tsv"));
    assert_eq!(roc.rows.len(), 2);
    assert_eq!(roc.rows[0][roc.col("circular")], "TRUE");
    assert!(roc.rows[0][roc.col("value")].contains("largest cluster of `responders_pre`"), "{:?}", roc.rows[0]);
    assert_eq!(roc.rows[1][roc.col("evaluation")], "cross-validated");
    let (in_sample, cv) = (roc.num(0, "auc"), roc.num(1, "auc"));
    assert!(in_sample > 0.7, "in-sample cluster AUC {in_sample}");
    assert!(cv < in_sample, "cross-validated cluster AUC {cv} not below the circular {in_sample}");
}
