//! `neurospec bench-voxelwise` (hidden): times the voxelwise permutation engine on synthetic
//! data for `benches/voxelwise.py`. Not a user command; it lives here so that no library
//! carries a data generator.

use crate::error::{Error, Result};
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchVoxelwise {
    #[arg(long, default_value_t = 49)]
    subjects: usize,
    /// Approximate mask size (an ellipsoid scaled to this many voxels).
    #[arg(long, default_value_t = 230_000)]
    voxels: usize,
    #[arg(long, default_value_t = 5000)]
    permutations: usize,
    /// Nuisance covariates (0, 1 = age, 2 = age and sex).
    #[arg(long, default_value_t = 2)]
    covariates: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Also TFCE (E 0.5, H 2, 100 steps, 26-connectivity) with max-TFCE FWE.
    #[arg(long)]
    tfce: bool,
}

pub fn run(args: BenchVoxelwise) -> Result<()> {
    let BenchVoxelwise { subjects, voxels, permutations, covariates, seed, jobs, tfce } = args;
    bench_voxelwise(subjects, voxels, permutations, covariates, seed, jobs, tfce)
}

/// The synthetic voxelwise study of `benches/voxelwise.py` (the script builds the same recipe in
/// numpy): an ellipsoid mask with semi-axes (35.4, 43.8, 35.4)·∛(voxels/230031) voxels (230,031
/// voxels at scale 1, about an MNI 2 mm brain), per subject white noise on the grid smoothed by
/// [1, 2, 1]/4 twice along each axis (zero outside the grid), group 1 = the first 31/49 of the
/// subjects with +0.15 (about one noise SD) in a sphere of radius 4 voxels 10 voxels right of the
/// centre; covariates age ~ N(40, 10) and sex = i mod 2. Two-sample test, 26-connectivity,
/// cluster-forming two-sided p = 0.001. Only `fit` is timed. Prints one JSON line.
fn bench_voxelwise(
    subjects: usize,
    voxels: usize,
    permutations: usize,
    covariates: usize,
    seed: u64,
    jobs: Option<usize>,
    tfce: bool,
) -> Result<()> {
    use crate::imaging::regions::Grid;
    use crate::stats::rng::Rng;
    use crate::stats::voxelwise::{
        ClusterSettings, ClusterThreshold, Connectivity, Covariates, Design, MaskedGrid, Settings, Tail, fit,
    };
    if subjects < 6 || covariates > 2 || voxels == 0 {
        return Err(Error::Usage("bench-voxelwise: --subjects ≥ 6, --covariates 0..=2, --voxels ≥ 1".into()));
    }
    let scale = (voxels as f64 / 230_031.0).cbrt();
    let axes = [35.4 * scale, 43.8 * scale, 35.4 * scale];
    let centre = axes.map(|a| a.ceil() + 1.0);
    let shape = axes.map(|a| 2 * a.ceil() as usize + 3);
    let grid = Grid { shape, affine: [[-2.0, 0.0, 0.0, 90.0], [0.0, 2.0, 0.0, -126.0], [0.0, 0.0, 2.0, -72.0]] };
    let mut inside = vec![0.0; grid.len()];
    let mut blob = vec![false; grid.len()];
    for k in 0..shape[2] {
        for j in 0..shape[1] {
            for i in 0..shape[0] {
                let d = [i as f64 - centre[0], j as f64 - centre[1], k as f64 - centre[2]];
                let e = (d[0] / axes[0]).powi(2) + (d[1] / axes[1]).powi(2) + (d[2] / axes[2]).powi(2);
                inside[grid.index(i, j, k)] = if e <= 1.0 { 1.0 } else { 0.0 };
                blob[grid.index(i, j, k)] = (d[0] - 10.0).powi(2) + d[1].powi(2) + d[2].powi(2) <= 16.0;
            }
        }
    }
    let mask = MaskedGrid::from_mask(grid.clone(), &inside)?;
    let v = mask.len();
    let group: Vec<bool> = (0..subjects).map(|i| i < (subjects * 31).div_ceil(49)).collect();
    let mut y = vec![0.0; subjects * v];
    let mut volume = vec![0.0; grid.len()];
    let mut scratch = vec![0.0; grid.len()];
    for (s, &in_group) in group.iter().enumerate() {
        let mut rng = Rng::derived(seed, &format!("bench-voxelwise/subject/{s}"));
        volume.iter_mut().for_each(|x| *x = rng.normal_fast());
        for axis in 0..3 {
            for _ in 0..2 {
                smooth_axis(&volume, &mut scratch, shape, axis);
                std::mem::swap(&mut volume, &mut scratch);
            }
        }
        for (m, &flat) in mask.voxels.iter().enumerate() {
            y[m * subjects + s] = volume[flat] + if in_group && blob[flat] { 0.15 } else { 0.0 };
        }
    }
    let mut rng = Rng::derived(seed, "bench-voxelwise/covariates");
    let age: Vec<f64> = (0..subjects).map(|_| 40.0 + 10.0 * rng.normal()).collect();
    let sex: Vec<f64> = (0..subjects).map(|i| (i % 2) as f64).collect();
    let names = ["age", "sex"][..covariates].iter().map(|s| s.to_string()).collect();
    let values = [age, sex][..covariates].concat();
    let design = Design::TwoSample { group, covariates: Covariates { names, values } };
    // Timed from here: TFCE's set-up (neighbour list, lattice) is part of its cost.
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let tfce = if tfce {
        Some(crate::stats::tfce::Tfce::new(&mask, Connectivity::Corners26, Default::default(), Tail::TwoSided)?)
    } else {
        None
    };
    let tfce_max = |t: &[f64]| tfce.as_ref().map_or(0.0, |x| x.maximum(t));
    let settings = Settings {
        permutations,
        seed,
        tail: Tail::TwoSided,
        cluster: Some(ClusterSettings {
            threshold: ClusterThreshold::P(0.001),
            connectivity: Connectivity::Corners26,
            mask: &mask,
        }),
        map_statistic: if tfce.is_some() { Some(&tfce_max) } else { None },
    };
    let threads = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))?;
    let result = pool.install(|| fit(&y, subjects, &design, &settings, &|_| {}))?;
    let tfce_result = tfce.as_ref().map(|x| x.infer(&result.t, &result.null_map_statistic, permutations));
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_started;
    let clusters = result.clusters.as_ref().map(|c| c.clusters.as_slice()).unwrap_or_default();
    let summary = serde_json::json!({
        "engine": "neurospec",
        "seconds": seconds,
        "cpu_seconds": cpu,
        "threads": threads,
        "subjects": subjects,
        "voxels": v,
        "permutations": permutations,
        "covariates": covariates,
        "max_abs_t": result.t.iter().fold(0.0f64, |m, t| m.max(t.abs())),
        "voxels_p_fwe_05": result.p_fwe.iter().filter(|p| **p <= 0.05).count(),
        "cluster_t_threshold": result.clusters.as_ref().map(|c| c.t_threshold),
        "clusters": clusters.len(),
        "largest_cluster": clusters.first().map(|c| c.voxels.len()),
        "largest_cluster_p_fwe": clusters.first().map(|c| c.p_fwe),
        "tfce": tfce.is_some(),
        // Bitwise identity of the permutations' statistics across builds and thread counts.
        "null_map_statistic_blake3": blake3::hash(
            &result.null_map_statistic.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()
        ).to_hex().to_string(),
        "voxels_tfce_p_fwe_05": tfce_result.as_ref().map(|r| r.p_fwe.iter().filter(|p| **p <= 0.05).count()),
    });
    super::out(&format!("{summary}\n"))?;
    Ok(())
}

