#!/usr/bin/env python3
"""Lay out public chest-CT slice collections as class-folder trees, to regression-test the data rules.

Why (issue #27): the data rules (body crop, copy / same-scan detection) were tuned on
../shared/data/chest-ct-scan and ../shared/data/tcga-ct-dicom. They must also hold on collections
they were not tuned on: other hospitals, scanners, windows and formats (PNG, JPEG, DICOM), with and
without the scanner table in view, and with runs of adjacent slices of one scan.

Each entry of COLLECTIONS pins a public GitHub repository and the exact commit read. Nothing is
downloaded: files come from the project's git mirror (bare repositories) at
$CTDISTILL_MIRROR_ROOT/<owner>+<name>/repo (default root /work/.mirror). The script writes
<out>/<name>/<class>/<file> (no splits; file names unchanged, DICOM kept as .dcm) and
<out>/<name>/SOURCE.json (repo, commit, paths, counts, formats). A class holding more than CAP files
is cut to CAP: files in natural (numeric-aware) sorted order, kept as evenly spaced runs of RUN
consecutive files, so adjacent slices survive where the collection is in scan order.
An existing <out>/<name>/ is replaced.

Run (from the repository root):
    .venv/bin/python bench/datasets.py                       # every collection -> collections/
    .venv/bin/python bench/datasets.py --only iq_othnccd --out /tmp/collections
"""
import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

CAP, RUN = 300, 30
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")
_PETCT = "Lung-PET-CT-Dx/manifest-1675442780019/Lung-PET-CT-Dx/"
_LUNA = "model/pipeline_code/reference_bank/dynamic_normal_reference_bank_three_patients_v1/"
_IQ = "The IQ-OTHNCCD lung cancer dataset/"

# name -> repo, commit, classes (class folder -> directory in the repo; its files, not subfolders), note
COLLECTIONS = {
    "ucsd_covid_ct": dict(
        repo="GKasperek/data_c19_cropped", commit="2f7fa6d90ab9e1ed66fe546855ce7367d48d4df5",
        classes={"covid": "CT_COVID", "non_covid": "CT_NonCOVID"},
        note="Copy of UCSD-AI4H/COVID-CT (Zhao et al. 2020): slices cut out of figures in medRxiv/bioRxiv "
             "papers, many hospitals. Mixed PNG (some RGBA) and JPEG, mixed sizes and windows, some with "
             "arrows/labels. Mostly tight crops, table rarely visible. Not in scan order (a few "
             "'%0,%1..' sub-panel runs). Licence: copyright with the papers' publishers, research use."),
    "lung_pet_ct_dx": dict(
        repo="huyenbui117/lung_CT", commit="520adfe9e2e8e2b8c02985b228002c5b2997e5b6",
        classes={
            "A0001_5mm_L": _PETCT + "Lung_Dx-A0001/04-04-2007-NA-Chest-07990/2.000000-5mm-40805",
            "A0001_5mm_B": _PETCT + "Lung_Dx-A0001/04-04-2007-NA-Chest-07990/3.000000-5mm-41315",
            "A0002_B70f": _PETCT + "Lung_Dx-A0002/04-25-2007-NA-ThoraxAThoraxRoutine Adult-34834/"
                                   "2.000000-ThoraxRoutine  8.0.0  B70f-62919",
            "A0002_B40f": _PETCT + "Lung_Dx-A0002/04-25-2007-NA-ThoraxAThoraxRoutine Adult-34834/"
                                   "3.000000-ThoraxRoutine  8.0.0  B40f-10983"},
        note="TCIA Lung-PET-CT-Dx (CC BY 4.0), 2 adenocarcinoma patients, DICOM CT 512x512 uint16 (HU via "
             "rescale). Classes are series: Philips 5 mm (kernels L and B) and Siemens 8 mm (B70f, B40f); "
             "the two series of a patient share slice positions, so every slice has a same-position twin "
             "in the other class. Table visible. Files 1-NN = instance number, whole series in scan order."),
    "luna16_stacks": dict(
        repo="jammi123852/lung-ct-anomaly", commit="40c266cc80202a34a1eb5a8e2fade9c68ed8c981",
        classes={f"patient_{i}": _LUNA + f"normal_patient_{i}/slices_png" for i in (1, 2, 3)},
        note="LUNA16 (LIDC-IDRI subset, CC BY 4.0) scans of 3 patients used as 'normal' references, "
             "rendered to 8-bit PNG 512x512, lung window L-600/W1500. Classes are patients (whole scans, "
             "z_000.. every slice in scan order), not diagnoses. Table visible. Repo has no licence file."),
    "iq_othnccd": dict(
        repo="Yusshiro/IQ-OTHNCCD-lung-cancer-detection", commit="4cbd7c966c8530e1d55b3ecbf9342b8e06cbc06d",
        classes={"benign": _IQ + "Bengin cases", "malignant": _IQ + "Malignant cases",
                 "normal": _IQ + "Normal cases"},
        note="IQ-OTH/NCCD lung cancer dataset (Iraq, 2019; via Kaggle): JPEG 8-bit 512x512, harsh narrow "
             "window (noisy, near-binary lungs), scanner table visible. 'case (N)' numbering runs through "
             "a few patients, each a run of adjacent slices (natural order). Licence not stated in the repo."),
}


