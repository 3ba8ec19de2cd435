"""Training on DICOM trees, and leakage that follows patients and scans rather than copies.

Drawn data only: DICOM slices written with pydicom (``conftest.ct_dicom``), adjacent "slices" made by
shifting one drawn picture a few pixels, and the synthetic phantoms, which must raise no alarm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ct_dicom, save_image
from PIL import Image
from test_audit import scene

from ctdistill.assess.scoring import ModelPredictions, group_leakage
from ctdistill.core.errors import DataError
from ctdistill.data import load_dataset
from ctdistill.data.audit import audit_path
from ctdistill.data.inputs import read_input
from ctdistill.data.neighbours import cross_label, nearest_neighbours, thumbnails
from ctdistill.data.split import grouped_split, scan_keys, split_groups
from ctdistill.data.synthetic import CLASS_NAMES, phantom

LUNG = (-600.0, 1500.0)


def slices(patient: int, n: int = 3) -> list[np.ndarray]:
    """``n`` adjacent slices of one scan: one drawn picture shifted 2 px a slice (raw values, HU = raw - 1024)."""
    base = scene(500 + patient, (64, 64)).astype(np.int32) * 3
    return [np.roll(base, 2 * k, axis=0).astype(np.uint16) for k in range(n)]


def dicom_tree(root, patients: int = 10, same_patient_id: bool = False):
    """A class-folder tree of single-frame DICOM slices, each patient's slices in one class."""
    for p in range(patients):
        label = "tumour" if p % 2 else "clear"
        for k, pixels in enumerate(slices(p)):
            ct_dicom(root / label / f"slice_{p:02d}_{k}.dcm", pixels, PatientID="ANON" if same_patient_id else f"P{p}",
                     StudyInstanceUID=f"1.2.3.{p}")
    return root


def test_a_dicom_tree_trains_with_the_same_preprocessing_as_predict(tmp_path):
    root = dicom_tree(tmp_path / "dcm")
    save_image(root / "clear" / "extra.png", scene(7, (64, 64)), "PNG")  # PNG and DICOM mixed in one tree
    data = load_dataset(root, 24, 3, crop="body")
    assert len(data.train) + len(data.valid) + len(data.test) == 31 and not data.skipped
    for split in ("train", "test"):
        part = data.split(split)
        for x, path in zip(part.x, part.paths, strict=True):
            if path.endswith(".dcm"):  # exactly what `ctdistill predict` feeds the model for this file
                np.testing.assert_array_equal(read_input(Path(path), 24, 3, LUNG, "body")[0][0], x)


def test_dicom_patients_stay_in_one_split_without_any_flag(tmp_path):
    root = dicom_tree(tmp_path / "dcm")
    table = audit_path(root).table
    assert set(table["format"]) == {"DICOM"} and table["patient"].str.startswith("P").all()
    data = grouped_split(load_dataset(root, 16, 1), table, seed=0)
    split_of = {}
    for s in ("train", "valid", "test"):
        for path in data.split(s).paths:
            split_of.setdefault(path.rsplit("slice_", 1)[1][:2], set()).add(s)
    assert all(len(s) == 1 for s in split_of.values()) and len(split_of) == 10


def test_one_patient_id_for_every_slice_is_refused_by_name(tmp_path):
    root = dicom_tree(tmp_path / "dcm", same_patient_id=True)
    table = audit_path(root).table
    with pytest.raises(DataError, match="only 1 patient/scan/copy group"):
        grouped_split(load_dataset(root, 16, 1), table, seed=0)


def test_a_multi_frame_file_in_a_training_tree_is_skipped_with_its_reason(tmp_path):
    root = dicom_tree(tmp_path / "dcm", patients=4)
    ct_dicom(root / "clear" / "volume.dcm", np.stack(slices(9)))
    data = load_dataset(root, 16, 1)
    assert len(data.skipped) == 1 and "volume.dcm: multi-frame DICOM (3 frames)" in data.skipped[0]


