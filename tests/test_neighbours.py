"""Nearest neighbours across splits: the same picture under another label is found even when it is
not a near copy under the audit's threshold; the leakage curve is read from the distances."""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import save_image
from PIL import Image, ImageDraw
from test_audit import scene

from ctdistill.data.audit import audit_path, write_audit
from ctdistill.data.neighbours import SAME_PICTURE, cross_label, nearest_neighbours, thumbnails


def with_arrow(pixels: np.ndarray) -> np.ndarray:
    """The same picture with an annotation drawn on it (as on the collections the issue names)."""
    img = Image.fromarray(pixels)
    ImageDraw.Draw(img).line([(4, 4), (14, 10)], fill=255, width=2)
    return np.asarray(img)


def test_an_annotated_copy_under_another_label_is_found_and_an_unrelated_image_is_far(tmp_path):
    root = tmp_path / "data"
    for i in range(6):
        save_image(root / "train" / "a" / f"a{i}.png", scene(10 + i, (96, 96)), "PNG")
        save_image(root / "train" / "b" / f"b{i}.png", scene(20 + i, (96, 96)), "PNG")
    for c in ("a", "b"):
        save_image(root / "valid" / c / "v.png", scene(40 + ord(c), (96, 96)), "PNG")
    save_image(root / "test" / "b" / "copy_of_a3.png", with_arrow(scene(13, (96, 96))), "PNG")  # other label
    save_image(root / "test" / "a" / "new.png", scene(99, (96, 96)), "PNG")
    table = audit_path(root, threshold=0).table  # a strict copy threshold: the annotated copy is not "a copy"
    refs = table.loc[table["split"] == "train", "path"].tolist()
    tests = table.loc[table["split"] == "test", "path"].tolist()
    small = lambda paths: thumbnails(np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32)))  # noqa: E731
                                               for p in paths]))
    found = nearest_neighbours(table, refs, {"test": tests}, {"refs": small(refs), "test": small(tests)})
    found = found.set_index("path")
    copy = found.loc[str(root / "test" / "b" / "copy_of_a3.png")]
    assert copy["nearest_phash"].endswith("a3.png") and copy["nearest_dhash"].endswith("a3.png")
    assert 0 < copy["phash_distance"] <= 4 and not copy["phash_same_label"]
    assert copy["nearest_thumb"].endswith("a3.png") and copy["thumb_distance"] <= SAME_PICTURE
    new = found.loc[str(root / "test" / "a" / "new.png")]
    assert new["phash_distance"] > copy["phash_distance"] + 8 and new["thumb_distance"] > 10 * SAME_PICTURE
    crossed = cross_label(found.reset_index())
    assert crossed["path"].tolist() == [str(root / "test" / "b" / "copy_of_a3.png")]


def test_thumbnails_find_a_brightened_copy_by_correlation():
    rng = np.random.default_rng(0)
    refs = rng.integers(0, 255, (5, 8, 8, 3)).astype(np.float32)
    query = np.clip(refs[[3]] * 0.8 + 20, 0, 255)  # brighter and lower contrast: correlation 1
    table = pd.DataFrame({"path": [f"r{i}" for i in range(5)] + ["q"], "label": list("aabbb") + ["a"]})
    found = nearest_neighbours(table, [f"r{i}" for i in range(5)], {"test": ["q"]},
                               {"refs": thumbnails(refs), "test": thumbnails(query)})
    assert found.loc[0, "nearest_thumb"] == "r3" and found.loc[0, "thumb_distance"] < 1e-4
    assert not found.loc[0, "thumb_same_label"] and "phash_distance" not in found  # no hashes in this table


def test_the_audit_table_keeps_both_hashes(tmp_path):
    root = tmp_path / "data"
    for split in ("train", "valid", "test"):
        for c in ("a", "b"):
            save_image(root / split / c / "x.png", scene(hash((split, c)) % 1000, (64, 64)), "PNG")
    result = audit_path(root)
    write_audit(result.table, result.summary, tmp_path / "out")
    assert {"phash", "dhash"} <= set(pd.read_csv(tmp_path / "out" / "audit.csv").columns)
