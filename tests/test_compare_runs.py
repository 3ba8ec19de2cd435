"""``ctdistill compare``: two runs on the same drawn tree that differ in one key, side by side and paired."""

from __future__ import annotations

import pandas as pd
from conftest import make_tree, run_cli

from ctdistill.assess.runs import compare_runs, differing_keys
from ctdistill.config import Config
from ctdistill.run.pipeline import run


def test_only_the_keys_that_differ_are_listed():
    table = differing_keys({"a": {"crop": "body", "seed": 0, "data": "x"},
                            "b": {"crop": "none", "seed": 0, "data": "y"}})
    assert table["key"].tolist() == ["crop"] and table.loc[0, "a"] == '"body"'


def test_two_runs_that_differ_in_one_key_are_compared_on_their_shared_test_images(tmp_path, tiny_teacher):
    root = make_tree(tmp_path / "tree", per_class=4, size=24)
    common = dict(data=str(root), teachers=(tiny_teacher,), weights="none", image_size=16, epochs=2, patience=2,
                  batch_size=8, quant_modes=("int8",), bootstrap_resamples=0)
    body = run(Config(**common), tmp_path / "crop-body")  # names that are not identifiers
    whole = run(Config(**common, crop="none"), tmp_path / "whole-image")
    found = compare_runs([body, whole], n_resamples=100)
    assert found["differs"]["key"].tolist() == ["crop"]
    [paired] = found["paired"].to_dict("records")
    assert paired["run"] == "whole-image" and paired["against"] == "crop-body" and paired["n_shared"] == 8
    assert -1 <= paired["accuracy_gain_lo"] <= paired["accuracy_gain"] <= paired["accuracy_gain_hi"] <= 1
    assert 0 <= paired["p_value"] <= 1
    out = tmp_path / "compared"
    done = run_cli("compare", body, whole, "--out", out, "--resamples", "100", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "whole-image against crop-body, on the 8 test images both scored" in done.stdout
    table = pd.read_csv(out / "compare.csv")
    assert table["config.crop"].tolist() == ['"body"', '"none"'] and table["n_shared"].iloc[1] == 8
    assert "Runs compared" in (out / "compare.html").read_text()
    again = run_cli("compare", body, whole, "--out", out, timeout=300)
    assert again.returncode == 2 and "already exists" in again.stderr