def test_adjacent_slices_are_nearest_neighbours_and_their_patient_is_the_shared_group(tmp_path):
    """Slices of one scan in train and test: not copies, but the nearest images and one patient group."""
    root = tmp_path / "given"
    for p in range(6):
        label = "tumour" if p % 2 else "clear"
        for k, pixels in enumerate(slices(p)):
            split = "test" if (k == 2 and p < 4) else ("valid" if k == 1 and p >= 4 else "train")
            ct_dicom(root / split / label / f"s{p}_{k}.dcm", pixels, PatientID=f"P{p}")
    for p in range(6, 8):  # two test patients of their own
        for k, pixels in enumerate(slices(p)):
            ct_dicom(root / "test" / ("tumour" if p % 2 else "clear") / f"s{p}_{k}.dcm", pixels, PatientID=f"P{p}")
    table = audit_path(root, threshold=1).table
    assert (table["near_group"] < 0).all()  # 2 px apart: no copy under the audit's threshold
    data = load_dataset(root, 32, 1)
    refs, tests = data.train.paths + data.valid.paths, data.test.paths
    ids = refs + tests
    groups = dict(zip(ids, split_groups(ids, None, None, scan_keys(table, ids)).tolist(), strict=True))
    found = nearest_neighbours(table, refs, {"test": tests},
                               {"refs": thumbnails(np.concatenate([data.train.x, data.valid.x])),
                                "test": thumbnails(data.test.x)}, groups).set_index("path")
    for path, row in found.iterrows():
        patient = path.rsplit("/s", 1)[1].split("_")[0]
        assert row["shares_group"] == (int(patient) < 4)
        if int(patient) < 4:  # its nearest picture is its own patient's adjacent slice
            assert f"/s{patient}_" in row["nearest_thumb"] and row["thumb_same_label"]
    assert cross_label(found.reset_index()).empty
    # The group view of the curve: accuracy on the test images whose patient was seen, and on the rest.
    y = np.array([0 if "/clear/" in p else 1 for p in tests])
    right = np.eye(2)[y]
    preds = {"m": ModelPredictions(y, right, None, {}, tests, 0)}
    rows = group_leakage(found.reset_index(), preds).set_index("test images")
    assert rows.loc["patient/scan also in train or valid", "n_images"] == 4
    assert rows.loc["no patient/scan shared", "n_images"] == 6 and rows["m"].eq(1.0).all()


def test_phantoms_drawn_independently_raise_no_alarm(tmp_path):
    """No copy, no conflict, no shortcut and no shift on data drawn without them (no false alarms)."""
    rng = np.random.default_rng(3)
    root = tmp_path / "phantoms"
    for split, count in (("train", 14), ("valid", 4), ("test", 7)):
        for kind in CLASS_NAMES:
            for i in range(count):
                save_image(root / split / kind / f"{i}.png", phantom(kind, 48, rng), "PNG")
    summary = audit_path(root).summary
    assert summary["cross_split_files"] == [] and summary["label_conflict_groups"] == []
    assert not summary["shortcut_baseline"]["above_chance"], summary["shortcut_baseline"]
    shift = summary["train_test_shift"]
    assert not shift["shifted"] and not any(v["shifted"] for v in shift["pixels"].values()), shift


def test_the_crop_view_of_the_shift_classifier_sees_past_a_framing_difference(tmp_path):
    """Test slices with wide dark margins: the whole-image thumbnails tell them apart, the body's no better."""
    rng = np.random.default_rng(5)
    root = tmp_path / "framed"
    for split, count in (("train", 24), ("valid", 4), ("test", 12)):
        for kind in ("normal", "mass"):
            for i in range(count):
                img = phantom(kind, 48, rng)
                if split == "test":  # the same anatomy, smaller, on a wide dark canvas
                    img = np.pad(img[::2, ::2], 24)
                save_image(root / split / kind / f"{i}.png", img, "PNG")
    shift = audit_path(root).summary["train_test_shift"]
    assert shift["shifted"] and shift["pixels"]["whole image"]["shifted"]
    # the crop removes the margins, not the halved resolution: never more telling than the whole image
    assert shift["pixels"]["body crop"]["auc"] <= shift["pixels"]["whole image"]["auc"]
    pd.testing.assert_index_equal(pd.Index(shift["pixels"]), pd.Index(["whole image", "body crop"]))


def test_an_annotated_copy_a_few_bits_away_is_joined_and_the_adjacent_slice_is_not(tmp_path):
    """The issue's missed case: a test image that is a training image of the other class with an arrow drawn
    on it, a few phash bits away; the adjacent slice, as few bits away, is another picture."""
    from test_neighbours import with_arrow

    root = tmp_path / "data"
    for i in range(6):
        save_image(root / "train" / "a" / f"a{i}.png", scene(10 + i, (96, 96)), "PNG")
        save_image(root / "train" / "b" / f"b{i}.png", scene(20 + i, (96, 96)), "PNG")
        save_image(root / "valid" / "ab"[i % 2] / f"v{i}.png", scene(40 + i, (96, 96)), "PNG")
    save_image(root / "test" / "b" / "copy_of_a3.png", with_arrow(scene(13, (96, 96))), "PNG")
    save_image(root / "test" / "a" / "next_to_a4.png", np.roll(scene(14, (96, 96)), 2, axis=0), "PNG")
    result = audit_path(root)
    [joined] = result.summary["joined_by_pixels"]
    assert {Path(joined[0]).name, Path(joined[1]).name} == {"a3.png", "copy_of_a3.png"} and joined[2] < 0.025
    assert [Path(f).name for f in result.summary["cross_split_files"]] == ["copy_of_a3.png"]
    [conflict] = result.summary["label_conflict_groups"]
    assert conflict["labels"] == ["a", "b"]
    table = result.table.set_index(result.table["path"].map(lambda p: Path(p).name))
    assert table.loc["next_to_a4.png", "near_group"] < 0  # 4 bits away like the copy, but another picture