def natural_key(name):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def pick(names, cap=CAP, run=RUN):
    """All names if they fit; else cap // run evenly spaced runs of `run` consecutive names."""
    if len(names) <= cap:
        return list(names)
    n_runs = max(1, cap // run)
    span = len(names) - run
    starts = [round(i * span / max(1, n_runs - 1)) for i in range(n_runs)]
    keep = sorted({j for s in starts for j in range(s, s + run)})
    return [names[j] for j in keep]


class Mirror:
    """Read-only access to one bare mirror at a pinned commit."""

    def __init__(self, repo, commit):
        root = Path(os.environ.get("CTDISTILL_MIRROR_ROOT", "/work/.mirror"))
        self.repo, self.commit = repo, commit
        self.gitdir = root / repo.replace("/", "+") / "repo"
        if not (self.gitdir / "objects").is_dir():
            sys.exit(f"datasets.py: no mirror of {repo} at {self.gitdir}; fetch github:{repo} into the "
                     f"mirror root ($CTDISTILL_MIRROR_ROOT, default /work/.mirror) and rerun")
        if self._git("cat-file", "-e", commit + "^{commit}", check=False).returncode:
            sys.exit(f"datasets.py: mirror {self.gitdir} lacks commit {commit}; fetch github:{repo} again")
        self._batch = None

    def _git(self, *args, check=True):
        return subprocess.run(["git", "--git-dir", str(self.gitdir), *args], capture_output=True, check=check)

    def ls(self, path):
        """(name, blob sha) of the files directly in directory `path` at the pinned commit."""
        out = self._git("ls-tree", "-z", self.commit, "--", path.rstrip("/") + "/").stdout.decode()
        rows = [e.split("\t", 1) for e in out.split("\0") if e]
        files = [(p.rsplit("/", 1)[-1], meta.split()[2]) for meta, p in rows if meta.split()[1] == "blob"]
        if not files:
            sys.exit(f"datasets.py: {self.repo}@{self.commit[:12]} has no files under {path!r}")
        return files

    def read(self, sha):
        if self._batch is None:
            self._batch = subprocess.Popen(["git", "--git-dir", str(self.gitdir), "cat-file", "--batch"],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._batch.stdin.write(sha.encode() + b"\n")
        self._batch.stdin.flush()
        size = int(self._batch.stdout.readline().split()[2])
        data = self._batch.stdout.read(size + 1)[:-1]
        return data

    def close(self):
        if self._batch is not None:
            self._batch.stdin.close()
            self._batch.wait()


def describe(name, data):
    """Short format label such as 'PNG L 512x512' or 'DICOM CT 512x512'."""
    if name.lower().endswith(".dcm"):
        import pydicom
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        return f"DICOM {ds.get('Modality', '?')} {ds.Columns}x{ds.Rows}"
    from PIL import Image
    with Image.open(io.BytesIO(data)) as im:
        return f"{im.format} {im.mode} {im.size[0]}x{im.size[1]}"


def build(name, spec, out):
    mirror = Mirror(spec["repo"], spec["commit"])
    dest = out / name
    if dest.exists():
        shutil.rmtree(dest)
    classes, formats = {}, Counter()
    try:
        for cls, path in spec["classes"].items():
            files = sorted((f for f in mirror.ls(path) if f[0].lower().endswith(IMAGE_SUFFIXES)),
                           key=lambda f: natural_key(f[0]))
            taken = pick(files)
            (dest / cls).mkdir(parents=True)
            for fname, sha in taken:
                data = mirror.read(sha)
                if data.startswith(b"version https://git-lfs"):
                    sys.exit(f"datasets.py: {spec['repo']}:{path}/{fname} is a Git LFS pointer, not an image")
                (dest / cls / fname).write_bytes(data)
                formats[describe(fname, data)] += 1
            classes[cls] = dict(path=path, available=len(files), taken=len(taken),
                                first=taken[0][0], last=taken[-1][0])
    finally:
        mirror.close()
    source = dict(name=name, repo=spec["repo"], commit=spec["commit"], url=f"https://github.com/{spec['repo']}",
                  note=spec["note"], cap_per_class=CAP, run_length=RUN, order="natural sort of file names",
                  classes=classes, total=sum(c["taken"] for c in classes.values()),
                  formats=dict(formats.most_common()))
    (dest / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n")
    counts = ", ".join(f"{c}={v['taken']}/{v['available']}" for c, v in classes.items())
    top = "; ".join(f"{k} x{v}" for k, v in formats.most_common(3))
    print(f"{name}: {counts} | {top}{' ...' if len(formats) > 3 else ''}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "collections",
                    help="output root (default: <repo>/collections)")
    ap.add_argument("--only", choices=sorted(COLLECTIONS), help="build just this collection")
    args = ap.parse_args(argv)
    names = [args.only] if args.only else list(COLLECTIONS)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        build(name, COLLECTIONS[name], args.out)
    print(f"wrote {len(names)} collection(s) under {args.out}")


if __name__ == "__main__":
    main()
