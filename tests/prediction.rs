//! Cross-validated prediction (CPM and ridge): planted signals are found, the permutation test
//! is calibrated under the null, folds respect groups, and results do not depend on threads.

use neurospec::stats::predict::{self, Data, Model, Settings};
use neurospec::stats::rng::Rng;

struct Sim {
    n: usize,
    p: usize,
    x: Vec<f64>,
    confounds: Vec<f64>,
    y: Vec<f64>,
}

/// n subjects × p features; y = Σ effects·x + 0.5·confound + noise.
fn simulate(n: usize, p: usize, effects: &[(usize, f64)], seed: u64) -> Sim {
    let mut rng = Rng::new(seed);
    let x: Vec<f64> = (0..n * p).map(|_| rng.normal()).collect();
    let confounds: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let y = (0..n)
        .map(|i| effects.iter().map(|&(j, b)| b * x[j * n + i]).sum::<f64>() + 0.5 * confounds[i] + rng.normal())
        .collect();
    Sim { n, p, x, confounds, y }
}

impl Sim {
    fn data(&self) -> Data<'_> {
        Data { n: self.n, x: &self.x, p: self.p, confounds: &self.confounds, c: 1, y: &self.y }
    }
}

fn settings(permutations: usize) -> Settings {
    Settings {
        folds: 5,
        repeats: 2,
        seed: 1,
        cpm: true,
        cpm_p: 0.01,
        ridge: true,
        alphas: vec![0.1, 1.0, 10.0, 100.0, 1000.0],
        permutations,
        permutation_seed: 2,
        exchange: Default::default(),
    }
}

fn model(r: &predict::CvResult, m: Model) -> &predict::ModelResult {
    r.models.iter().find(|x| x.model == m).unwrap()
}

#[test]
fn planted_edges_are_selected_and_predicted() {
    let sim = simulate(240, 60, &[(3, 0.6), (7, -0.6)], 10);
    let result = predict::cross_validate(&sim.data(), None, &settings(99)).unwrap();
    assert_eq!(result.selected_positive[3], 1.0, "planted positive edge in every fold");
    assert_eq!(result.selected_negative[7], 1.0, "planted negative edge in every fold");
    let others = (0..60).filter(|&j| j != 3 && j != 7);
    let false_rate = others.map(|j| result.selected_positive[j] + result.selected_negative[j]).sum::<f64>() / 58.0;
    assert!(false_rate < 0.05, "null edges selected in {false_rate} of folds at p < 0.01");
    // True r of the best predictor: 0.6√2 / √(0.72 + 1) ≈ 0.65 (confound regressed out).
    // Ridge spreads weight over the 58 null features, so it predicts less well than CPM here.
    for (m, low) in [(Model::CpmCombined, 0.55), (Model::Ridge, 0.4)] {
        let r = model(&result, m);
        assert!(r.metrics.r > low && r.metrics.r < 0.75, "{m:?}: r = {}", r.metrics.r);
        assert!(r.metrics.r2 > 0.2, "{m:?}: R² = {}", r.metrics.r2);
        assert!((r.p_r - 0.01).abs() < 1e-12 && (r.p_mae - 0.01).abs() < 1e-12, "{m:?}: p = {}", r.p_r);
    }
    // Each single network carries one edge.
    assert!(model(&result, Model::CpmPositive).metrics.r > 0.3);
    assert!(model(&result, Model::CpmNegative).metrics.r > 0.3);
    assert!(result.ridge_weight[3] > 0.3 && result.ridge_weight[7] < -0.3, "{:?}", &result.ridge_weight[..8]);
}

#[test]
fn held_out_r_lies_in_the_interval_of_the_planted_effect() {
    let train = simulate(400, 40, &[(0, 0.5), (1, 0.5)], 20);
    let test = simulate(200, 40, &[(0, 0.5), (1, 0.5)], 21);
    let held_out = predict::train_and_test(&train.data(), &test.data(), &settings(0), 0.95).unwrap();
    assert_eq!(held_out.targets.len(), 200);
    assert!(held_out.alpha.is_some());
    // Population r of the oracle predictor: √0.5 / √1.5 = 0.577.
    let rho: f64 = (0.5f64 / 1.5).sqrt();
    let ((lo, hi), _) = predict::r_interval(rho, 200, 0.99);
    for r in held_out.results.iter().filter(|r| matches!(r.model, Model::CpmPositive | Model::Ridge)) {
        assert!(r.metrics.r > lo && r.metrics.r < hi, "{:?}: {} outside [{lo}, {hi}]", r.model, r.metrics.r);
        assert!(r.r_ci.0 < rho && rho < r.r_ci.1, "{:?}: CI {:?} misses {rho}", r.model, r.r_ci);
        assert!(r.p < 1e-10);
    }
}