/// User + system CPU seconds of this process so far (all threads): a cost that other processes
/// on a loaded machine inflate far less than wall time.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// `out` = `input` convolved with [1, 2, 1]/4 along `axis` (zero outside the grid).
fn smooth_axis(input: &[f64], out: &mut [f64], shape: [usize; 3], axis: usize) {
    let stride = [1, shape[0], shape[0] * shape[1]][axis];
    let len = shape[axis];
    for (flat, o) in out.iter_mut().enumerate() {
        let position = (flat / stride) % len;
        let before = if position > 0 { input[flat - stride] } else { 0.0 };
        let after = if position + 1 < len { input[flat + stride] } else { 0.0 };
        *o = 0.25 * before + 0.5 * input[flat] + 0.25 * after;
    }
}

/// `neurospec bench-slurm` (hidden): submission at scale for `benches/slurm.py`, against
/// whatever `sbatch`/`scontrol`/`squeue`/`scancel` are on PATH (the script puts recording
/// stand-ins there).
#[derive(clap::Args)]
pub struct BenchSlurm {
    /// Per-run stages (one tiny input file each).
    #[arg(long)]
    runs: usize,
    /// Work folder (input files, cache).
    #[arg(long)]
    dir: std::path::PathBuf,
    /// Only time a no-op submission against the cache a previous `--keep` run left in `--dir`
    /// (for profiling the no-op alone).
    #[arg(long)]
    noop_only: bool,
}

