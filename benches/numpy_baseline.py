#!/usr/bin/env python3
"""NumPy baseline for neurospec's association benchmark.

Usage:
    python benches/numpy_baseline.py DIR --permutations 5000 \
        [--outcomes insomnia,depression,anxiety] [--limit-features K] [--out FILE]

DIR holds two tab-separated tables written by neurospec's simulator:
    DIR/pheno.tsv  eid age sex height handedness f1200_0 f1200_2 f2050_0 ... f2010_2
    DIR/idps.tsv   eid + numeric IDP columns
Missing values are empty fields.

Data preparation (not timed):
  * inner join on eid (pheno row order);
  * per visit v in {0, 2}: insomnia = f1200_v, depression = f2050_v + f2060_v,
    anxiety = f1970_v + f1990_v + f2010_v; a visit counts only if all its items
    are present; the score is the mean over the visits that count;
  * complete cases: drop every row with a NaN in any *selected* outcome score,
    any covariate, or ANY IDP column (all of them, even with --limit-features,
    so that n does not depend on K).

Timed part (time.perf_counter):
  * permutation indices: B vectors generated once with default_rng(0)
    (rng.permuted(tile(arange(n), (B, 1)), axis=1); row k equals the k-th
    rng.permutation(n) call), shared by every test;
  * covariates = const, age, sex, age^2, age*sex, height, handedness (products
    from raw values, then each non-constant column z-scored: same column space);
  * outcome and IDPs z-scored (ddof=1);
  * --method lstsq (default): for each outcome, for each chunk of 500
    permutations, for each IDP: one np.linalg.lstsq on the design
    [const, idp, covariates] with the n x chunk matrix of permuted outcomes as
    right-hand side; t of the IDP coefficient from the residual sums of
    squares: t = b1 / sqrt(rss / (n - p) * inv(X'X)[1,1]), p = 8 columns;
    the observed t comes from one extra lstsq per (outcome, IDP);
  * --method qr: same loop, but each IDP's thin QR is computed once and a chunk
    costs one (p x n)(n x chunk) GEMM: coef = R^-1 Q'Y, rss = |Y|^2 - |Q'Y|^2;
  * --method fwl: Frisch-Waugh-Lovell; covariates projected out of the IDPs
    once, and a chunk costs one (K x n)(n x chunk) GEMM for all K IDPs;
    t = G / sqrt(sxx * rss / (n - p)), rss = |M_C y|^2 - G^2 / sxx;
    all three give the same t (to ~1e-13 relative) and the same p values;
  * Manly permutation p = (1 + #(|t_perm| >= |t_obs|)) / (1 + B).

Prints a JSON line at the end:
  {"seconds", "tests", "permutations", "n", "features", "outcomes", ...}
"seconds" covers the whole timed part for "tests" = outcomes x features tests.
Scaling a --limit-features run up is only roughly linear: generating the
permutations and gathering the permuted outcomes are per-run / per-chunk costs
that do not grow with the number of features (dominant for --method fwl).
OpenBLAS with its default thread count is pathologically slow on this 2-core
machine when other processes compete for the cores; --blas-threads 1 is the
stable setting, and timings should be taken on an otherwise idle machine.
"""

import argparse
import json
import math
import os
import sys
import time


def _preset_blas_threads(argv):
    # BLAS thread pools are sized when numpy is imported, so honour
    # --blas-threads before the import.
    for k, a in enumerate(argv):
        val = None
        if a == "--blas-threads" and k + 1 < len(argv):
            val = argv[k + 1]
        elif a.startswith("--blas-threads="):
            val = a.split("=", 1)[1]
        if val is not None:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = val


_preset_blas_threads(sys.argv[1:])

import numpy as np  # noqa: E402

CHUNK = 500

SCORES = {
    "insomnia": ["f1200"],
    "depression": ["f2050", "f2060"],
    "anxiety": ["f1970", "f1990", "f2010"],
}
VISITS = ["0", "2"]
COVARIATES = ["age", "sex", "height", "handedness"]


