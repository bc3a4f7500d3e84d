//! de Lange et al.'s additions to the association design, at the level of the statistics:
//! region means of edge β with the shared permutations, and paired bootstrap resamples across
//! outcomes (the basis of the between-outcome difference CIs).

use neurospec::stats::association::{self, Input, PermutationScheme, RegionEdges, Settings};
use neurospec::stats::exchange::{BlockPermutation, Exchange};
use neurospec::stats::rng::Rng;

/// The edges of a complete graph on `regions` nodes: (a, b) for a < b, and each node's edges.
fn complete_graph(regions: usize) -> (Vec<(usize, usize)>, Vec<RegionEdges>) {
    let edges: Vec<(usize, usize)> = (0..regions).flat_map(|a| (a + 1..regions).map(move |b| (a, b))).collect();
    let members = (0..regions)
        .map(|r| RegionEdges {
            name: format!("n{r}"),
            features: (0..edges.len()).filter(|&j| edges[j].0 == r || edges[j].1 == r).collect(),
        })
        .collect();
    (edges, members)
}

fn settings(permutations: usize, bootstrap: usize, regions: Vec<RegionEdges>, exchange: Exchange) -> Settings {
    Settings {
        permutations,
        scheme: PermutationScheme::FreedmanLane,
        permutation_seed: 7,
        bootstrap,
        bootstrap_seed: 8,
        ci_level: 0.95,
        exchange,
        region_means: regions,
    }
}

/// A region whose every edge carries the effect is found (smallest p_FWE, below 0.01); every
/// region's mean β is exactly the mean of its edges' β in the feature results.
#[test]
fn region_means_find_a_planted_region_and_average_edge_betas() {
    let (n, regions) = (300, 8);
    let (edges, members) = complete_graph(regions);
    let mut rng = Rng::new(3);
    let y: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let age: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mut x = Vec::new();
    for &(a, _) in &edges {
        let effect = if a == 0 { 0.2 } else { 0.0 };
        x.extend((0..n).map(|i| effect * y[i] + 0.1 * age[i] + rng.normal()));
    }
    let names: Vec<String> = edges.iter().map(|(a, b)| format!("fc_n{a}_n{b}")).collect();
    let input =
        Input { y: &y, features: &x, feature_names: &names, covariates: &age, covariate_names: &["age".to_string()] };
    let result =
        association::associate_all(&input, &settings(999, 0, members.clone(), Exchange::Free), &|_| {}).unwrap();
    assert_eq!(result.regions.len(), regions);
    for (region, stats) in members.iter().zip(&result.regions) {
        let mean = region.features.iter().map(|&j| result.features[j].beta).sum::<f64>() / region.features.len() as f64;
        assert_eq!(stats.mean_beta, mean, "{}", region.name);
        assert_eq!(stats.edges, regions - 1);
        assert!(stats.p_perm <= stats.p_fwe, "{}: p_perm {} > p_fwe {}", region.name, stats.p_perm, stats.p_fwe);
    }
    let planted = &result.regions[0];
    assert!(planted.p_fwe < 0.01, "planted region p_FWE {}", planted.p_fwe);
    assert!(result.regions[1..].iter().all(|r| r.p_fwe > planted.p_fwe));
    // Regions far from the planted one (an edge or fewer of it among 7) stay unremarkable on average.
    let others: f64 = result.regions[1..].iter().map(|r| r.p_perm).sum::<f64>() / (regions - 1) as f64;
    assert!(others > 0.05, "mean p_perm of the other regions {others}");
}