/// Under the null the permutation p-value is uniform: over 200 data sets, P(p < 0.05) stays
/// within binomial bounds, and the cross-validated r is centred near 0.
#[test]
fn null_permutation_test_is_calibrated() {
    let reps = 200;
    let mut s = settings(99);
    s.repeats = 1;
    let outcomes: Vec<(f64, f64, f64)> = (0..reps)
        .map(|rep| {
            let sim = simulate(60, 20, &[], 1000 + rep as u64);
            s.seed = rep as u64;
            s.permutation_seed = 10_000 + rep as u64;
            let r = predict::cross_validate(&sim.data(), None, &s).unwrap();
            (model(&r, Model::CpmCombined).p_r, model(&r, Model::Ridge).p_r, model(&r, Model::Ridge).metrics.r)
        })
        .collect();
    // Binomial(200, 0.05): mean 10, SD 3.1; ±3.2 SD.
    for (name, hits) in [
        ("cpm", outcomes.iter().filter(|o| o.0 < 0.05).count()),
        ("ridge", outcomes.iter().filter(|o| o.1 < 0.05).count()),
    ] {
        assert!((1..=20).contains(&hits), "{name}: {hits}/200 null p-values < 0.05");
    }
    let mean_r = outcomes.iter().map(|o| o.2).sum::<f64>() / reps as f64;
    let sd = (outcomes.iter().map(|o| (o.2 - mean_r).powi(2)).sum::<f64>() / (reps as f64 - 1.0)).sqrt();
    // Cross-validated r under the null is known to be slightly negative (here −0.055 with SD 0.17);
    // it must be near 0.
    assert!(mean_r.abs() < 0.1 && mean_r.abs() < 4.0 * sd / (reps as f64).sqrt() + 0.05, "mean null r {mean_r}");
}

#[test]
fn grouped_folds_keep_families_together_and_any_n_works() {
    let mut rng = Rng::new(3);
    let groups: Vec<String> = (0..103).map(|i| format!("fam{}", i / 3 + (i % 7 == 0) as usize)).collect();
    let folds = predict::assign_folds(103, 10, Some(&groups), &mut rng);
    for (i, g) in groups.iter().enumerate() {
        for (j, h) in groups.iter().enumerate() {
            if g == h {
                assert_eq!(folds[i], folds[j], "{g} straddles folds");
            }
        }
    }
    let sizes: Vec<usize> = (0..10).map(|f| folds.iter().filter(|&&x| x == f).count()).collect();
    assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 4, "{sizes:?}");
    let plain = predict::assign_folds(103, 10, None, &mut Rng::new(4));
    let sizes: Vec<usize> = (0..10).map(|f| plain.iter().filter(|&&x| x == f).count()).collect();
    assert!(sizes.iter().all(|&s| s == 10 || s == 11), "{sizes:?}");
}

#[test]
fn too_few_subjects_for_the_folds_is_an_error() {
    let sim = simulate(15, 5, &[], 1);
    let mut s = settings(0);
    s.folds = 10;
    let err = predict::cross_validate(&sim.data(), None, &s).unwrap_err();
    assert_eq!(err, "15 subjects are too few for 10-fold cross-validation (need at least 20)");
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let sim = simulate(90, 30, &[(1, 0.5)], 5);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| predict::cross_validate(&sim.data(), None, &settings(40)).unwrap())
    };
    let (a, b) = (run(1), run(2));
    for (x, y) in a.models.iter().zip(&b.models) {
        assert_eq!(x.metrics.r.to_bits(), y.metrics.r.to_bits());
        assert_eq!(
            x.null_r.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            y.null_r.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(x.predictions, y.predictions);
    }
    assert_eq!(a.selected_positive, b.selected_positive);
}
