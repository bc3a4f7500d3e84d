#!/usr/bin/env python3
"""Benchmark: neurospec's voxelwise permutation engine against a numpy/scipy baseline.

Usage (from the repository root, after `cargo build --release`):
    /work/refvenv/bin/python benches/voxelwise.py \
        [--subjects 49] [--voxels 230000] [--permutations 5000] [--covariates 2] \
        [--numpy-permutations 200] [--threads 2] [--seed 1] [--binary target/release/neurospec] [--tfce]
  --tfce compares max-T + cluster with and without TFCE instead of against numpy (the permutations
  compute only max |TFCE| each, stats::tfce::tfce_maximum; the observed map once, exactly; TFCE's
  set-up is inside the timed part). It also prints CPU seconds (getrusage), which a loaded
  machine distorts less than wall time, and a blake3 of the permutations' maxima for bitwise
  comparisons across builds and thread counts. It alternates --repeat runs of each and compares
  the fastest (the machine's speed drifts). Release build, 2 threads, 5000 permutations, same
  half hour: previous pass (f21a2ce) 10.2 s vs 97.6 s (9.6x); this pass 9.7 s vs 47.7 s (4.9x
  on the fastest runs, 4.8-5.4x per pair), the same null-maxima digest (576d9a0f...); the
  issue's target is 5x. Small runs mislead: the observed map, the set-up and
  the base's serial part weigh more there; the full size is the figure that counts.

Both sides build the same synthetic study from the same recipe (not the same random numbers:
neurospec draws from its own ChaCha streams, numpy from default_rng(seed)):
  * an ellipsoid mask with semi-axes (35.4, 43.8, 35.4) * cbrt(voxels / 230031) voxels on a
    grid of 2*ceil(axis)+3 voxels per axis (230,031 voxels at scale 1, an MNI 2 mm brain);
  * per subject, white noise on the grid smoothed by [1, 2, 1]/4 twice along each axis (zero
    outside the grid); group 1 = the first ceil(31/49 * n) subjects, +0.15 (about one noise SD)
    in a sphere of radius 4 voxels 10 voxels from the centre;
  * covariates age ~ N(40, 10), sex = i mod 2;
  * two-sample t of group1 - group0 per voxel (Frisch-Waugh-Lovell), Freedman-Lane
    permutations, max-|T| FWE and cluster-extent FWE (26-connectivity, cluster-forming
    two-sided p = 0.001, positive and negative clusters pooled into one max-size null).

Timed parts: neurospec times its `fit` call (inside the process); the numpy baseline times the
same computation: residualisation, observed t and clusters, then the permutations in chunks of
32 — one (32 x n)(n x V) product per chunk plus one per covariate, t from the partial
correlation, exceedance counts, per-permutation maximum, and scipy.ndimage.label on the full
grid for the positive and the negative supra-threshold masks. numpy is run for
--numpy-permutations permutations and its permutation time is SCALED LINEARLY to
--permutations (the setup time is added once); the output says so.
Peak RSS of each whole process (data generation included) comes from /usr/bin/time -f %M.
OpenBLAS gets --threads threads, as neurospec does (rayon).
"""

import argparse
import json
import os
import subprocess
import sys
import time


