"""The shortcut baseline and the train/test shift classifier, on drawn data whose metadata does or does
not give the class (or the split) away."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ctdistill.data.shortcuts import features, shortcut_baseline, train_test_shift


def table(n: int = 60, seed: int = 0, class_gives_size: bool = False, test_has_margins: bool = False) -> pd.DataFrame:
    """An audit-like table: two classes, three splits, metadata drawn at random unless told otherwise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "a" if i % 2 else "b"
        split = ("train", "train", "train", "valid", "test")[i % 5]
        width = (600 if label == "b" else 400) if class_gives_size else int(rng.integers(380, 620))
        margins = test_has_margins and split == "test"
        rows.append({"path": f"{split}/{label}/{i}.png", "split": split, "label": label, "width": width,
                     "height": int(width * rng.uniform(0.75, 0.85)), "mode": "L", "format": "PNG",
                     "file_kb": float(rng.uniform(80, 120)), "mean": float(rng.uniform(90, 110)),
                     "std": float(rng.uniform(50, 60)), "body_share": 0.8 if margins else float(rng.uniform(0.95, 1)),
                     "border": 5.0 if margins else float(rng.uniform(30, 60)), "near_group": -1})
    return pd.DataFrame(rows)


def test_a_class_that_its_image_size_gives_away_is_a_shortcut():
    found = shortcut_baseline(table(class_gives_size=True))
    assert found["above_chance"] and found["balanced_accuracy"] > 0.9
    assert found["top_features"][0][0] in ("width", "height", "aspect")


def test_metadata_drawn_alike_for_every_class_is_not_a_shortcut():
    found = shortcut_baseline(table(n=200))
    assert not found["above_chance"] and found["lo"] <= found["chance"] <= found["hi"] + 0.1


def test_test_images_framed_with_dark_margins_are_a_shift_and_alike_ones_are_not():
    shifted = train_test_shift(table(test_has_margins=True))
    assert shifted["shifted"] and shifted["auc"] > 0.95
    assert {name for name, _ in shifted["top_features"][:2]} & {"border", "body_share"}
    alike = train_test_shift(table(n=200))
    assert not alike["shifted"] and alike["lo"] < 0.7


def test_one_class_or_no_test_split_gives_nothing_to_report():
    one_class = table().assign(label="a")
    assert shortcut_baseline(one_class) is None
    assert train_test_shift(table()[lambda t: t["split"] != "test"]) is None


def test_a_class_with_more_non_square_images_is_a_shortcut_its_median_size_hides():
    """The issue's case: one class has far more non-square images; its median size is the others'."""
    frame = table(n=200)
    rng = np.random.default_rng(1)
    square = rng.integers(440, 460, len(frame))
    wide = (frame["label"] == "b") & (rng.random(len(frame)) < 0.4)
    frame["width"] = np.where(wide, 2 * square, square)
    frame["height"] = square
    medians = frame.groupby("label")[["width", "height"]].median()
    assert (medians.loc["a"] - medians.loc["b"]).abs().max() < 20  # a median-size check sees nothing
    found = shortcut_baseline(frame)
    assert found["above_chance"] and found["top_features"][0][0] in ("aspect", "width")


def test_a_dicom_tag_that_gives_the_label_away_is_named_in_the_audit_and_the_verdict(tmp_path):
    """Drawn slices: ContrastBolusAgent in 8 of 12 contrast files (values differ, one empty) and in no
    plain file, the scanner alike in both classes: the tag is named, the scanner is not."""
    from conftest import ct_dicom

    from ctdistill.data.audit import audit_path, collect
    from ctdistill.data.audit_text import audit_text, label_tag_words

    rng = np.random.default_rng(0)
    agents = ["ISOVUE", "OMNIPAQUE 350", "", "APPLIED", "ISOVUE", "OPTIRAY", "ISOVUE", "&"]  # Fisher p 6.7e-4
    for label in ("contrast", "plain"):
        for i in range(12):
            tags = {"Manufacturer": ("SIEMENS", "GE")[i % 2], "SliceThickness": "5"}
            if label == "contrast" and i < len(agents):
                tags["ContrastBolusAgent"] = agents[i]
            raw = rng.integers(0, 2000, (32, 32)).astype(np.uint16)
            ct_dicom(tmp_path / label / f"{i}.dcm", raw, **tags)
    summary = audit_path(tmp_path).summary
    named = {(t["tag"], t["value"], t["class"], t["files"]) for t in summary["label_tags"]}
    assert ("ContrastBolusAgent", "(present)", "contrast", 8) in named
    assert not any(tag in ("Manufacturer", "SliceThickness") for tag, *_ in named)
    words = label_tag_words(summary["label_tags"][0])
    assert words.startswith("the DICOM header tag ContrastBolusAgent is present in 8 file(s), all of class contrast")
    assert f"SHORTCUT RISK: {words}" in audit_text(summary)
    # the metadata classifier sees the header tags too
    assert {"tag_ContrastBolusAgent_(present)", "tag_SliceThickness"} <= set(features(collect(tmp_path)))


def test_the_verdict_warns_of_a_label_tag(tmp_path):
    from ctdistill.assess.verdict import _warnings

    tag = {"tag": "ContrastBolusAgent", "value": "(present)", "class": "contrast", "files": 14, "class_files": 50,
           "p": 2.1e-05}
    metrics = pd.DataFrame([{"model": "m", "kind": "quantized", "accuracy": 0.9, "n": 200, "teacher": "t"}])
    tables = {"metrics": metrics, "per_class": pd.DataFrame(columns=["model", "support"]),
              "audit": {"label_tags": [tag]}, "cross_label": None, "valid_vs_test": pd.DataFrame()}
    kinds = [kind for kind, _ in _warnings(tables, tmp_path, None)]
    assert "label_tag" in kinds
