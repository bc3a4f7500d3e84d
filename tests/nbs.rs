//! The network-based statistic (neurospec::stats::nbs) against bctpy 0.6.1's `nbs_bct` on a
//! committed fixture (tests/fixtures/nbs, made by make_fixture.py).

use neurospec::stats::nbs::{Nbs, NbsStatistic};
use neurospec::stats::voxelwise::{Covariates, Design, Settings, Tail, fit};
use serde_json::Value;

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nbs/fixture.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

/// The same square graph, the same two-sample t (x − y, pooled variance: our Freedman–Lane model
/// with an intercept only gives exactly that t, and permuting its residuals is permuting the
/// labels), the same threshold (|t| > 2.5): the observed components must be identical — the same
/// edges, the same sizes. The p-values come from independent random relabellings (bctpy's 20,000
/// and our 19,999 plus the identity), so they agree only within Monte Carlo error: each estimates
/// the same exact permutation p with SD √(p(1 − p)/20,000) ≤ 0.0036, so the difference has SD
/// ≤ 0.0051 and we allow 0.025 (about 5 SD), plus 1/20,000 because bctpy does not count the
/// observed labelling.
#[test]
fn components_and_p_values_match_bctpy() {
    let f = fixture();
    let (x, y) = (rows(&f["x"]), rows(&f["y"]));
    let edges: Vec<(String, String)> = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (format!("r{}", e[0].as_u64().unwrap()), format!("r{}", e[1].as_u64().unwrap())))
        .collect();
    let n = x.len() + y.len();
    let mut data = vec![0.0; edges.len() * n];
    for (e, _) in edges.iter().enumerate() {
        for (i, subject) in x.iter().chain(&y).enumerate() {
            data[e * n + i] = subject[e];
        }
    }
    let group: Vec<bool> = (0..n).map(|i| i < x.len()).collect();
    let design = Design::TwoSample { group, covariates: Covariates::none() };
    let nbs = Nbs::new(&edges, f["threshold"].as_f64().unwrap(), NbsStatistic::Size, Tail::TwoSided);
    let largest = |t: &[f64]| nbs.maximum(t);
    let permutations = 19_999;
    let settings =
        Settings { permutations, seed: 5, tail: Tail::TwoSided, cluster: None, map_statistic: Some(&largest) };
    let result = fit(&data, n, &design, &settings, &|_| {}).unwrap();
    let ours = nbs.infer(&result.t, &result.null_map_statistic, permutations);
    let mut theirs: Vec<(Vec<usize>, usize, f64)> = f["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let edges = c["edges"].as_array().unwrap().iter().map(|e| e.as_u64().unwrap() as usize).collect();
            (edges, c["size"].as_u64().unwrap() as usize, c["p"].as_f64().unwrap())
        })
        .collect();
    theirs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0[0].cmp(&b.0[0])));
    assert_eq!(ours.len(), theirs.len(), "{ours:?}");
    for (c, (edges, size, p)) in ours.iter().zip(&theirs) {
        assert_eq!(&c.edges, edges);
        assert_eq!(c.statistic, *size as f64);
        let d = (c.p_fwe - p).abs();
        eprintln!("component of {size} edges: p_FWE {} (bctpy {p}), |Δ| {d:.4}", c.p_fwe);
        assert!(d <= 0.025 + 1.0 / 20_000.0, "size {size}: p {} vs bctpy {p}", c.p_fwe);
    }
    assert!(ours[0].p_fwe < 0.001 && ours.iter().any(|c| c.p_fwe > 0.3), "one strong and one chance component");
}

/// Intensity sums the tail statistics of a component's edges; a bipartite (seed × target) graph
/// joins components only through shared regions.
#[test]
fn intensity_and_bipartite_components() {
    let edges: Vec<(String, String)> = [("s1", "a"), ("s1", "b"), ("s2", "b"), ("s2", "c"), ("s3", "d")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let t = [3.5, -4.0, 3.2, 1.0, 5.0];
    let size = Nbs::new(&edges, 3.0, NbsStatistic::Size, Tail::TwoSided).components(&t);
    let sizes: Vec<(Vec<usize>, f64, usize)> = size.iter().map(|c| (c.edges.clone(), c.statistic, c.nodes)).collect();
    assert_eq!(sizes, vec![(vec![0, 1, 2], 3.0, 4), (vec![4], 1.0, 2)]);
    let intensity = Nbs::new(&edges, 3.0, NbsStatistic::Intensity, Tail::TwoSided).components(&t);
    assert_eq!(intensity[0].statistic, 10.7);
    let positive = Nbs::new(&edges, 3.0, NbsStatistic::Size, Tail::Positive).components(&t);
    let kept: Vec<Vec<usize>> = positive.iter().map(|c| c.edges.clone()).collect();
    assert_eq!(kept, vec![vec![0], vec![2], vec![4]]);
}
