//! Exchangeability blocks (PALM's `-eb` with `-within` / `-whole`): exact consequences through
//! the whole pipeline, located errors for bad blocks, and null calibration with family-correlated
//! data (free permutation inflated, blocked permutation calibrated).

mod common;

use common::*;
use neurospec::stats::association::{self, Input, PermutationScheme, Settings};
use neurospec::stats::exchange::{BlockPermutation, Exchange};
use neurospec::stats::rng::Rng;
use neurospec::stats::voxelwise::{self, Covariates, Design, Tail};

/// 40 families of 2: `fam_x`, `fam_y`, `fam_label` and `age` are constant within a family (a
/// covariate that varies within families would make the Freedman–Lane residuals of `fam_x` vary
/// too); `x`, `y` vary freely. Families are listed in shuffled order so blocks are not contiguous rows.
fn family_table(dir: &std::path::Path) {
    let mut rng = Rng::new(11);
    let mut rows = Vec::new();
    for f in 0..40 {
        let (fx, fy, age) = (rng.normal(), rng.normal(), rng.uniform() * 40.0 + 20.0);
        let label = usize::from(rng.uniform() < 0.5);
        for j in 0..2 {
            rows.push(format!(
                "sub-{f:02}{j}\tF{f}\t{fx}\t{fy}\t{label}\t{}\t{}\t{age}",
                rng.normal(),
                fy + 0.3 * fx + rng.normal(),
            ));
        }
    }
    let order = Rng::new(5).permutation(rows.len());
    let mut text = String::from("participant_id\tfamily_id\tfam_x\tfam_y\tfam_label\tx\ty\tage\n");
    for i in order {
        text.push_str(&rows[i as usize]);
        text.push('\n');
    }
    std::fs::write(dir.join("families.tsv"), text).unwrap();
}

const STUDY: &str = r#"
[study]
name = "blocks"
seed = 3
subject_id = "participant_id"

[tables.families]
path = "families.tsv"

[features]
f = ["fam_x", "x"]

[association]
outcomes = ["y"]
covariates = ["age"]
permutations = 999
permutation_blocks = "family_id"

[prediction]
outcomes = ["fam_y"]
features = ["f"]
models = ["ridge"]
folds = 5
repeats = 1
group_column = "family_id"
permutations = 99
permutation_blocks = "family_id"

[roc.fam]
value = "x"
label = "fam_label"
folds = 5
bootstrap = 0
permutations = 199
permutation_blocks = "family_id"
"#;

/// A feature constant within families cannot change under within-family permutation: its
/// permutation p is exactly 1, while a free feature's is not; the same holds for a prediction
/// outcome and ROC labels that are constant within families.
#[test]
fn within_block_permutation_has_exact_consequences() {
    let dir = tempfile::tempdir().unwrap();
    family_table(dir.path());
    std::fs::write(dir.path().join("study.toml"), STUDY).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let out = dir.path().join("derivatives/blocks");
    let stats = Tsv::read(&out.join("association/all.tsv"));
    let p_of = |feature: &str| {
        let r = (0..stats.rows.len()).find(|&r| stats.text(r, "feature") == feature).unwrap();
        stats.num(r, "p_perm")
    };
    assert_eq!(p_of("fam_x"), 1.0, "constant within blocks");
    assert!(p_of("x") < 1.0);
    let metrics = Tsv::read(&out.join("prediction/fam_y_metrics.tsv"));
    assert_eq!(metrics.num(0, "p_r"), 1.0, "the outcome is constant within blocks");
    let auc = Tsv::read(&out.join("roc/fam.tsv"));
    let in_sample = (0..auc.rows.len()).find(|&r| auc.text(r, "evaluation") == "in-sample").unwrap();
    assert_eq!(auc.num(in_sample, "p_perm"), 1.0, "labels are constant within blocks");

    // Without blocks the same study's p values are not all 1.
    let free = STUDY.replace("permutation_blocks = \"family_id\"\n", "");
    std::fs::write(dir.path().join("study.toml"), free).unwrap();
    run_json(dir.path(), "study.toml", &[]);
    let stats = Tsv::read(&out.join("association/all.tsv"));
    let r = (0..stats.rows.len()).find(|&r| stats.text(r, "feature") == "fam_x").unwrap();
    assert!(stats.num(r, "p_perm") < 1.0);
}

