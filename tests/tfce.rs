//! TFCE (neurospec::stats::tfce) against nilearn 0.14.1's `calculate_tfce` on a committed
//! fixture (tests/fixtures/tfce, made by make_fixture.py with the versions in its
//! requirements.txt), and against a direct labelling per threshold.

use neurospec::imaging::regions::Grid;
use neurospec::stats::tfce::{Adjacency, Lattice, MaxScratch, Scratch, Tfce, TfceParams, tfce_map, tfce_maximum};
use neurospec::stats::voxelwise::Tail;
use neurospec::stats::voxelwise::{Connectivity, MaskedGrid};
use serde_json::Value;

fn fixture() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfce/fixture.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn mask(f: &Value) -> MaskedGrid {
    let shape: Vec<usize> = f["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let grid = Grid {
        shape: [shape[0], shape[1], shape[2]],
        affine: [[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]],
    };
    let mut values = vec![0.0; grid.len()];
    for v in f["mask_flat_indices"].as_array().unwrap() {
        values[v.as_u64().unwrap() as usize] = 1.0;
    }
    MaskedGrid::from_mask(grid, &values).unwrap()
}

fn ours(t: &[f64], mask: &MaskedGrid, connectivity: Connectivity, two_sided: bool, params: TfceParams) -> Vec<f64> {
    let adjacency = Adjacency::build(mask, connectivity).unwrap();
    let mut scratch = Scratch::new(t.len());
    let mut out = vec![0.0; t.len()];
    tfce_map(t, two_sided, params, &adjacency, &mut scratch, &mut out);
    out
}

/// Largest |ours − theirs| relative to the map's largest |value|.
fn relative_max_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// The maps agree to 1e-12 of the map's maximum. They cannot agree bit for bit: nilearn adds each
/// threshold's e^E h^H to every voxel in threshold order, we add a component's contribution over
/// all the thresholds at which it kept its size at once (a difference of prefix sums of h^H), so
/// the same terms are rounded in a different order; the difference is a few ulps of the sum.
#[test]
fn tfce_matches_nilearn() {
    let f = fixture();
    let t = floats(&f["t"]);
    let mask = mask(&f);
    assert_eq!(t.len(), mask.len());
    let mut checked = 0;
    for (name, connectivity) in
        [("6", Connectivity::Faces6), ("18", Connectivity::Edges18), ("26", Connectivity::Corners26)]
    {
        for (side, two_sided) in [("two_sided", true), ("one_sided", false)] {
            let theirs = floats(&f["tfce"][format!("c{name}_{side}")]);
            let got = ours(&t, &mask, connectivity, two_sided, TfceParams::default());
            let d = relative_max_diff(&got, &theirs);
            eprintln!("{name}-connectivity, {side}: max relative difference {d:.1e}");
            assert!(d < 1e-12, "{name} {side}: {d:e}");
            // Not a trivial map: both signs and many distinct values.
            assert!(theirs.iter().any(|v| *v > 0.0) && (!two_sided || theirs.iter().any(|v| *v < 0.0)));
            checked += 1;
        }
    }
    let theirs = floats(&f["tfce"]["c26_two_sided_e0.6_h1.5"]);
    let got = ours(&t, &mask, Connectivity::Corners26, true, TfceParams { e: 0.6, h: 1.5, steps: 100 });
    assert!(relative_max_diff(&got, &theirs) < 1e-12);
    assert_eq!(checked, 6);
}

/// Direct definition: label the supra-threshold voxels at every threshold by flood fill.
fn brute_force(t: &[f64], mask: &MaskedGrid, connectivity: Connectivity, params: TfceParams) -> Vec<f64> {
    let reach = match connectivity {
        Connectivity::Faces6 => 1,
        Connectivity::Edges18 => 2,
        Connectivity::Corners26 => 3,
    };
    let touching = |a: usize, b: usize| {
        let (p, q) = (mask.ijk(a), mask.ijk(b));
        let d: Vec<i64> = (0..3).map(|x| (p[x] as i64 - q[x] as i64).abs()).collect();
        d.iter().all(|v| *v <= 1) && d.iter().sum::<i64>() <= reach && a != b
    };
    let top = t.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut out = vec![0.0; t.len()];
    for sign in [1.0, -1.0] {
        for i in 1..=params.steps {
            let h = if i == params.steps { top } else { i as f64 * (top / params.steps as f64) };
            let active: Vec<bool> = t.iter().map(|v| sign * v >= h).collect();
            let mut label = vec![usize::MAX; t.len()];
            for start in 0..t.len() {
                if !active[start] || label[start] != usize::MAX {
                    continue;
                }
                let mut stack = vec![start];
                let mut members = vec![];
                label[start] = start;
                while let Some(v) = stack.pop() {
                    members.push(v);
                    for u in 0..t.len() {
                        if active[u] && label[u] == usize::MAX && touching(u, v) {
                            label[u] = start;
                            stack.push(u);
                        }
                    }
                }
                for v in &members {
                    out[*v] += sign * (members.len() as f64).powf(params.e) * h.powf(params.h);
                }
            }
        }
    }
    out
}

