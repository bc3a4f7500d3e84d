#!/usr/bin/env python3
"""Benchmark: peak memory and wall time of each stage kind, the basis of the Slurm executor's
default `[resources.<kind>]` (src/exec/slurm/mod.rs, `default_resources`).

Each study is submitted with `run --executor slurm --max-array 100000` against stand-in
`sbatch`/`scontrol`/`squeue`/`scancel` (so every array task holds exactly one stage), and then
every array task and the publish job is run here, one after another, as Slurm would run it:
`neurospec exec --submission DIR --array A --task T` on one core. Each is a child process whose
peak resident memory (ru_maxrss) and wall time are read with wait4, so a figure is exactly what
one Slurm task of that stage would use.

    python benches/stage_resources.py [--neurospec target/debug/neurospec] \
        [--study studies/ketamine-amygdala.toml ...] [--set 'subjects = 49=subjects = 12' ...]

Prints, per stage kind, the number of stages, the largest peak RSS and the longest wall time.
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
sys.path.insert(0, HERE)
from slurm import install_stand_ins  # noqa: E402  (the same stand-in set-up as benches/slurm.py)
REPO = os.path.dirname(HERE)

STAND_INS = {
    "sbatch": '#!/bin/sh\nn=$(($(cat "$BENCH_DIR/sbatch-calls" 2>/dev/null || echo 0) + 1))\n'
    'echo $n > "$BENCH_DIR/sbatch-calls"\necho $((1000 + n))\n',
    "scontrol": "#!/bin/sh\necho 'MaxArraySize            = 100001'\n",
    "squeue": "#!/bin/sh\nexit 0\n",
    "scancel": "#!/bin/sh\nexit 0\n",
}


def measured(cmd, env, cwd):
    """Run a command; return (exit status, peak RSS in MB, wall seconds, stderr)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, time.monotonic() - started, stderr.decode(errors="replace")


def measure_study(neurospec, study, replacements, work):
    name = os.path.splitext(os.path.basename(study))[0]
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir)
    with open(study) as f:
        text = f.read()
    for old, new in replacements:
        if old in text:
            text = text.replace(old, new)
    study_file = os.path.join(run_dir, os.path.basename(study))
    with open(study_file, "w") as f:
        f.write(text)
    env = dict(os.environ, PATH=os.path.join(work, "bin") + os.pathsep + os.environ["PATH"], BENCH_DIR=run_dir)
    env.pop("SLURM_CPUS_PER_TASK", None)
    proc = subprocess.run([neurospec, "run", study_file, "--executor", "slurm", "--json", "--max-array", "100000"],
                          cwd=run_dir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{study}: submission failed:\n{proc.stderr}")
    folder = json.loads(proc.stdout.strip().splitlines()[-1])["submission"]
    with open(os.path.join(folder, "submission.json")) as f:
        submission = json.load(f)
    rows = []
    for a, array in enumerate(submission["arrays"]):
        for t in range(len(array["tasks"])):
            code, rss, wall, err = measured([neurospec, "exec", "--submission", folder, "--array", str(a),
                                             "--task", str(t)], env, run_dir)
            if code != 0:
                sys.exit(f"{study}: task {t} of array {a} ({array['kind']}) failed:\n{err}")
            rows.append((array["kind"], rss, wall))
    code, rss, wall, err = measured([neurospec, "exec", "--submission", folder, "--publish"], env, run_dir)
    if code != 0:
        sys.exit(f"{study}: the publish job failed:\n{err}")
    rows.append(("publish", rss, wall))
    return name, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurospec", default=os.path.join(REPO, "target/debug/neurospec"))
    ap.add_argument("--study", nargs="+", default=[os.path.join(REPO, "studies", s) for s in
                                                   ("ketamine-amygdala.toml", "amygdala-wellbeing.toml",
                                                    "ukb-symptoms.toml")])
    ap.add_argument("--set", nargs="*", default=[], metavar="OLD=NEW",
                    help="text replacements in the study files (e.g. a smaller cohort)")
    args = ap.parse_args()
    replacements = [tuple(r.split("=", 1)) for r in args.set]
    neurospec = os.path.abspath(args.neurospec)
    work = tempfile.mkdtemp(prefix="neurospec-stage-resources-")
    try:
        bin_dir = install_stand_ins(work, STAND_INS)
        overall = {}
        for study in args.study:
            name, rows = measure_study(neurospec, study, replacements, work)
            print(f"\n{name}")
            print(f"{'kind':>12} {'stages':>6} {'max RSS MB':>10} {'max wall s':>10} {'total wall s':>12}")
            kinds = sorted({k for k, _, _ in rows})
            for kind in kinds:
                mine = [(r, w) for k, r, w in rows if k == kind]
                rss, wall = max(r for r, _ in mine), max(w for _, w in mine)
                print(f"{kind:>12} {len(mine):>6} {rss:>10.0f} {wall:>10.1f} {sum(w for _, w in mine):>12.1f}")
                old = overall.get(kind, (0, 0.0, ""))
                overall[kind] = (max(old[0], rss), max(old[1], wall), old[2] + (" " if old[2] else "") + name)
            shutil.rmtree(os.path.join(work, name), ignore_errors=True)
        print("\nall studies: kind, largest peak RSS (MB), longest wall (s)")
        for kind, (rss, wall, studies) in sorted(overall.items()):
            print(f"{kind:>12} {rss:>8.0f} {wall:>8.1f}  ({studies})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
