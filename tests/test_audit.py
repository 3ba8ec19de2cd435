"""Data audit on small trees with planted copies, and on the real dataset."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_shared_data, save_image
from PIL import Image, ImageDraw

from ctdistill.data.audit import audit_path, dedup_test_mask
from ctdistill.data.dataset import Dataset, Split
from ctdistill.data.numpy_layout import write_numpy


def scene(seed: int, size=(64, 48)) -> np.ndarray:
    """A distinct structured grey image (random ellipses and bars), so perceptual hashes differ."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", size, int(rng.integers(20, 60)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 10)
        box = [x0, y0, x0 + rng.integers(8, size[0] // 2), y0 + rng.integers(8, size[1] // 2)]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=int(rng.integers(80, 255)))
    return np.asarray(img)


@pytest.fixture
def planted(tmp_path):
    root = tmp_path / "data"
    n = 0
    for split, count in (("train", 5), ("valid", 2), ("test", 3)):
        for label, size in (("alpha", (64, 48)), ("beta", (128, 96))):  # beta: a different source size
            for _ in range(count):
                n += 1
                save_image(root / split / label / f"{label}{n}.png", scene(n, size), "PNG")
    original = np.asarray(Image.open(root / "train" / "alpha" / "alpha1.png"))
    save_image(root / "test" / "alpha" / "exact_copy.bmp", original, "BMP")           # same pixels, other format
    save_image(root / "valid" / "alpha" / "reencoded.jpg", original, "JPEG")          # lossy re-encoding
    brighter = np.clip(np.asarray(Image.open(root / "train" / "alpha" / "alpha2.png")).astype(int) + 4, 0, 255)
    save_image(root / "test" / "alpha" / "altered.png", brighter.astype(np.uint8), "PNG")  # slightly altered
    third = np.asarray(Image.open(root / "train" / "alpha" / "alpha3.png"))
    save_image(root / "train" / "beta" / "mislabelled.png", third, "PNG")             # label conflict
    return root


def test_planted_copies_are_found_and_unrelated_images_are_not(planted):
    result = audit_path(planted)
    t = result.table.assign(name=lambda d: d["path"].str.rsplit("/", n=1).str[-1]).set_index("name")
    assert t.loc["exact_copy.bmp", "exact_group"] == t.loc["alpha1.png", "exact_group"] >= 0
    assert t.loc["reencoded.jpg", "exact_group"] == -1  # not identical pixels ...
    assert t.loc["reencoded.jpg", "near_group"] == t.loc["alpha1.png", "near_group"] >= 0  # ... but near
    assert t.loc["altered.png", "near_group"] == t.loc["alpha2.png", "near_group"] >= 0
    planted_names = {"alpha1.png", "alpha2.png", "alpha3.png", "exact_copy.bmp", "reencoded.jpg", "altered.png",
                     "mislabelled.png"}
    unrelated = t.drop(index=list(planted_names))
    assert (unrelated["near_group"] == -1).all(), unrelated[unrelated["near_group"] >= 0]
    s = result.summary
    assert s["n_files"] == 24 and s["n_exact_groups"] == 2 and s["n_near_groups"] == 3
    assert sorted(p.rsplit("/", 1)[-1] for p in s["cross_split_files"]) == ["altered.png", "exact_copy.bmp",
                                                                            "reencoded.jpg"]
    [conflict] = s["label_conflict_groups"]
    assert conflict["labels"] == ["alpha", "beta"] and len(conflict["files"]) == 2
    risks = {r["label"]: r for r in s["shortcut_risks"]}
    assert "size" in risks["beta"]["flags"] and "size" in risks["alpha"]["flags"]
    assert t.loc["exact_copy.bmp", "flags"] == "exact_copy;near_copy;cross_split"


def test_dedup_test_view_drops_test_images_with_earlier_copies(planted):
    table = audit_path(planted).table
    ids = {s: table.loc[table["split"] == s, "path"].tolist() for s in ("train", "valid", "test")}
    mask = dedup_test_mask(table, ids["train"] + ids["valid"], ids["test"])
    kept = pd.Series(ids["test"])[mask].str.rsplit("/", n=1).str[-1]
    assert len(mask) == 8 and mask.sum() == 6
    assert not {"altered.png", "exact_copy.bmp"} & set(kept)


def test_numpy_layout_and_flat_tree_are_audited(tmp_path):
    images = np.stack([np.repeat(scene(i)[..., None], 3, -1)[:48, :48] for i in range(6)])
    images[5] = images[0]  # test copy of a train image
    split = lambda ix: Split(images[ix], np.array([0, 1])[: len(ix)])  # noqa: E731
    write_numpy(Dataset(split([0, 1]), split([2, 3]), split([4, 5]), ["a", "b"], "f", "s"), tmp_path / "np")
    s = audit_path(tmp_path / "np").summary
    assert s["n_exact_groups"] == 1 and s["cross_split_files"] == ["X_test.npy[1]"]
    flat = tmp_path / "flat"
    for i in range(4):
        save_image(flat / "class one" / f"{i}.png", scene(100 + i), "PNG")
        save_image(flat / "class two" / f"{i}.png", scene(200 + i), "PNG")
    save_image(flat / "class two" / "dup.png", scene(100), "PNG")
    s = audit_path(flat).summary
    assert s["counts"] == {"all": {"class one": 4, "class two": 5}} and len(s["label_conflict_groups"]) == 1


def test_cli_audit_writes_csv_and_json_and_never_overwrites(planted, tmp_path):
    from conftest import run_cli

    out = tmp_path / "audit"
    result = run_cli("data", "audit", planted, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "LEAKAGE: 3 valid/test files" in result.stdout and "LABEL CONFLICT: alpha vs beta" in result.stdout
    summary = json.loads((out / "audit.json").read_text())
    assert {"n_files", "n_exact_groups", "n_near_groups", "cross_split_files", "label_conflict_groups",
            "counts"} <= set(summary)
    table = pd.read_csv(out / "audit.csv")
    assert list(table.columns[:6]) == ["path", "split", "label", "exact_group", "near_group", "flags"]
    assert "scans found in the pixels" in result.stdout and str(out / "crops.png") in result.stdout
    assert Image.open(out / "crops.png").size[0] > 300  # the contact sheet of the body crop
    again = run_cli("data", "audit", planted, "--out", out)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.slow
def test_real_dataset_audit_matches_its_readme():
    result = audit_path(require_shared_data())
    s, t = result.summary, result.table
    cancer = t[(t["label"] != "normal") & (t["exact_group"] >= 0)]
    pairs = sorted(sorted(p.rsplit("/", 1)[-1] for p in g["path"]) for _, g in cancer.groupby("exact_group")
                   if g["label"].nunique() == 1)
    assert pairs == [["ad16.png", "ad21.png"], ["sq3.png", "sq4.png"], ["sq5.png", "sq6.png"]]  # within train
    assert s["n_files"] == 1000 and s["n_exact_groups"] == 59 and s["n_redundant_exact_copies"] == 153
    cross = s["duplicates_by_split_and_class"]
    # 46 byte-identical (the data's README) + test/normal/21.png, a train slice with a line drawn on it
    # (phash 2 bits away, joined by its pixels)
    assert cross["valid/normal"]["cross_split"] == 10 and cross["test/normal"]["cross_split"] == 47
    assert [Path(p).name for a, b, _ in s["joined_by_pixels"] for p in (a, b) if "/test/" in p] == ["21.png"]
    assert all(v["cross_split"] == 0 for k, v in cross.items() if not k.endswith("/normal"))
    [conflict] = s["label_conflict_groups"]
    assert sorted(f.rsplit("/", 1)[-1] for f in conflict["files"]) == ["l4.png", "sq2.png"]
    risks = {r["label"]: r["flags"] for r in s["shortcut_risks"]}
    assert risks["normal"] == ["size"]


def test_grouped_split_keeps_every_copy_group_in_one_split(planted):
    from ctdistill.data import load_dataset
    from ctdistill.data.split import grouped_split

    table = audit_path(planted).table
    data = load_dataset(planted, 16, 3)
    regrouped = grouped_split(data, table, seed=0)
    split_of = {p: s for s in ("train", "valid", "test") for p in regrouped.split(s).paths}
    assert len(split_of) == len(table) == sum(len(regrouped.split(s)) for s in ("train", "valid", "test"))
    for _, members in table[table["near_group"] >= 0].groupby("near_group"):
        assert len({split_of[p] for p in members["path"]}) == 1
    assert all(set(regrouped.split(s).y.tolist()) == {0, 1} for s in ("train", "test"))
    again = grouped_split(data, table, seed=0)
    assert again.test.paths == regrouped.test.paths  # seeded


@pytest.mark.slow  # a whole pipeline of its own: the full suite runs it, the fast tier does not
def test_run_on_a_folder_without_splits_splits_by_copy_groups(tmp_path, tiny_teacher):
    from ctdistill.config import Config
    from ctdistill.run.pipeline import run

    flat = tmp_path / "flat"
    for i in range(12):
        save_image(flat / "one" / f"{i}.png", scene(300 + i), "PNG")
        save_image(flat / "two" / f"{i}.png", scene(400 + i), "PNG")
    for i in range(3):  # copies that a random split would scatter across splits
        save_image(flat / "one" / f"copy{i}.png", scene(300 + i), "PNG")
    cfg = Config(data=str(flat), teachers=(tiny_teacher,), weights="none", image_size=16, epochs=1, patience=1,
                 batch_size=8, quant_modes=(), bootstrap_resamples=0)  # the split is the point: no quantization
    out = run(cfg, tmp_path / "run")
    splits = json.loads((out / "splits.json").read_text())
    where = {p.rsplit("/", 1)[-1]: s for s, paths in splits.items() for p in paths}
    assert all(where[f"copy{i}.png"] == where[f"{i}.png"] for i in range(3))
    summary = pd.read_csv(out / "summary.csv")
    assert (summary["n_test_dedup"] == summary["n_test"]).all()
    # the report and the manifest say which test split this is: one ctdistill drew, not the dataset's own
    assert "drawn by ctdistill" in json.loads((out / "manifest.json").read_text())["dataset"]["test_split"]
    page = (out / "report.md").read_text()
    assert "a test split drawn by ctdistill" in page and "official" not in page
    assert json.loads((out / "classes.json").read_text())["class_names"] == ["one", "two"]


def test_data_prepare_on_a_tree_without_splits_keeps_copy_groups_in_one_split(tmp_path):
    from ctdistill.data.prepare import prepare_arrays

    flat = tmp_path / "flat"
    for i in range(12):
        save_image(flat / "one" / f"{i}.png", scene(300 + i), "PNG")
        save_image(flat / "two" / f"{i}.png", scene(400 + i), "PNG")
    for i in range(3):
        save_image(flat / "one" / f"copy{i}.png", scene(300 + i), "PNG")
    prepare_arrays(flat, tmp_path / "prepared", 16, 3, crop="none")
    ids = json.loads((tmp_path / "prepared" / "paths.json").read_text())
    where = {p.rsplit("/", 1)[-1]: s for s, paths in ids.items() for p in paths}
    assert all(where[f"copy{i}.png"] == where[f"{i}.png"] for i in range(3))
    assert (tmp_path / "prepared" / "audit.csv").is_file()


def test_group_by_keeps_each_patients_slices_in_one_split(tmp_path):
    """Adjacent slices of one scan are not copies; `--group-by` keeps a patient's images together anyway."""
    from ctdistill.data import load_dataset
    from ctdistill.data.split import carve_validation, grouped_split

    flat = tmp_path / "flat"
    for patient in range(12):
        label = "one" if patient % 2 else "two"
        for s in range(4):  # four distinct slices per patient: no copy group joins them
            save_image(flat / label / f"p{patient}_s{s}.png", scene(1000 + 10 * patient + s), "PNG")
    table = audit_path(flat).table
    data = load_dataset(flat, 16, 3)

    def patients_split(result) -> int:
        split_of = {}
        for s in ("train", "valid", "test"):
            for path in result.split(s).paths:
                split_of.setdefault(path.rsplit("/", 1)[-1].split("_")[0], set()).add(s)
        return sum(len(splits) > 1 for splits in split_of.values())

    assert patients_split(grouped_split(data, table, seed=0)) > 0  # without it, patients straddle splits
    assert patients_split(grouped_split(data, table, seed=0, group_by=r"(p\d+)_")) == 0
    split = grouped_split(data, table, seed=0, group_by=r"(p\d+)_")
    carved = carve_validation(split, table, 0.25, seed=0, group_by=r"(p\d+)_")
    assert patients_split(carved) == 0