fn check_stderr(dir: &std::path::Path, study: &str) -> String {
    std::fs::write(dir.join("study.toml"), study).unwrap();
    let out = neurospec(dir, &["check", "study.toml"]);
    assert!(!out.status.success(), "check passed:\n{study}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn bad_blocks_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    family_table(dir.path());
    // A family of 3 makes `whole` impossible; the error names the blocks and sizes.
    let text = std::fs::read_to_string(dir.path().join("families.tsv")).unwrap();
    std::fs::write(dir.path().join("families.tsv"), format!("{text}sub-999\tF7\t0\t0\t0\t0\t0\t30\n")).unwrap();
    let whole = STUDY.replacen(
        "permutation_blocks = \"family_id\"\n",
        "permutation_blocks = \"family_id\"\nblock_permutation = \"whole\"\n",
        1,
    );
    let e = check_stderr(dir.path(), &whole);
    assert!(
        e.contains("`whole` block permutation needs blocks of equal size") && e.contains("block `F7` has 3"),
        "{e}"
    );
    // A subject without a family.
    std::fs::write(dir.path().join("families.tsv"), format!("{text}sub-999\t\t0\t0\t0\t0\t0\t30\n")).unwrap();
    let e = check_stderr(dir.path(), STUDY);
    assert!(e.contains("subject 999 has no block label"), "{e}");
    // Unknown column, and a mode without blocks.
    family_table(dir.path());
    let e = check_stderr(
        dir.path(),
        &STUDY.replacen("permutation_blocks = \"family_id\"", "permutation_blocks = \"familyid\"", 1),
    );
    assert!(e.contains("familyid") && e.contains("family_id"), "did-you-mean: {e}");
    let e = check_stderr(
        dir.path(),
        &STUDY.replacen("permutation_blocks = \"family_id\"", "block_permutation = \"whole\"", 1),
    );
    assert!(e.contains("`block_permutation` needs `permutation_blocks`"), "{e}");
}

/// Null data in families of two with strong shared family components in both the feature and
/// the outcome (ICC 0.8): under free permutation the false-positive rate at α = 0.05 is inflated
/// (expected ≈ 0.12); within-family and whole-family permutation keep it in the binomial band.
#[test]
fn blocks_calibrate_family_correlated_nulls() {
    let (families, datasets, permutations) = (30, 600, 199);
    let n = 2 * families;
    let labels: Vec<Option<String>> = (0..n).map(|i| Some(format!("F{}", i / 2))).collect();
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let schemes = [
        ("free", Exchange::Free),
        ("within", Exchange::from_labels(&labels, &ids, BlockPermutation::Within).unwrap()),
        ("whole", Exchange::from_labels(&labels, &ids, BlockPermutation::Whole).unwrap()),
    ];
    let mut rejections = [0usize; 3];
    let mut rng = Rng::new(2026);
    let family_part = |rng: &mut Rng| -> Vec<f64> {
        let shared: Vec<f64> = (0..families).map(|_| rng.normal()).collect();
        (0..n).map(|i| 0.8f64.sqrt() * shared[i / 2] + 0.2f64.sqrt() * rng.normal()).collect()
    };
    let names = vec!["x".to_string()];
    for d in 0..datasets {
        let x = family_part(&mut rng);
        let y = family_part(&mut rng);
        for (s, (_, exchange)) in schemes.iter().enumerate() {
            let input = Input { y: &y, features: &x, feature_names: &names, covariates: &[], covariate_names: &[] };
            let settings = Settings {
                permutations,
                scheme: PermutationScheme::FreedmanLane,
                permutation_seed: d as u64,
                bootstrap: 0,
                bootstrap_seed: 0,
                region_means: Vec::new(),
                ci_level: 0.95,
                exchange: exchange.clone(),
            };
            let stats = association::associate(&input, &settings, &|_| {}).unwrap();
            rejections[s] += usize::from(stats[0].p_perm <= 0.05);
        }
    }
    let rate = |s: usize| rejections[s] as f64 / datasets as f64;
    // Binomial band for 600 tests at 0.05: ± 3 SD ≈ ± 0.027.
    eprintln!("false-positive rates: free {:.3}, within {:.3}, whole {:.3}", rate(0), rate(1), rate(2));
    assert!(rate(0) > 0.08, "free permutation should be inflated here: {}", rate(0));
    for s in [1, 2] {
        assert!((0.023..=0.077).contains(&rate(s)), "{}: {}", schemes[s].0, rate(s));
    }
}

/// Voxelwise: a regressor constant within blocks is unchanged by within-block permutation, so
/// every permutation reproduces the observed maximum and every p_FWE is exactly 1.
#[test]
fn voxelwise_within_blocks_is_exact() {
    let (n, voxels) = (24, 50);
    let mut rng = Rng::new(4);
    let family: Vec<f64> = (0..n / 2).map(|_| rng.normal()).collect();
    let x: Vec<f64> = (0..n).map(|i| family[i / 2]).collect();
    let y: Vec<f64> = (0..n * voxels).map(|k| 0.5 * x[k % n] + rng.normal()).collect();
    let labels: Vec<Option<String>> = (0..n).map(|i| Some((i / 2).to_string())).collect();
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let within = Exchange::from_labels(&labels, &ids, BlockPermutation::Within).unwrap();
    let design = Design::Correlation { x, covariates: Covariates::none() };
    let settings =
        voxelwise::Settings { permutations: 99, seed: 1, tail: Tail::TwoSided, cluster: None, map_statistic: None };
    let blocked = voxelwise::fit_blocked(&y, n, &design, &settings, &within, &|_| {}).unwrap();
    assert!(blocked.p_fwe.iter().all(|&p| p == 1.0), "{:?}", &blocked.p_fwe[..5]);
    let free = voxelwise::fit(&y, n, &design, &settings, &|_| {}).unwrap();
    assert!(free.p_fwe.iter().any(|&p| p < 0.05));
    assert_eq!(free.t, blocked.t, "blocks change the null, not the statistic");
}