/// An outcome and covariates constant within families, permuted within families: no permutation
/// changes the outcome, so every region's p_perm and p_FWE is exactly 1.
#[test]
fn region_means_within_blocks_are_exact() {
    let (families, regions) = (30, 5);
    let n = 2 * families;
    let (edges, members) = complete_graph(regions);
    let mut rng = Rng::new(9);
    let family: Vec<f64> = (0..families).map(|_| rng.normal()).collect();
    let y: Vec<f64> = (0..n).map(|i| family[i / 2]).collect();
    let x: Vec<f64> = (0..edges.len() * n).map(|k| 0.3 * y[k % n] + rng.normal()).collect();
    let names: Vec<String> = (0..edges.len()).map(|j| format!("e{j}")).collect();
    let labels: Vec<Option<String>> = (0..n).map(|i| Some(format!("F{}", i / 2))).collect();
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let within = Exchange::from_labels(&labels, &ids, BlockPermutation::Within).unwrap();
    let input = Input { y: &y, features: &x, feature_names: &names, covariates: &[], covariate_names: &[] };
    let result = association::associate_all(&input, &settings(199, 0, members, within), &|_| {}).unwrap();
    for r in &result.regions {
        assert_eq!((r.p_perm, r.p_fwe), (1.0, 1.0), "{}", r.name);
    }
}

/// Resample b of two different outcomes of one sample draws the same subjects: each outcome's
/// resampled β equals a weighted least-squares fit with the weights of resample b (recomputed
/// here from scratch), so β_a(b) − β_b(b) is a paired difference.
#[test]
fn bootstrap_resamples_are_paired_across_outcomes() {
    let n = 80;
    let mut rng = Rng::new(21);
    let age: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let outcomes: Vec<Vec<f64>> =
        (0..2).map(|k| (0..n).map(|i| 0.3 * (k as f64 + 1.0) * x[i] + 0.2 * age[i] + rng.normal()).collect()).collect();
    let names = vec!["x".to_string()];
    let fits: Vec<association::Association> = outcomes
        .iter()
        .map(|y| {
            let input = Input {
                y,
                features: &x,
                feature_names: &names,
                covariates: &age,
                covariate_names: &["age".to_string()],
            };
            association::associate_all(&input, &settings(0, 200, Vec::new(), Exchange::Free), &|_| {}).unwrap()
        })
        .collect();
    for b in 0..10 {
        let w = association::bootstrap_weights(8, b, n);
        for (y, fit) in outcomes.iter().zip(&fits) {
            let expected = weighted_standardised_beta(&w, y, &x, &age);
            let got = fit.bootstrap[b].as_ref().expect("resample kept")[0];
            assert!((got - expected).abs() < 1e-10, "resample {b}: {got} vs {expected}");
        }
    }
}

/// β of z-scored x in y ~ 1 + x + age fitted with integer weights `w`, x and y standardised with
/// the weighted mean and SD (as duplicating rows would).
fn weighted_standardised_beta(w: &[f64], y: &[f64], x: &[f64], age: &[f64]) -> f64 {
    let total: f64 = w.iter().sum();
    let standardise = |v: &[f64]| -> Vec<f64> {
        let mean = v.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / total;
        let var = v.iter().zip(w).map(|(a, b)| b * (a - mean).powi(2)).sum::<f64>() / (total - 1.0);
        v.iter().map(|a| (a - mean) / var.sqrt()).collect()
    };
    let (ys, xs) = (standardise(y), standardise(x));
    // Normal equations for [1, x, age].
    let cols = [vec![1.0; y.len()], xs, age.to_vec()];
    let mut g = [[0.0; 3]; 3];
    let mut v = [0.0; 3];
    for i in 0..3 {
        for j in 0..3 {
            g[i][j] = (0..y.len()).map(|r| w[r] * cols[i][r] * cols[j][r]).sum();
        }
        v[i] = (0..y.len()).map(|r| w[r] * cols[i][r] * ys[r]).sum();
    }
    solve3(g, v)[1]
}

#[allow(clippy::needless_range_loop)] // Gaussian elimination reads clearest with indices.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> [f64; 3] {
    for c in 0..3 {
        let pivot = (c..3).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        a.swap(c, pivot);
        b.swap(c, pivot);
        for r in c + 1..3 {
            let f = a[r][c] / a[c][c];
            for k in c..3 {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; 3];
    for r in (0..3).rev() {
        x[r] = (b[r] - (r + 1..3).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
    }
    x
}
