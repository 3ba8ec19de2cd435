"""Checks on the real Kaggle chest-CT dataset in ../shared (skipped loudly when it is absent)."""

import pytest
from conftest import require_shared_data

from ctdistill.data import load_dataset
from ctdistill.data.inspect import inspect_path

pytestmark = pytest.mark.slow


def test_inspect_counts_match_the_dataset_readme():
    info = inspect_path(require_shared_data())
    assert {s: sum(c.values()) for s, c in info["splits"].items()} == {"train": 613, "valid": 72, "test": 315}
    assert info["splits"]["test"] == {"adenocarcinoma": 120, "large.cell.carcinoma": 51, "normal": 54,
                                      "squamous.cell.carcinoma": 90}
    assert info["formats"]["JPEG (.png)"] == 4 and info["formats"]["JPEG (.jpg)"] == 12  # decode by content
    assert info["modes"] == {"RGBA": 923, "RGB": 74, "L": 3}
    assert not info["unreadable"]


def test_real_dataset_loads_with_one_label_set():
    ds = load_dataset(require_shared_data(), 32, 3)
    assert ds.class_names == ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]
    assert ds.train.x.shape == (613, 32, 32, 3) and len(ds.valid) == 72 and len(ds.test) == 315
    assert ds.train.counts(4) == [195, 115, 148, 155]