#[test]
fn tfce_matches_labelling_every_threshold() {
    let grid = Grid { shape: [7, 6, 5], affine: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]] };
    let mask = MaskedGrid::from_mask(grid.clone(), &vec![1.0; grid.len()]).unwrap();
    let mut rng = neurospec::stats::rng::Rng::derived(3, "tfce-test");
    let t: Vec<f64> = (0..grid.len()).map(|_| 2.0 * rng.normal()).collect();
    for connectivity in [Connectivity::Faces6, Connectivity::Edges18, Connectivity::Corners26] {
        let params = TfceParams { e: 0.5, h: 2.0, steps: 20 };
        let got = ours(&t, &mask, connectivity, true, params);
        let want = brute_force(&t, &mask, connectivity, params);
        let d = relative_max_diff(&got, &want);
        assert!(d < 1e-12, "{connectivity:?}: {d:e}");
    }
}

/// The permutations' statistic (`tfce_maximum`, which never computes the map) is the largest
/// |TFCE| (or TFCE, one-sided) of the exact map, to rounding: on the nilearn fixture's t map and
/// on smoothed random maps over a holed, non-cubic mask touching the grid's faces (the padded
/// lattice's border), for every connectivity, side, E and H, and a coarse and a fine step count.
#[test]
fn tfce_maximum_is_the_maps_maximum() {
    let f = fixture();
    let fixture_mask = mask(&f);
    let grid = Grid { shape: [9, 7, 6], affine: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]] };
    let holed: Vec<f64> = (0..grid.len()).map(|i| if i % 7 == 3 || i % 11 == 5 { 0.0 } else { 1.0 }).collect();
    let holed = MaskedGrid::from_mask(grid, &holed).unwrap();
    let mut rng = neurospec::stats::rng::Rng::derived(5, "tfce-maximum-test");
    let mut cases = vec![(floats(&f["t"]), fixture_mask)];
    for _ in 0..4 {
        let raw: Vec<f64> = (0..holed.len()).map(|_| rng.normal()).collect();
        // Neighbour averaging so that components are large and merge across levels.
        let smooth: Vec<f64> =
            (0..raw.len()).map(|v| 1.5 * (raw[v] + raw[(v + 1) % raw.len()] + raw[(v + 9) % raw.len()])).collect();
        cases.push((smooth, holed.clone()));
    }
    // A larger smooth map (three box passes along each axis) over a ball: the components merge
    // into one giant below the percolation height, which the pass handles on its own path.
    let grid = Grid { shape: [26, 22, 20], affine: [[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]] };
    let [nx, ny, nz] = grid.shape;
    let ball: Vec<f64> = (0..grid.len())
        .map(|i| {
            let (x, y, z) = ((i % nx) as f64 - 12.5, ((i / nx) % ny) as f64 - 10.5, (i / (nx * ny)) as f64 - 9.5);
            if (x / 12.0).powi(2) + (y / 10.0).powi(2) + (z / 9.0).powi(2) <= 1.0 { 1.0 } else { 0.0 }
        })
        .collect();
    let ball = MaskedGrid::from_mask(grid, &ball).unwrap();
    let mut volume: Vec<f64> = (0..nx * ny * nz).map(|_| rng.normal()).collect();
    for stride in [1, nx, nx * ny] {
        for _ in 0..3 {
            let before = volume.clone();
            for (i, v) in volume.iter_mut().enumerate() {
                *v = before[i.saturating_sub(stride)] + before[i] + before[(i + stride).min(before.len() - 1)];
            }
        }
    }
    let t = (0..ball.len())
        .map(|v| {
            let [i, j, k] = ball.ijk(v);
            volume[(k * ny + j) * nx + i] / 8.0
        })
        .collect();
    cases.push((t, ball));
    let mut checked = 0;
    for (t, mask) in &cases {
        for connectivity in [Connectivity::Faces6, Connectivity::Edges18, Connectivity::Corners26] {
            let lattice = Lattice::build(mask, connectivity).unwrap();
            let mut scratch = MaxScratch::new(&lattice);
            for params in [
                TfceParams::default(),
                TfceParams { e: 0.6, h: 1.5, steps: 100 },
                TfceParams { e: 1.0, h: 3.0, steps: 7 },
                TfceParams { e: 0.5, h: 2.0, steps: 5000 },
            ] {
                for two_sided in [true, false] {
                    let map = ours(t, mask, connectivity, two_sided, params);
                    let want = map.iter().map(|v| if two_sided { v.abs() } else { *v }).fold(0.0f64, f64::max);
                    let got = tfce_maximum(t, two_sided, params, &lattice, &mut scratch);
                    assert!(want > 0.0);
                    assert!(
                        (got - want).abs() <= 1e-12 * want,
                        "{connectivity:?} {params:?} {two_sided}: {got} vs {want}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 6 * 3 * 4 * 2);
    // Through `Tfce`, the negative tail is the positive tail of −t.
    let (t, mask) = &cases[1];
    for (tail, sign) in [(Tail::Negative, -1.0), (Tail::Positive, 1.0), (Tail::TwoSided, 0.0)] {
        let tfce = Tfce::new(mask, Connectivity::Corners26, TfceParams::default(), tail).unwrap();
        let (map, best) = tfce.map(t);
        let want = map.iter().map(|v| if sign == 0.0 { v.abs() } else { sign * v }).fold(0.0f64, f64::max);
        assert!((best - want).abs() <= 1e-15 * want);
        assert!((tfce.maximum(t) - want).abs() <= 1e-12 * want, "{tail:?}");
    }
}

/// Settings the method is not defined for, or that the 16-bit levels cannot hold, are refused.
#[test]
fn tfce_refuses_degenerate_settings() {
    let grid = Grid { shape: [3, 3, 3], affine: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]] };
    let mask = MaskedGrid::from_mask(grid, &[1.0; 27]).unwrap();
    let new = |e: f64, h: f64, steps: usize| {
        Tfce::new(&mask, Connectivity::Faces6, TfceParams { e, h, steps }, Tail::TwoSided).err().map(|e| e.to_string())
    };
    assert!(new(0.5, 2.0, 65_535).is_none());
    assert!(new(0.5, 2.0, 1).is_none());
    for (e, h, steps, says) in [
        (0.5, 2.0, 65_536, "between 1 and 65535 height steps, not 65536"),
        (0.5, 2.0, 0, "not 0"),
        (0.0, 2.0, 100, "exponent E must be a positive finite number, not 0"),
        (0.5, -1.0, 100, "exponent H must be a positive finite number, not -1"),
        (f64::NAN, 2.0, 100, "exponent E must be a positive finite number, not NaN"),
        (0.5, f64::INFINITY, 100, "exponent H must be a positive finite number, not inf"),
    ] {
        let message = new(e, h, steps).unwrap_or_default();
        assert!(message.contains(says), "{e} {h} {steps}: {message}");
    }
}

/// Many components: 81,920 isolated peaks (every voxel of even parity, 6-connectivity) that
/// the voxels between them then join and merge, level by level, relabelling as they go.
#[test]
fn tfce_maximum_of_eighty_thousand_merging_peaks() {
    let grid = Grid { shape: [64, 64, 40], affine: [[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]] };
    let mask = MaskedGrid::from_mask(grid.clone(), &vec![1.0; grid.len()]).unwrap();
    let mut rng = neurospec::stats::rng::Rng::derived(11, "tfce-wide-labels");
    let t: Vec<f64> = (0..mask.len())
        .map(|v| {
            let [i, j, k] = mask.ijk(v);
            let u = rng.normal().abs();
            if (i + j + k) % 2 == 0 { 2.0 + u } else { 0.1 + 0.2 * u }
        })
        .collect();
    let lattice = Lattice::build(&mask, Connectivity::Faces6).unwrap();
    let mut scratch = MaxScratch::new(&lattice);
    let params = TfceParams::default();
    let map = ours(&t, &mask, Connectivity::Faces6, true, params);
    let want = map.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let got = tfce_maximum(&t, true, params, &lattice, &mut scratch);
    assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
}