/// A synthetic plan shaped like a large imaging study: `runs` per-run stages (`imaging-run`,
/// each reading its own small file), fanning into one `connectome` and one `load-table` after
/// it. Times: building the plan, submitting it to an empty cache, filling the cache (every array
/// task run here in turn, with stand-in stages), and submitting again, twice (no-ops). Prints one
/// JSON line.
pub fn bench_slurm(args: BenchSlurm) -> Result<()> {
    use crate::exec::slurm::{self, Submitted, cluster::Slurm};
    use crate::plan::Node;
    use crate::stages::Kind;
    let BenchSlurm { runs, dir, noop_only } = args;
    write_inputs(runs, &dir)?;
    let started = Instant::now();
    let plan = synthetic_plan(runs, &dir)?;
    let compile_seconds = started.elapsed().as_secs_f64();
    let cache = dir.join("cache");
    let options = slurm::SubmitOptions {
        study_file: dir.join("bench.toml"),
        workdir: dir.clone(),
        program: std::env::current_exe().map_err(|e| Error::io("neurospec", e))?,
        ..Default::default()
    };
    if noop_only {
        let (noop_seconds, nothing) = noop(&plan, &cache, &options)?;
        let summary =
            serde_json::json!({"runs": runs, "noop_seconds": noop_seconds, "noop_submitted_nothing": nothing});
        println!("{summary}");
        return Ok(());
    }
    let started = Instant::now();
    let store = crate::store::Store::open(&cache)?;
    let Submitted::Jobs { folder, submission, .. } = slurm::submit(&plan, &store, &options, &Slurm)? else {
        return Err(Error::data("the synthetic plan was cached before it ran"));
    };
    let submit_seconds = started.elapsed().as_secs_f64();
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let plan_bytes = size(&folder.dir.join("plan.json")) + size(&folder.dir.join("submission.json"));
    // What one task reads: before slices, every task read the whole plan and submission; now
    // it reads its own slice (mean over the tasks, and the largest).
    let started = Instant::now();
    folder.plan()?;
    folder.submission()?;
    let whole_plan_read_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut slice_bytes_max = 0;
    let tasks: usize = submission.arrays.iter().map(|a| a.tasks.len()).sum();
    for (a, array) in submission.arrays.iter().enumerate() {
        for t in 0..array.tasks.len() {
            slice_bytes_max = slice_bytes_max.max(slurm::slice::read(&folder, a, t)?.1);
        }
    }
    let slice_read_seconds = started.elapsed().as_secs_f64() / tasks.max(1) as f64;
    // Fill the cache as the tasks would (stand-in stages that write their outputs at once).
    let started = Instant::now();
    let stand_in = |node: &Node, _: &crate::stages::Context<'_>| -> Result<crate::stages::Outputs> {
        let name = match node.kind {
            Kind::ImagingRun => "edges",
            _ => "table",
        };
        Ok([(name.to_string(), node.id.clone().into_bytes())].into_iter().collect())
    };
    for (a, array) in submission.arrays.iter().enumerate() {
        for t in 0..array.tasks.len() {
            slurm::task::run(&folder, a, t, 1, &stand_in)?;
        }
    }
    let fill_seconds = started.elapsed().as_secs_f64();
    drop(store);
    // The first no-op after the tasks also merges their stat-cache journals; the second is a
    // steady state.
    let (noop_seconds, nothing) = noop(&plan, &cache, &options)?;
    let (noop_again_seconds, again_nothing) = noop(&plan, &cache, &options)?;
    let cache_bytes = folder_bytes(&cache);
    let summary = serde_json::json!({
        "runs": runs,
        "stages": plan.order.len(),
        "compile_seconds": compile_seconds,
        "submit_seconds": submit_seconds,
        "sbatch_calls": submission.sbatch_calls,
        "arrays": submission.arrays.len(),
        "array_tasks": tasks,
        "submission_bytes": plan_bytes,
        "whole_plan_read_seconds": whole_plan_read_seconds,
        "slice_read_seconds": slice_read_seconds,
        "slice_bytes_max": slice_bytes_max,
        "fill_seconds": fill_seconds,
        "cache_bytes": cache_bytes,
        "noop_seconds": noop_seconds,
        "noop_again_seconds": noop_again_seconds,
        "noop_submitted_nothing": nothing && again_nothing,
    });
    println!("{summary}");
    Ok(())
}

