#!/usr/bin/env python3
"""Benchmark: the whole `ukb-symptoms` study vs a numpy baseline doing the same OLS + permutations.

    python benches/ukb_symptoms.py [--neurospec target/release/neurospec] [--subjects 25000]

Needs numpy (see tests/fixtures/requirements.txt). Builds nothing: run `cargo build --release`
first. Prints wall times, peak memory (max RSS of each command, from GNU time) and ratios:

  A  neurospec, whole embedded study from a cold cache: simulate, load, score, exclude, split,
     OLS + 5,000 shared permutations + 1,000 bootstraps for 198 IDPs x 3 symptoms x 2 samples,
     FDR, replication
  B  neurospec, no-op rerun of A
  C  neurospec on the same data as the baseline (files written by `neurospec simulate`),
     bootstraps off: table reading, scoring, exclusions, OLS + 5,000 permutations, FDR
  N  benches/numpy_baseline.py --method fwl (the fastest numpy formulation: one GEMM per chunk
     for all IDPs), OLS + 5,000 permutations, timed part only (data preparation excluded)
  L  benches/numpy_baseline.py --method lstsq (per-IDP lstsq, the textbook way), measured on
     5 IDPs x 500 permutations and scaled linearly to the full 600 tests x 5,000 permutations
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def run(cmd, cwd=None, env=None):
    """Run a command; return (wall seconds, max RSS in MB from GNU time, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M"] + list(cmd), cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{err.decode()}")
    return wall, int(err.decode().strip().splitlines()[-1]) / 1024.0, out.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurospec", default=os.path.join(REPO, "target/release/neurospec"))
    ap.add_argument("--subjects", type=int, default=25000)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    exe = os.path.abspath(args.neurospec)
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: run `cargo build --release` first")
    work = tempfile.mkdtemp(prefix="neurospec-bench-")
    try:
        embedded = os.path.join(work, "embedded")
        os.makedirs(embedded)
        study = open(os.path.join(REPO, "studies/ukb-symptoms.toml")).read()
        study = study.replace("subjects = 25000", f"subjects = {args.subjects}")
        open(os.path.join(embedded, "study.toml"), "w").write(study)

        a_wall, a_rss, a_out = run([exe, "run", "study.toml", "--json", "-j", "2"], cwd=embedded)
        b_wall, b_rss, _ = run([exe, "run", "study.toml", "--json", "-j", "2"], cwd=embedded)

        data = os.path.join(work, "data")
        run([exe, "simulate", "ukb-symptoms", "--out", data, "--subjects", str(args.subjects), "--seed", "1"])
        text = open(os.path.join(data, "study.toml")).read().replace("bootstrap = 1000", "bootstrap = 0")
        open(os.path.join(data, "study.toml"), "w").write(text)
        c_wall, c_rss, _ = run([exe, "run", "study.toml", "--json", "-j", "2"], cwd=data)

        baseline = os.path.join(HERE, "numpy_baseline.py")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
        n_wall, n_rss, n_out = run([args.python, baseline, data, "--permutations", "5000", "--method", "fwl"], env=env)
        n = json.loads(n_out.strip().splitlines()[-1])
        l_wall, _, l_out = run(
            [args.python, baseline, data, "--permutations", "500", "--method", "lstsq", "--limit-features", "5"], env=env
        )
        l = json.loads(l_out.strip().splitlines()[-1])
        l_full = l["seconds"] / (l["tests"] * l["permutations"]) * (n["tests"] * 5000)

        summary = json.loads(a_out)
        print(f"subjects {args.subjects}; neurospec {exe}; numpy {n.get('numpy')}; 2 threads")
        print(f"A  neurospec whole study, cold cache     {a_wall:8.2f} s   peak {a_rss:7.0f} MB   ({summary['executed']} stages)")
        print(f"B  neurospec no-op rerun                 {b_wall:8.3f} s   peak {b_rss:7.0f} MB")
        print(f"C  neurospec OLS + 5,000 perms (files)   {c_wall:8.2f} s   peak {c_rss:7.0f} MB")
        print(f"N  numpy fwl OLS + 5,000 perms (timed)   {n['seconds']:8.2f} s   peak {n_rss:7.0f} MB   (process wall {n_wall:.1f} s, {n['tests']} tests)")
        print(f"L  numpy lstsq, scaled from 5x500        {l_full:8.1f} s")
        print(f"ratio N / C  (same work; numpy timed part only vs whole neurospec run)   {n['seconds'] / c_wall:6.1f}x")
        print(f"ratio N / A  (neurospec also doing 1,000 bootstraps and both samples)   {n['seconds'] / a_wall:6.1f}x")
        print(f"ratio L / C  (textbook per-feature lstsq)                               {l_full / c_wall:6.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
