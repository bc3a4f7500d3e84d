#!/usr/bin/env python3
"""Benchmark: submitting a large plan to Slurm. A synthetic plan of N per-run stages (one tiny
input file each) fanning into a connectome and a table, at N = 500, 5,000 and 40,000:
building the plan, submitting it to an empty cache (`sbatch` calls, arrays, array tasks, size
of the submitted plan), and submitting again once every stage is cached, twice (no-ops: nothing is
submitted; the first also merges the tasks' stat-cache journals, the second is the steady state). Stand-ins for sbatch, scontrol (MaxArraySize = 1001, Slurm's default), squeue and
scancel are put on PATH; each sbatch call is counted, so the submission cost measured is
neurospec's own, not the controller's.

    python benches/slurm.py [--neurospec target/debug/neurospec] [--runs 500 5000 40000]

To profile the no-op alone: `neurospec bench-slurm --runs N --dir DIR` once (it leaves DIR
filled), then `neurospec bench-slurm --runs N --dir DIR --noop-only` (stand-ins on PATH for both).

Targets (issue 13): submit < 30 s and no-op rerun < 2 s at 40,000 runs.
"""

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

STAND_INS = {
    # Count the call, print a fresh job id (--parsable).
    "sbatch": '#!/bin/sh\nn=$(($(cat "$BENCH_DIR/sbatch-calls" 2>/dev/null || echo 0) + 1))\n'
    'echo $n > "$BENCH_DIR/sbatch-calls"\necho $((1000 + n))\n',
    "scontrol": "#!/bin/sh\necho 'MaxArraySize            = 1001'\n",
    "squeue": "#!/bin/sh\nexit 0\n",
    "scancel": "#!/bin/sh\nexit 0\n",
}


def install_stand_ins(work, stand_ins):
    """Write the stand-in Slurm commands into WORK/bin (executable); return that folder."""
    bin_dir = os.path.join(work, "bin")
    os.makedirs(bin_dir)
    for name, text in stand_ins.items():
        path = os.path.join(bin_dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return bin_dir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurospec", default=os.path.join(REPO, "target/debug/neurospec"))
    ap.add_argument("--runs", type=int, nargs="+", default=[500, 5000, 40000])
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="neurospec-slurm-bench-")
    try:
        bin_dir = install_stand_ins(work, STAND_INS)
        rows = []
        for runs in args.runs:
            run_dir = os.path.join(work, f"runs-{runs}")
            os.makedirs(run_dir)
            env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], BENCH_DIR=run_dir)
            proc = subprocess.run(
                [args.neurospec, "bench-slurm", "--runs", str(runs), "--dir", run_dir],
                capture_output=True, text=True, env=env,
            )
            if proc.returncode != 0:
                sys.exit(f"bench-slurm --runs {runs} failed:\n{proc.stderr}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            with open(os.path.join(run_dir, "sbatch-calls")) as f:
                row["sbatch_seen"] = int(f.read())
            rows.append(row)
            shutil.rmtree(run_dir)
        base = rows[0]
        print(f"{'runs':>7} {'stages':>7} {'compile s':>9} {'submit s':>9} {'sbatch':>6} {'arrays':>6} "
              f"{'tasks':>6} {'plan MB':>8} {'cache MB':>9} {'no-op s':>8} {'again s':>8}  (ratio to {base['runs']} runs: submit, no-op)")
        for r in rows:
            print(f"{r['runs']:>7} {r['stages']:>7} {r['compile_seconds']:>9.3f} {r['submit_seconds']:>9.3f} "
                  f"{r['sbatch_seen']:>6} {r['arrays']:>6} {r['array_tasks']:>6} {r['submission_bytes'] / 1e6:>8.2f} "
                  f"{r['cache_bytes'] / 1e6:>9.1f} {r['noop_seconds']:>8.3f} {r['noop_again_seconds']:>8.3f}  "
                  f"(x{r['submit_seconds'] / base['submit_seconds']:.1f}, x{r['noop_again_seconds'] / base['noop_again_seconds']:.1f})")
            assert r["noop_submitted_nothing"], "a no-op rerun submitted jobs"
        print(f"\n{'runs':>7} {'whole plan read s':>17} {'task slice read s':>17} {'largest slice MB':>16}  "
              "(what one array task reads: before, the whole plan; now, its slice)")
        for r in rows:
            print(f"{r['runs']:>7} {r['whole_plan_read_seconds']:>17.4f} {r['slice_read_seconds']:>17.5f} "
                  f"{r['slice_bytes_max'] / 1e6:>16.3f}")
            assert r["sbatch_seen"] == r["sbatch_calls"], "sbatch calls counted twice?"
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