def read_tsv(path):
    """Read a tab-separated table: returns (header, eids, float matrix of the other columns)."""
    with open(path, "r", newline="") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        if header[0] != "eid":
            sys.exit(f"{path}: first column must be 'eid', got {header[0]!r}")
        eids = []
        rows = []
        ncol = len(header)
        for lineno, line in enumerate(fh, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != ncol:
                sys.exit(f"{path}:{lineno}: {len(fields)} fields, expected {ncol}")
            eids.append(fields[0])
            rows.append([float(v) if v != "" else math.nan for v in fields[1:]])
    mat = np.array(rows, dtype=float).reshape(len(rows), ncol - 1)
    return header[1:], eids, mat


def prepare(directory, outcomes):
    p_cols, p_eids, p_mat = read_tsv(os.path.join(directory, "pheno.tsv"))
    i_cols, i_eids, i_mat = read_tsv(os.path.join(directory, "idps.tsv"))

    idp_index = {}
    for k, e in enumerate(i_eids):
        if e in idp_index:
            sys.exit(f"idps.tsv: duplicate eid {e}")
        idp_index[e] = k
    seen = set()
    prow, irow = [], []
    for k, e in enumerate(p_eids):
        if e in seen:
            sys.exit(f"pheno.tsv: duplicate eid {e}")
        seen.add(e)
        j = idp_index.get(e)
        if j is not None:
            prow.append(k)
            irow.append(j)
    p_mat = p_mat[prow]
    i_mat = i_mat[irow]
    col = {c: p_mat[:, k] for k, c in enumerate(p_cols)}

    scores = {}
    for name in outcomes:
        per_visit = []
        for v in VISITS:
            items = [col[f"{field}_{v}"] for field in SCORES[name]]
            per_visit.append(np.sum(items, axis=0))  # NaN unless every item present
        visits = np.column_stack(per_visit)
        present = ~np.isnan(visits)
        count = present.sum(axis=1)
        total = np.where(present, visits, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores[name] = np.where(count > 0, total / np.maximum(count, 1), np.nan)

    cov = np.column_stack([col[c] for c in COVARIATES])
    keep = ~np.isnan(cov).any(axis=1) & ~np.isnan(i_mat).any(axis=1)
    for name in outcomes:
        keep &= ~np.isnan(scores[name])
    return (
        {name: s[keep] for name, s in scores.items()},
        cov[keep],
        i_mat[keep],
        i_cols,
        int(len(p_eids)),
        int(len(prow)),
    )


def zscore(v, axis=0):
    return (v - v.mean(axis=axis)) / v.std(axis=axis, ddof=1)


def run(scores, cov, idps, outcomes, permutations, method="lstsq"):
    """The timed analysis. Returns list of (outcome, feature_index, t_obs, p_perm)."""
    n = cov.shape[0]
    b = permutations

    rng = np.random.default_rng(0)
    perms = rng.permuted(np.tile(np.arange(n, dtype=np.int32), (b, 1)), axis=1) if b else None

    age, sex, height, hand = (cov[:, k] for k in range(4))
    covs = np.column_stack([age, sex, age * age, age * sex, height, hand])
    covs = zscore(covs)
    p = 2 + covs.shape[1]
    df = n - p

    idz = zscore(idps)
    nfeat = idz.shape[1]

    if method == "fwl":
        # Frisch-Waugh-Lovell: project the covariates out once; then the t of
        # every IDP for every permuted outcome of a chunk comes from one GEMM.
        C = np.column_stack([np.ones(n), covs])
        Qc, _ = np.linalg.qr(C)
        Xr = idz - Qc @ (Qc.T @ idz)
        sxx = np.einsum("ij,ij->j", Xr, Xr)
        XrT = np.ascontiguousarray(Xr.T)

        def all_t(Y):  # Y: n x m -> K x m
            qy = Qc.T @ Y
            ryy = np.einsum("ij,ij->j", Y, Y) - np.einsum("ij,ij->j", qy, qy)
            G = XrT @ Y
            rss = ryy[None, :] - G * G / sxx[:, None]
            return G / np.sqrt(sxx[:, None] * rss / df)

        results = []
        for name in outcomes:
            y = zscore(scores[name])
            t_obs = all_t(y[:, None])[:, 0]
            abs_obs = np.abs(t_obs)
            exceed = np.zeros(nfeat, dtype=np.int64)
            for start in range(0, b, CHUNK):
                Yp = y[perms[start:start + CHUNK]].T
                exceed += np.count_nonzero(np.abs(all_t(Yp)) >= abs_obs[:, None], axis=1)
            pvals = (1.0 + exceed) / (1.0 + b)
            results.extend((name, j, float(t_obs[j]), float(pvals[j])) for j in range(nfeat))
        return results

    # Design buffer reused across features: [const, idp, covariates].
    X = np.empty((n, p), order="F")
    X[:, 0] = 1.0
    X[:, 2:] = covs

    if method == "lstsq":
        # Per-feature inv(X'X)[1,1] (independent of the outcome).
        c11 = np.empty(nfeat)
        for j in range(nfeat):
            X[:, 1] = idz[:, j]
            c11[j] = np.linalg.inv(X.T @ X)[1, 1]

        def tstats(j, Y):
            X[:, 1] = idz[:, j]
            coef, rss, rank, _ = np.linalg.lstsq(X, Y, rcond=None)
            if rank != p or rss.size == 0:
                r = Y - X @ coef
                rss = np.einsum("ij,ij->j", r, r)
            return coef[1] / np.sqrt(rss / df * c11[j])
    elif method == "qr":
        # Per-feature thin QR once; then coef = R^-1 Q'Y and rss = |Y|^2 - |Q'Y|^2.
        Qs, Rinv_row = [], np.empty((nfeat, p))
        for j in range(nfeat):
            X[:, 1] = idz[:, j]
            Q, R = np.linalg.qr(X)
            Qs.append(np.ascontiguousarray(Q.T))
            Rinv_row[j] = np.linalg.inv(R)[1]
        c11 = np.einsum("ij,ij->i", Rinv_row, Rinv_row)

        def tstats(j, Y):
            qy = Qs[j] @ Y
            rss = np.einsum("ij,ij->j", Y, Y) - np.einsum("ij,ij->j", qy, qy)
            return (Rinv_row[j] @ qy) / np.sqrt(rss / df * c11[j])
    else:
        raise ValueError(method)

    results = []
    for name in outcomes:
        y = zscore(scores[name])
        t_obs = np.array([tstats(j, y[:, None])[0] for j in range(nfeat)])
        abs_obs = np.abs(t_obs)
        exceed = np.zeros(nfeat, dtype=np.int64)
        for start in range(0, b, CHUNK):
            Yp = y[perms[start:start + CHUNK]].T  # n x chunk, F-contiguous
            for j in range(nfeat):
                exceed[j] += int(np.count_nonzero(np.abs(tstats(j, Yp)) >= abs_obs[j]))
        pvals = (1.0 + exceed) / (1.0 + b)
        results.extend((name, j, float(t_obs[j]), float(pvals[j])) for j in range(nfeat))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--permutations", type=int, default=5000)
    ap.add_argument("--outcomes", default="insomnia,depression,anxiety")
    ap.add_argument("--limit-features", type=int, default=None)
    ap.add_argument("--method", choices=["lstsq", "qr", "fwl"], default="lstsq",
                    help="lstsq: per-IDP np.linalg.lstsq with the n x chunk RHS (default); "
                         "qr: per-IDP thin QR computed once, then one GEMM per chunk; "
                         "fwl: covariates projected out once, all IDPs in one GEMM per chunk")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="set OPENBLAS/OMP/MKL_NUM_THREADS (must be decided before numpy loads)")
    ap.add_argument("--out", default=None, help="optional TSV of outcome, feature, n, t, p_perm")
    args = ap.parse_args()

    outcomes = [o.strip() for o in args.outcomes.split(",") if o.strip()]
    for o in outcomes:
        if o not in SCORES:
            sys.exit(f"unknown outcome {o!r}; choose from {','.join(SCORES)}")
    if args.permutations < 0:
        sys.exit("--permutations must be >= 0")

    t0 = time.perf_counter()
    scores, cov, idps, idp_names, n_pheno, n_joined = prepare(args.dir, outcomes)
    prep_seconds = time.perf_counter() - t0
    if args.limit_features is not None:
        idps = idps[:, : args.limit_features]
        idp_names = idp_names[: args.limit_features]
    n = cov.shape[0]
    if n <= 9:
        sys.exit(f"too few complete rows: {n}")
    print(f"prep: {n_pheno} pheno rows, {n_joined} joined, {n} complete; "
          f"{idps.shape[1]} features; {prep_seconds:.2f} s (not timed)", file=sys.stderr)

    t0 = time.perf_counter()
    results = run(scores, cov, idps, outcomes, args.permutations, args.method)
    seconds = time.perf_counter() - t0
    print(f"timed analysis: {seconds:.3f} s", file=sys.stderr)

    if args.out:
        with open(args.out, "w", newline="\n") as fh:
            fh.write("outcome\tfeature\tn\tt\tp_perm\n")
            for name, j, t, pv in results:
                fh.write(f"{name}\t{idp_names[j]}\t{n}\t{t:.17g}\t{pv:.17g}\n")

    print(json.dumps({
        "seconds": seconds,
        "tests": len(results),
        "permutations": args.permutations,
        "n": n,
        "features": idps.shape[1],
        "outcomes": len(outcomes),
        "prep_seconds": prep_seconds,
        "method": args.method,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "numpy": np.__version__,
    }))


if __name__ == "__main__":
    main()