def test_label_conflicts_in_the_data_are_pictured_dicom_included(tmp_path):
    from ctdistill.report import conflict_pictures

    png = save_image(tmp_path / "a" / "x.png", scene(3, (64, 64)), "PNG")
    dcm = ct_dicom(tmp_path / "b" / "x.dcm", scene(3, (64, 64)).astype(np.uint16) * 3, PatientID="P1")
    audit = {"label_conflict_groups": [{"group": 0, "labels": ["a", "b"], "files": [str(png), str(dcm)]}]}
    [(caption, path)] = conflict_pictures(audit, None, tmp_path / "plots").items()
    assert "two classes" in caption
    from PIL import Image

    grey = np.asarray(Image.open(path).convert("L"), dtype=float)
    left, right = grey[:, : grey.shape[1] // 2], grey[:, grey.shape[1] // 2:]
    assert left.std() > 20 and right.std() > 20  # both drawn: the DICOM file read, not "not readable here"
    assert conflict_pictures({"label_conflict_groups": []}, pd.DataFrame(), tmp_path / "none") == {}


def drawn_scan(seed: int, n: int = 6) -> list[np.ndarray]:
    """``n`` adjacent slices of one drawn scan without ids: a blurred picture seen through a window moved
    2 px a slice (picture distance 0.004-0.015 between neighbours, 2 or more phash bits: not copies)."""
    from PIL import ImageFilter

    big = np.asarray(Image.fromarray(scene(seed, (96, 96 + 2 * n))).filter(ImageFilter.GaussianBlur(4)))
    return [big[2 * k: 2 * k + 96] for k in range(n)]


def scans_tree(root: Path) -> Path:
    """Four scans in scan order, slices 0-3 in train and 4-5 in test, among 24 single slices of their own."""
    for p, seed in enumerate((1, 2, 3, 4)):
        for k, img in enumerate(drawn_scan(seed)):
            save_image(root / ("test" if k >= 4 else "train") / "ab"[p % 2] / f"scan{p}_{k}.png", img, "PNG")
    for i in range(24):
        save_image(root / ("train", "valid", "test")[i % 3] / "ab"[i % 2] / f"single{i}.png",
                   drawn_scan(100 + i, 1)[0], "PNG")
    return root


def test_adjacent_slices_without_ids_are_one_scan_reported_across_given_splits_and_kept_in_one(tmp_path):
    """The issue's case: files numbered in scan order, no patient id, neighbouring slices in train and test."""
    result = audit_path(scans_tree(tmp_path / "given"))
    table = result.table.set_index(result.table["path"].map(lambda p: Path(p).stem))
    scans = [table.loc[[f"scan{p}_{k}" for k in range(6)]] for p in range(4)]
    assert all(s["scan_group"].nunique() == 1 and (s["scan_group"] >= 0).all() for s in scans)
    assert len({int(s["scan_group"].iloc[0]) for s in scans}) == 4
    assert (table.loc[[f"single{i}" for i in range(24)], "scan_group"] == -1).all()
    assert not any(s["near_group"].nunique() == 1 and (s["near_group"] >= 0).all() for s in scans)  # not copies
    summary = result.summary
    crossed = {Path(f).stem for f in summary["scan_cross_split_files"]}  # copies aside: they are cross_split_files
    assert len(crossed) >= 6 and crossed | {Path(f).stem for f in summary["cross_split_files"]} == {
        f"scan{p}_{k}" for p in range(4) for k in (4, 5)}
    assert summary["n_scans_straddling_splits"] == 4 and summary["n_scan_groups_beyond_copies"] == 4
    assert summary["scans_straddling_splits"][0]["splits"] == {"test": 2, "train": 4}
    data = grouped_split(load_dataset(tmp_path / "given", 32, 1), result.table, seed=0)
    for p in range(4):
        assert sum(any(f"scan{p}_" in path for path in data.split(s).paths) for s in ("train", "valid", "test")) == 1


def test_scan_groups_make_the_shared_group_and_the_verdict_warns(tmp_path):
    """Without ids, a test slice whose scan is in train is counted as shared (group_leakage) and warned."""
    from ctdistill.assess.verdict import _scan_leak
    from ctdistill.run.data_steps import neighbours_step

    root = scans_tree(tmp_path / "given")
    table = audit_path(root).table
    data = load_dataset(root, 32, 1)
    neighbours_step(table, data, tmp_path)
    found = pd.read_csv(tmp_path / "neighbours.csv")
    shared = found.set_index(found["path"].map(lambda p: Path(p).stem))["shares_group"]
    assert shared[shared].index.str.startswith("scan").all() and shared.sum() == 8
    tests = data.test.paths
    y = np.array([0 if "/a/" in p else 1 for p in tests])
    proba = np.eye(2)[np.where(["scan" in p for p in tests], y, 1 - y)]  # right on shared scans, wrong elsewhere
    rows = group_leakage(found, {"m_int8": ModelPredictions(y, proba, None, {}, tests, 0)})
    [(kind, words)] = _scan_leak(rows, {"model": "m_int8"})
    assert kind == "scan_leak" and "8 test image(s) share a patient or scan" in words and "100.0% on them" in words
    assert "0.0% on the rest" in words
    assert _scan_leak(rows.iloc[1:], {"model": "m_int8"}) == []
