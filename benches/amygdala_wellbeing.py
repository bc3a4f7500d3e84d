#!/usr/bin/env python3
"""Benchmark: the amygdala-wellbeing study (500 simulated subjects) from a cold cache, then from
a warm one after the factor model is edited (no image is re-read), then a no-op rerun.

    python benches/amygdala_wellbeing.py [--neurospec target/release/neurospec]

Simulating the cohort (writing 500 BOLD runs) is timed separately, by `neurospec check`.
Peak memory from GNU time.
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


def timed(cmd, cwd):
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024.0, proc.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurospec", default=os.path.join(REPO, "target/release/neurospec"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="neurospec-amygdala-bench-")
    try:
        study = os.path.join(work, "study.toml")
        shutil.copy(os.path.join(REPO, "studies/amygdala-wellbeing.toml"), study)
        wall, rss, _ = timed([args.neurospec, "check", "study.toml"], work)
        print(f"simulate 500 subjects + check: {wall:7.2f} s  peak {rss:6.0f} MB")
        wall, rss, out = timed([args.neurospec, "run", "study.toml", "--json"], work)
        cold = json.loads(out)
        print(f"cold run ({len(cold['executed_stages'])} stages):  {wall:7.2f} s  peak {rss:6.0f} MB")
        text = open(study).read().replace('rotation = "oblimin"', 'rotation = "promax"')
        open(study, "w").write(text)
        wall_warm, rss, out = timed([args.neurospec, "run", "study.toml", "--json"], work)
        warm = json.loads(out)
        images = [s for s in warm["executed_stages"] if s.startswith("imaging/")]
        print(f"warm run, factor model edited ({len(warm['executed_stages'])} stages, {len(images)} imaging): "
              f"{wall_warm:7.2f} s  peak {rss:6.0f} MB  ({wall / wall_warm:.1f}x faster than cold)")
        wall, rss, _ = timed([args.neurospec, "run", "study.toml", "--json"], work)
        print(f"no-op rerun: {wall:7.3f} s  peak {rss:6.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
