"""cleanvision against ctdistill's data audit on the same image tree: copies, leaks, conflicts, odd images.

    /work/cv-venv/bin/python bench/cleanvision_compare.py [--data DIR] [--n-jobs 1] [--show 6]

cleanvision (cleanlab's ``Imagelab``, default issue types) is not a ctdistill dependency: run this
with a separate venv holding both (``python3.11 -m venv /work/cv-venv && /work/cv-venv/bin/pip
install cleanvision && /work/cv-venv/bin/pip install -e .``). One run of each, side by side,
timed by wall clock (issue #18). Prints Markdown tables: exact and near-duplicate sets and images
found by each, the images and pairs one tool groups and the other does not (with phash and dhash
distances and the grey-pixel distance ``1 - correlation`` at 128 x 128, to judge them), cross-split
copies (a valid/test file whose set holds a file of an earlier split, train < valid < test) and
cross-label sets by each, cleanvision's per-image flags by split and class, and beside them
ctdistill's per-class shortcut flags and framing by split.

A "copy set" of cleanvision is the union of its exact-duplicate sets (md5 of the decoded pixels in
the file's own colour mode) and its near-duplicate sets (identical 64-bit ``imagehash.phash``);
ctdistill's is its ``near_group`` (phash Hamming distance <= the audit threshold, 1, connected
components; every exact group lies inside one).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np
import pandas as pd
from _common import DEFAULT_DATA, use_checkout

ORDER = {"train": 0, "valid": 1, "test": 2}


def partition(paths: list[str], sets: list[list[str]]) -> pd.Series:
    """Group id per path (-1 alone) from possibly overlapping sets, merged into connected components."""
    from scipy.cluster.hierarchy import DisjointSet
    ds = DisjointSet(paths)
    for s in sets:
        for a, b in itertools.pairwise(s):
            ds.merge(a, b)
    roots = pd.Series({p: ds[p] for p in paths})
    ids = roots.map({r: i for i, r in enumerate(roots.unique())})
    return ids.where(ids.map(ids.value_counts()) > 1, -1)


def pairs(groups: pd.Series) -> set[tuple[str, str]]:
    members = groups[groups >= 0].groupby(groups).groups
    return {tuple(sorted(p)) for m in members.values() for p in itertools.combinations(m, 2)}


def findings(groups: pd.Series, table: pd.DataFrame) -> dict:
    """Sets, images, cross-split files and cross-label sets of one partition."""
    t = table.assign(g=groups[table["path"]].to_numpy())
    t = t[t["g"] >= 0]
    order = t["split"].map(ORDER)
    first = order.groupby(t["g"]).transform("min")
    labels = t.groupby("g")["label"].nunique()
    cross = t[order > first]
    return {"sets": t["g"].nunique(), "images": len(t), "cross_split": len(cross),
            "cross_split_by": cross.groupby(["split", "label"]).size().to_dict(),
            "cross_label_sets": [sorted(t.loc[t["g"] == g, "path"].map(short)) for g in labels[labels > 1].index]}


def short(path: str) -> str:
    parts = path.split("/")
    return f"{parts[-3]}/{parts[-2].split('_')[0]}/{parts[-1]}"


def pixel_distance(a: str, b: str) -> float:
    from PIL import Image
    x, y = (np.asarray(Image.open(p).convert("L").resize((128, 128)), np.float64).ravel() for p in (a, b))
    return round(1.0 - float(np.corrcoef(x, y)[0, 1]), 4)


def bits(h: str) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(h), np.uint8))


def pair_rows(pair_set: set, rows: pd.DataFrame, show: int) -> list[str]:
    out = []
    for a, b in sorted(pair_set, key=lambda p: (rows.at[p[0], "split"], p))[:show]:
        ph = int((bits(rows.at[a, "phash"]) != bits(rows.at[b, "phash"])).sum())
        dh = int((bits(rows.at[a, "dhash"]) != bits(rows.at[b, "dhash"])).sum())
        out.append(f"| {short(a)} | {short(b)} | {ph} | {dh} | {pixel_distance(a, b)} |")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--n-jobs", type=int, default=1, help="cleanvision worker processes (ctdistill uses one)")
    parser.add_argument("--show", type=int, default=6, help="disagreeing pairs to list per direction")
    parser.add_argument("--near-bits", type=int, default=2, help="phash distance of the pairs beyond both tools")
    args = parser.parse_args(argv)
    try:
        from cleanvision import Imagelab
    except ImportError:
        sys.exit("cleanvision is not installed: pip install cleanvision (in a separate venv, see the docstring)")
    use_checkout()
    from ctdistill.data.audit import audit_path

    start = time.perf_counter()
    audit = audit_path(args.data)
    t_audit = time.perf_counter() - start
    table = audit.table
    paths = table["path"].tolist()
    start = time.perf_counter()
    lab = Imagelab(filepaths=paths)
    lab.find_issues(n_jobs=args.n_jobs, verbose=False)
    t_cv = time.perf_counter() - start

    cv_exact = partition(paths, lab.info["exact_duplicates"]["sets"])
    cv_copy = partition(paths, lab.info["exact_duplicates"]["sets"] + lab.info["near_duplicates"]["sets"])
    ct_exact = table.set_index("path")["exact_group"]
    ct_copy = table.set_index("path")["near_group"]
    f = {name: findings(g, table) for name, g in
         [("cv_exact", cv_exact), ("ct_exact", ct_exact), ("cv_copy", cv_copy), ("ct_copy", ct_copy)]}

    print(f"{len(paths)} images under {args.data}; one run each, wall clock: ctdistill audit_path "
          f"{t_audit:.1f} s (1 process), cleanvision find_issues {t_cv:.1f} s (n_jobs={args.n_jobs})\n")
    print("| measure | cleanvision | ctdistill |\n|---|---|---|")
    print(f"| exact-duplicate sets / images | {f['cv_exact']['sets']} / {f['cv_exact']['images']} | "
          f"{f['ct_exact']['sets']} / {f['ct_exact']['images']} |")
    print(f"| near-duplicate sets as reported / images | {len(lab.info['near_duplicates']['sets'])} / "
          f"{int(lab.issues['is_near_duplicates_issue'].sum())} | - |")
    print(f"| copy sets (exact or near, merged) / images | {f['cv_copy']['sets']} / {f['cv_copy']['images']} | "
          f"{f['ct_copy']['sets']} / {f['ct_copy']['images']} |")
    print(f"| redundant copies (images - sets) | {f['cv_copy']['images'] - f['cv_copy']['sets']} | "
          f"{f['ct_copy']['images'] - f['ct_copy']['sets']} |")
    print(f"| cross-split files (valid/test with an earlier copy) | {f['cv_copy']['cross_split']} | "
          f"{f['ct_copy']['cross_split']} (audit's own flag: {int(table['cross_split'].sum())}) |")
    for key in sorted(set(f["cv_copy"]["cross_split_by"]) | set(f["ct_copy"]["cross_split_by"])):
        print(f"| &nbsp; cross-split {key[0]}/{key[1]} | {f['cv_copy']['cross_split_by'].get(key, 0)} | "
              f"{f['ct_copy']['cross_split_by'].get(key, 0)} |")
    print(f"| cross-label sets | {len(f['cv_copy']['cross_label_sets'])} | {len(f['ct_copy']['cross_label_sets'])} |")
    for name in ("cv_copy", "ct_copy"):
        for s in f[name]["cross_label_sets"]:
            print(f"\n{name} cross-label set: {', '.join(s)}")

    rows = table.set_index("path")
    for what, a, b in [("exact", cv_exact, ct_exact), ("copy", cv_copy, ct_copy)]:
        only_cv, only_ct = pairs(a) - pairs(b), pairs(b) - pairs(a)
        img_cv = sorted(short(p) for p in paths if a[p] >= 0 and b[p] < 0)
        img_ct = sorted(short(p) for p in paths if b[p] >= 0 and a[p] < 0)
        print(f"\n{what}: pairs only cleanvision groups {len(only_cv)}, only ctdistill {len(only_ct)}; images "
              f"grouped only by cleanvision {len(img_cv)} {img_cv[:args.show]}, only by ctdistill {len(img_ct)} "
              f"{img_ct[:args.show]}")
        for label, pset in [("only cleanvision", only_cv), ("only ctdistill", only_ct)]:
            if pset:
                print(f"\n{what} pairs {label} (first {args.show}):\n\n| image | image | phash bits | "
                      "dhash bits | 1 - corr 128px |\n|---|---|---|---|---|")
                print("\n".join(pair_rows(pset, rows, args.show)))

    # Beyond both tools: pairs of images in different copy sets (or alone) at the next phash distances
    ph = np.stack([bits(h) for h in table["phash"]])
    ones = np.unique(ph.sum(axis=1))
    print(f"\nOnes per 64-bit phash: {ones.tolist()}" + (" (phash sets the bits above the median of its 64 DCT "
          "terms: distances are even, so 'distance <= 1' is the same rule as 'identical hash')" if ones.tolist() == [32]
          else ""))
    dist = (ph[:, None, :] != ph[None, :, :]).sum(axis=-1)
    comp = np.where(ct_copy[paths].to_numpy() >= 0, ct_copy[paths].to_numpy(), -1 - np.arange(len(paths)))
    closest: dict = {}
    for i, j in zip(*np.nonzero(np.triu((dist > 0) & (dist <= args.near_bits), 1)), strict=True):
        if comp[i] != comp[j]:
            key, d = tuple(sorted((comp[i], comp[j]))), pixel_distance(paths[i], paths[j])
            if key not in closest or d < closest[key][0]:
                closest[key] = (d, paths[i], paths[j])
    near = sorted(closest.values())
    print(f"\nPairs of copy sets (or lone images) that neither tool joins, at phash distance <= {args.near_bits}: "
          f"{len(near)}; their closest pair's 1 - corr 128px: {[d for d, *_ in near]}\n\n"
          "| image | image | phash bits | dhash bits | 1 - corr 128px | splits |\n|---|---|---|---|---|---|")
    for _, a, b in near[:args.show * 2]:
        print(pair_rows({(a, b)}, rows, 1)[0] + f" {rows.at[a, 'split']}/{rows.at[b, 'split']} |")

    names = sorted((c[3:-6] for c in lab.issues if c.startswith("is_") and "duplicates" not in c),
                   key=lambda n: n != "odd_size")  # odd_size first
    issues = lab.issues[[f"is_{n}_issue" for n in names]].set_axis(names, axis=1).reindex(paths).astype(int)
    w, h = table["width"].to_numpy(float), table["height"].to_numpy(float)  # as cleanvision measures them:
    size, aspect = pd.Series(np.sqrt(w * h), index=paths), pd.Series(np.minimum(w / h, h / w), index=paths)
    issues.insert(1, "odd_size: larger", issues["odd_size"] * (size > size.median()))
    keys = [table["split"].to_numpy(), table["label"].to_numpy()]
    counts = issues.groupby(keys).sum().rename_axis(["split", "label"])
    counts.insert(0, "n", issues.groupby(keys).size())
    counts["median sqrt(area)"] = size.groupby(keys).median().round(0)
    counts["median aspect (min/max side)"] = aspect.groupby(keys).median().round(3)
    counts.loc[("all", ""), :] = [len(issues), *issues.sum(), round(size.median()), round(aspect.median(), 3)]
    print("\ncleanvision's flags (images flagged) by split and class:\n")
    print(counts.reset_index().to_markdown(index=False))
    print("\nctdistill's shortcut risks per class (audit summary):\n\n| class | median w x h | area vs rest | "
          "body share vs rest | flags |\n|---|---|---|---|---|")
    for r in audit.summary["shortcut_risks"]:
        print(f"| {r['label']} | {r['median_width']:.0f} x {r['median_height']:.0f} | {r['area_ratio_vs_rest']} | "
              f"{r.get('body_share_vs_rest', '-')} | {', '.join(r['flags']) or '-'} |")
    fr = audit.summary["framing"]
    print(f"\nctdistill framing: median body share by split {fr.get('median_body_share')}; splits framed unlike "
          f"train {fr.get('splits_framed_unlike_train')}")


if __name__ == "__main__":
    main()