def run_measured(command, env=None):
    """Run under /usr/bin/time -f %M; return (stdout, peak RSS in MB)."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M"] + command, capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"failed: {' '.join(command)}")
    rss_kb = int(proc.stderr.strip().splitlines()[-1])
    return proc.stdout, rss_kb / 1024.0


def numpy_baseline(args):
    import numpy as np
    from scipy import ndimage, stats

    scale = np.cbrt(args.voxels / 230031.0)
    axes = np.array([35.4, 43.8, 35.4]) * scale
    centre = np.ceil(axes) + 1.0
    shape = tuple(int(2 * np.ceil(a) + 3) for a in axes)
    i, j, k = np.meshgrid(*(np.arange(s, dtype=float) for s in shape), indexing="ij")
    d = [i - centre[0], j - centre[1], k - centre[2]]
    mask = (d[0] / axes[0]) ** 2 + (d[1] / axes[1]) ** 2 + (d[2] / axes[2]) ** 2 <= 1.0
    blob = ((d[0] - 10.0) ** 2 + d[1] ** 2 + d[2] ** 2 <= 16.0)[mask]
    del i, j, k, d
    n = args.subjects
    v = int(mask.sum())
    rng = np.random.default_rng(args.seed)
    group = np.arange(n) < -(-n * 31 // 49)
    y = np.empty((n, v))
    kernel = np.array([0.25, 0.5, 0.25])
    for s in range(n):
        vol = rng.standard_normal(shape)
        for axis in range(3):
            for _ in range(2):
                vol = ndimage.convolve1d(vol, kernel, axis=axis, mode="constant", cval=0.0)
        y[s] = vol[mask] + (0.15 if group[s] else 0.0) * blob
    age = 40.0 + 10.0 * rng.standard_normal(n)
    sex = (np.arange(n) % 2).astype(float)
    covariates = [age, sex][: args.covariates]
    structure = np.ones((3, 3, 3), dtype=bool)

    def largest_clusters(supra_pos, supra_neg):
        best = 0
        for supra in (supra_pos, supra_neg):
            vol = np.zeros(shape, dtype=bool)
            vol[mask] = supra
            labels, count = ndimage.label(vol, structure=structure)
            if count:
                best = max(best, int(np.bincount(labels.ravel())[1:].max()))
        return best

    started = time.perf_counter()
    z = np.column_stack([np.ones(n)] + covariates)
    q, _ = np.linalg.qr(z)
    e = y - q @ (q.T @ y)
    x = group.astype(float)
    xr = x - q @ (q.T @ x)
    sxx = xr @ xr
    df = n - z.shape[1] - 1
    ee = np.einsum("ij,ij->j", e, e)
    r_obs = (xr @ e) / np.sqrt(sxx * ee)
    t_obs = r_obs * np.sqrt(df / (1.0 - r_obs**2))
    t_thr = stats.t.isf(0.001 / 2, df)
    r_thr = t_thr / np.sqrt(df + t_thr**2)
    stat_obs = np.abs(r_obs)
    at_least = stat_obs * (1 - 1e-10)
    observed_max_size = largest_clusters(r_obs >= r_thr, r_obs <= -r_thr)
    setup = time.perf_counter() - started

    perm_rng = np.random.default_rng(args.seed + 1)
    counts = np.zeros(v, dtype=np.int64)
    maxima, max_sizes = [], []
    extra = q[:, 1:].T  # non-constant basis columns
    started = time.perf_counter()
    done = 0
    chunk = 32
    while done < args.numpy_permutations:
        m = min(chunk, args.numpy_permutations - done)
        perms = np.array([perm_rng.permutation(n) for _ in range(m)])
        rows = np.arange(m)[:, None]
        w = np.empty((m, n))
        w[rows, perms] = xr[None, :]
        s = w @ e
        resid = np.broadcast_to(ee, s.shape).copy()
        for col in extra:
            g = np.empty((m, n))
            g[rows, perms] = col[None, :]
            resid -= (g @ e) ** 2
        r = s / np.sqrt(sxx * np.maximum(resid, np.finfo(float).tiny))
        stat = np.abs(r)
        counts += (stat >= at_least).sum(axis=0)
        maxima.extend(stat.max(axis=1))
        for b in range(m):
            max_sizes.append(largest_clusters(r[b] >= r_thr, r[b] <= -r_thr))
        done += m
    permuting = time.perf_counter() - started
    per_permutation = permuting / args.numpy_permutations
    return {
        "engine": "numpy",
        "voxels": v,
        "subjects": n,
        "df": df,
        "setup_seconds": setup,
        "measured_permutations": args.numpy_permutations,
        "measured_seconds": setup + permuting,
        "seconds_per_permutation": per_permutation,
        "seconds": setup + per_permutation * args.permutations,
        "max_abs_t": float(np.abs(t_obs).max()),
        "observed_largest_cluster": observed_max_size,
        "null_max_size_median": float(np.median(max_sizes)),
    }


def tfce_cost(args):
    """Both runs on the same data and permutations, alternating, --repeat times each: the
    machine's speed drifts by 20% over minutes here, so one pair of runs can say 4.3x or 5.6x.
    The ratio reported is of the fastest run of each (noise only ever adds time), with the
    median of the per-pair ratios beside it."""
    common = [
        "--subjects", str(args.subjects), "--voxels", str(args.voxels), "--covariates", str(args.covariates),
        "--seed", str(args.seed), "--permutations", str(args.permutations), "-j", str(args.threads),
    ]
    runs = {"max-T + cluster": [], "max-T + cluster + TFCE": []}
    for _ in range(args.repeat):
        for name, extra in [("max-T + cluster", []), ("max-T + cluster + TFCE", ["--tfce"])]:
            out, rss = run_measured([args.binary, "bench-voxelwise", *common, *extra])
            runs[name].append((json.loads(out.strip().splitlines()[-1]), rss))
    base_runs, tfce_runs = runs.values()
    digests = {r["null_map_statistic_blake3"] for r, _ in tfce_runs}
    if len(digests) != 1:
        raise SystemExit(f"the TFCE null maxima differ between runs: {sorted(digests)}")
    fastest = lambda rs, key: min(rs, key=lambda r: r[0][key])
    (base, base_rss), (tfce, tfce_rss) = fastest(base_runs, "seconds"), fastest(tfce_runs, "seconds")
    base_cpu, tfce_cpu = fastest(base_runs, "cpu_seconds")[0], fastest(tfce_runs, "cpu_seconds")[0]
    pair_ratios = sorted(t["seconds"] / b["seconds"] for (b, _), (t, _) in zip(base_runs, tfce_runs))
    per = lambda r: r["seconds"] / args.permutations * 1000
    print(f"voxelwise two-sample, n = {args.subjects}, {base['voxels']} voxels, B = {args.permutations}, "
          f"{args.threads} threads, {args.repeat} runs of each (alternating; fastest shown)")
    print("max-T + cluster runs:        " + ", ".join(f"{r['seconds']:.2f} s" for r, _ in base_runs))
    print("max-T + cluster + TFCE runs: " + ", ".join(f"{r['seconds']:.2f} s" for r, _ in tfce_runs))
    print(f"max-T + cluster:        {base['seconds']:.2f} s ({per(base):.1f} ms per permutation), peak RSS {base_rss:.0f} MB")
    print(f"max-T + cluster + TFCE: {tfce['seconds']:.2f} s ({per(tfce):.1f} ms per permutation), peak RSS {tfce_rss:.0f} MB, "
          f"{tfce['voxels_tfce_p_fwe_05']} voxels with TFCE p_FWE <= 0.05, null maxima blake3 {tfce['null_map_statistic_blake3'][:16]}")
    print(f"ratio (with TFCE / without): {tfce['seconds'] / base['seconds']:.2f}x time of the fastest runs "
          f"(per pair: {', '.join(f'{r:.2f}x' for r in pair_ratios)}; median {pair_ratios[len(pair_ratios) // 2]:.2f}x), "
          f"{tfce_cpu['cpu_seconds'] / base_cpu['cpu_seconds']:.2f}x CPU ({base_cpu['cpu_seconds']:.2f} s vs "
          f"{tfce_cpu['cpu_seconds']:.2f} s, least of each; CPU time includes the data's generation, the same in both)")
    print(json.dumps({"without": [r for r, _ in base_runs], "with_tfce": [r for r, _ in tfce_runs]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=49)
    parser.add_argument("--voxels", type=int, default=230000)
    parser.add_argument("--permutations", type=int, default=5000)
    parser.add_argument("--numpy-permutations", type=int, default=200)
    parser.add_argument("--covariates", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--binary", default="target/release/neurospec")
    parser.add_argument("--numpy-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3,
                        help="with --tfce: runs of each, alternating (the fastest of each is compared)")
    parser.add_argument("--tfce", action="store_true",
                        help="instead of the numpy comparison: the cost of adding TFCE (E 0.5, H 2, 100 steps, "
                             "26-connectivity) to max-T + cluster, per permutation and as a ratio")
    args = parser.parse_args()

    if args.numpy_only:
        print(json.dumps(numpy_baseline(args)))
        return
    if args.tfce:
        tfce_cost(args)
        return

    common = [
        "--subjects", str(args.subjects), "--voxels", str(args.voxels),
        "--covariates", str(args.covariates), "--seed", str(args.seed),
    ]
    out, rust_rss = run_measured(
        [args.binary, "bench-voxelwise", *common, "--permutations", str(args.permutations),
         "-j", str(args.threads)]
    )
    rust = json.loads(out.strip().splitlines()[-1])
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    out, numpy_rss = run_measured(
        [sys.executable, __file__, "--numpy-only", *common, "--permutations", str(args.permutations),
         "--numpy-permutations", str(args.numpy_permutations)],
        env=env,
    )
    base = json.loads(out.strip().splitlines()[-1])

    print(f"voxelwise two-sample, n = {args.subjects}, {rust['voxels']} voxels (numpy: {base['voxels']}), "
          f"{args.covariates} covariates, B = {args.permutations}, max-T + cluster extent, {args.threads} threads")
    print(f"neurospec: {rust['seconds']:.2f} s  peak RSS {rust_rss:.0f} MB  "
          f"(max |t| {rust['max_abs_t']:.2f}, {rust['clusters']} clusters, largest {rust['largest_cluster']} voxels, "
          f"p_FWE {rust['largest_cluster_p_fwe']})")
    print(f"numpy:     {base['seconds']:.2f} s  peak RSS {numpy_rss:.0f} MB  "
          f"(measured {base['measured_permutations']} permutations in {base['measured_seconds']:.2f} s, "
          f"SCALED LINEARLY to {args.permutations}; max |t| {base['max_abs_t']:.2f}, "
          f"largest observed cluster {base['observed_largest_cluster']} voxels)")
    print(f"ratio (numpy / neurospec): {base['seconds'] / rust['seconds']:.1f}x time, "
          f"{numpy_rss / rust_rss:.2f}x peak RSS")
    print(json.dumps({"neurospec": rust, "neurospec_rss_mb": rust_rss, "numpy": base, "numpy_rss_mb": numpy_rss}))


if __name__ == "__main__":
    main()
