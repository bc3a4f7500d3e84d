#!/usr/bin/env python3
"""Benchmark: `neurospec extract` vs nilearn vs plain decompression, and 1 → 2 thread scaling.

    python benches/extract.py [--neurospec target/release/neurospec] [--volumes 200] [--subjects 20]

Needs nibabel + nilearn (tests/fixtures/imaging/requirements.txt) and Debian's `mricron-data`
(the AICHA atlas, 192 regions, 2 mm MNI: /usr/share/mricron/templates/AICHAmc.nii.gz).
Writes a 91×109×91×V float32 .nii.gz on the AICHA grid (signal inside the atlas, zeros outside,
as in a brain-masked BOLD image) to a temporary folder, then times, on the same file:

  gzip   `gzip -dc FILE > /dev/null`
  ours   `neurospec extract --bold FILE --atlas AICHA --labels AICHA.txt --connectivity pearson`
  nilearn nibabel load + NiftiLabelsMasker(AICHA).fit_transform + np.corrcoef
  batch  `neurospec extract --manifest` over N copies (symlinks) with -j 1 and -j 2

Peak memory is each command's max RSS as GNU time reports it (Debian package `time`).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ATLAS = "/usr/share/mricron/templates/AICHAmc.nii.gz"
LABELS = "/usr/share/mricron/templates/AICHAmc.nii.txt"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

NILEARN = r"""
import sys, numpy as np, nibabel as nib
from nilearn.maskers import NiftiLabelsMasker
img = nib.load(sys.argv[1])
ts = NiftiLabelsMasker(labels_img=sys.argv[2], strategy="mean").fit_transform(img)
c = np.corrcoef(ts.T)
print(ts.shape, c.shape)
"""


def run(cmd, stdout=subprocess.DEVNULL):
    """Wall seconds and peak RSS (MB). RSS comes from GNU time, not from wait4 on our own child:
    a child forked from this process would count the generated image in our memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M"] + list(cmd), stdout=stdout, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode()
    status = proc.wait()
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{err}")
    return wall, int(err.strip().splitlines()[-1]) / 1024.0


def best(n, cmd, **kw):
    results = [run(cmd, **kw) for _ in range(n)]
    return min(r[0] for r in results), max(r[1] for r in results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurospec", default=os.path.join(REPO, "target/release/neurospec"))
    ap.add_argument("--volumes", type=int, default=200)
    ap.add_argument("--subjects", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import numpy as np
    import nibabel as nib

    exe = os.path.abspath(args.neurospec)
    work = tempfile.mkdtemp(prefix="neurospec-extract-bench-")
    try:
        atlas = nib.load(ATLAS)
        labels = np.asarray(atlas.dataobj)
        inside = labels > 0
        rng = np.random.default_rng(0)
        shape = labels.shape + (args.volumes,)
        data = np.zeros(shape, dtype=np.float32)
        latent = rng.standard_normal((args.volumes, 8)).astype(np.float32)
        region_weights = rng.standard_normal((int(labels.max()) + 1, 8)).astype(np.float32)
        for t in range(args.volumes):
            vol = np.zeros(labels.shape, dtype=np.float32)
            vol[inside] = 1000 + 20 * rng.standard_normal(int(inside.sum())).astype(np.float32)
            vol[inside] += (region_weights[labels[inside]] @ latent[t]) * 5
            data[..., t] = vol
        bold = os.path.join(work, "bold.nii.gz")
        img = nib.Nifti1Image(data, atlas.affine)
        img.header.set_xyzt_units("mm", "sec")
        img.header["pixdim"][4] = 2.0
        t0 = time.perf_counter()
        nib.save(img, bold)
        del data
        size = os.path.getsize(bold) / 1e6
        print(f"image {shape} float32, {size:.0f} MB gz (written in {time.perf_counter() - t0:.1f} s)")

        g_wall, _ = best(args.repeat, ["sh", "-c", f"gzip -dc {bold} > /dev/null"])
        ours = [exe, "extract", "--bold", bold, "--atlas", ATLAS, "--labels", LABELS, "--out",
                os.path.join(work, "ts.tsv"), "--connectivity", "pearson", "--connectivity-out",
                os.path.join(work, "conn.tsv")]
        o_wall, o_rss = best(args.repeat, ours)
        n_wall, n_rss = best(1, [sys.executable, "-c", NILEARN, bold, ATLAS])

        manifest = os.path.join(work, "manifest.tsv")
        with open(manifest, "w") as fh:
            fh.write("bold\tout\n")
            for s in range(args.subjects):
                link = os.path.join(work, f"sub-{s:02d}_bold.nii.gz")
                os.symlink(bold, link)
                fh.write(f"sub-{s:02d}_bold.nii.gz\tsub-{s:02d}_ts.tsv\n")
        batch = [exe, "extract", "--manifest", manifest, "--atlas", ATLAS, "--labels", LABELS]
        j1, _ = run(batch + ["-j", "1"])
        j2, j2_rss = run(batch + ["-j", "2"])

        print(f"gzip -dc                      {g_wall:7.2f} s")
        print(f"neurospec extract + pearson   {o_wall:7.2f} s   peak {o_rss:6.0f} MB")
        print(f"nilearn masker + corrcoef     {n_wall:7.2f} s   peak {n_rss:6.0f} MB")
        print(f"speed-up vs nilearn           {n_wall / o_wall:7.1f}x   (target >= 5x)")
        print(f"time vs gzip -dc              {o_wall / g_wall:7.2f}x   (target <= 0.6x)")
        print(f"peak memory                   {o_rss:7.0f} MB  (target < 200 MB)")
        print(f"{args.subjects}-run batch: -j 1 {j1:.1f} s, -j 2 {j2:.1f} s (peak {j2_rss:.0f} MB): "
              f"speed-up {j1 / j2:.2f}x (target >= 1.8x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