/// A no-op submission as `run --executor slurm` makes it: open the cache (with its lock), find
/// every stage cached, submit nothing. Its time, and whether it indeed submitted nothing.
fn noop(
    plan: &crate::plan::Plan,
    cache: &std::path::Path,
    options: &crate::exec::slurm::SubmitOptions,
) -> Result<(f64, bool)> {
    use crate::exec::slurm::{self, Submitted, cluster::Slurm};
    let started = Instant::now();
    let store = crate::store::Store::open(cache)?;
    let noop = slurm::submit(plan, &store, options, &Slurm)?;
    Ok((started.elapsed().as_secs_f64(), matches!(noop, Submitted::Nothing { .. })))
}

/// The input files of [`bench_slurm`]'s plan (`dir/runs/run-<r>.txt`), written if missing.
fn write_inputs(runs: usize, dir: &std::path::Path) -> Result<()> {
    let inputs = dir.join("runs");
    std::fs::create_dir_all(&inputs).map_err(|e| Error::io(&inputs, e))?;
    for r in 0..runs {
        let path = inputs.join(format!("run-{r}.txt"));
        if !path.exists() {
            std::fs::write(&path, format!("run {r}\n")).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// The synthetic plan of [`bench_slurm`].
fn synthetic_plan(runs: usize, dir: &std::path::Path) -> Result<crate::plan::Plan> {
    use crate::plan::{Node, Source};
    use crate::stages::Kind;
    let inputs = dir.join("runs");
    let mut nodes: Vec<Node> = (0..runs)
        .map(|r| {
            let path = inputs.join(format!("run-{r}.txt"));
            Node {
                id: format!("imaging/sub-{r:05}"),
                kind: Kind::ImagingRun,
                params: serde_json::json!({ "run": r }),
                seed: None,
                inputs: vec![("bold".into(), Source::Path { written: path.display().to_string(), path })],
                publish: vec![],
            }
        })
        .collect();
    let edges = (0..runs).map(|r| {
        (format!("edges:{r}"), Source::Stage { node: petgraph::graph::NodeIndex::new(r), output: "edges".into() })
    });
    nodes.push(Node {
        id: "connectome".into(),
        kind: Kind::Connectome,
        params: serde_json::json!({}),
        seed: None,
        inputs: edges.collect(),
        publish: vec![],
    });
    let table = Source::Stage { node: petgraph::graph::NodeIndex::new(runs), output: "table".into() };
    nodes.push(Node {
        id: "table/connectome".into(),
        kind: Kind::LoadTable,
        params: serde_json::json!({}),
        seed: None,
        inputs: vec![("table".into(), table)],
        publish: vec![("table".into(), "connectome.tsv".into())],
    });
    crate::plan::from_nodes(nodes, dir.join("out"), "bench".into(), "bench".into())
        .ok_or_else(|| Error::data("the synthetic plan does not wire"))
}

fn folder_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => folder_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
