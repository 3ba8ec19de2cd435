"""Class folders become classes: kept as they are, reconciled across splits only where the splits
disagree, never merged within a split; a class map settles the rest (data.classes)."""

import json

import pytest
from conftest import make_tree

from ctdistill.cli.main import main
from ctdistill.core.errors import DataError
from ctdistill.data import load_dataset
from ctdistill.data.audit import audit_path
from ctdistill.data.classes import resolve_classes
from ctdistill.data.inspect import format_inspection, inspect_path

KAGGLE_LIKE = {
    "train": ["adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib", "large.cell.carcinoma_left.hilum_T2_N2_M0_IIIa",
              "normal", "squamous.cell.carcinoma_left.hilum_T1_N2_M0_IIIa"],
    "valid": ["adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib", "large.cell.carcinoma_left.hilum_T2_N2_M0_IIIa",
              "normal", "squamous.cell.carcinoma_left.hilum_T1_N2_M0_IIIa"],
    "test": ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"],
}


def test_folders_that_share_a_prefix_stay_two_classes(tmp_path):
    names = {s: ["CT_COVID", "CT_NonCOVID"] for s in ("train", "valid", "test")}
    ds = load_dataset(make_tree(tmp_path / "t", names=names, per_class=2), 8, 3)
    assert ds.class_names == ["CT_COVID", "CT_NonCOVID"]
    assert ds.classes["source"] == "folder names"


def test_kaggle_like_folder_names_are_reconciled_into_four_classes(tmp_path):
    root = make_tree(tmp_path / "t", names=KAGGLE_LIKE, per_class=2)
    ds = load_dataset(root, 8, 3)
    assert ds.class_names == ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]
    assert ds.classes["folders"]["train"]["adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib"] == "adenocarcinoma"
    assert (ds.test.y == ds.train.y).all()  # same class order in every split, by name
    text = format_inspection(inspect_path(root))
    assert "adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib -> adenocarcinoma" in text.splitlines()[0]
    assert "2 large.cell.carcinoma" in text


def test_two_folders_of_one_split_are_never_merged():
    with pytest.raises(DataError, match="ambiguous class folders: .*same split.*--class-map"):
        resolve_classes({"train": ["adeno_left", "adeno_right", "normal"], "test": ["adeno", "normal"]})


def test_a_folder_without_a_counterpart_is_named():
    expected = r"train/b \(nothing in test\); test/c \(nothing in train\) match no class folder.*--class-map"
    with pytest.raises(DataError, match=expected):
        resolve_classes({"train": ["a", "b"], "test": ["a", "c"]})


def test_names_that_only_share_letters_do_not_match():
    """``adeno`` vs ``adenocarcinoma``: no separator after the shorter name, so not one class."""
    with pytest.raises(DataError, match="match no class folder"):
        resolve_classes({"train": ["adenocarcinoma", "normal"], "test": ["adeno", "normal"]})


@pytest.mark.slow  # a whole pipeline of its own: the full suite runs it, the fast tier does not
def test_a_class_map_settles_folders_the_rule_cannot_match(tmp_path, capsys):
    names = {"train": ["adeno_left", "adeno_right", "normal"], "valid": ["adeno_left", "adeno_right", "normal"],
             "test": ["adeno_l", "adeno_r", "normal"]}
    root = make_tree(tmp_path / "t", names=names, per_class=2)
    with pytest.raises(DataError, match="test/adeno_l \\(nothing in train, valid\\)"):
        load_dataset(root, 8, 3)
    class_map = tmp_path / "classes.toml"
    class_map.write_text('adeno_left = "left"\nadeno_l = "left"\nadeno_right = "right"\nadeno_r = "right"\n')
    ds = load_dataset(root, 8, 3, class_map=class_map)
    assert ds.class_names == ["left", "normal", "right"]
    assert ds.classes["source"] == f"{class_map}"
    # the same map through the CLI: data inspect, data audit and data prepare
    assert main(["data", "inspect", str(root), "--class-map", str(class_map)]) == 0
    assert "classes (" in capsys.readouterr().out
    assert main(["data", "prepare", str(root), "--out", str(tmp_path / "arrays"), "--image-size", "8",
                 "--class-map", str(class_map)]) == 0
    assert json.loads((tmp_path / "arrays" / "class_names.json").read_text()) == ["left", "normal", "right"]
    result = audit_path(root, class_map=class_map)
    assert sorted(result.table["label"].unique()) == ["left", "normal", "right"]
    assert "adeno_l -> left" in result.summary["class_text"]


def test_a_class_map_key_that_names_no_folder_is_refused():
    with pytest.raises(DataError, match="names no class folder: nodule"):
        resolve_classes({"train": ["a", "b"]}, {"nodule": "x"}, "map.toml")


def test_one_class_is_refused_with_the_folders_named():
    with pytest.raises(DataError, match="only one class"):
        resolve_classes({"train": ["a"], "test": ["a"]})


def test_folders_a_class_map_merges_on_purpose_are_one_class_not_ambiguous():
    m = resolve_classes({"train": ["adeno_a", "adeno_b", "normal"], "test": ["adeno_x", "normal"]},
                        {"adeno_a": "adeno", "adeno_b": "adeno", "adeno_x": "adeno"})
    assert m.class_names == ["adeno", "normal"]
    # only train's two folders are mapped: the merged class still finds test's folder by the prefix rule
    m = resolve_classes({"train": ["adeno_a", "adeno_b", "normal"], "test": ["adeno_x", "normal"]},
                        {"adeno_a": "adeno", "adeno_b": "adeno"})
    assert m.folders["test"]["adeno_x"] == "adeno"


def test_unquoted_dotted_folder_names_in_a_toml_map_get_a_hint(tmp_path):
    from ctdistill.data.classes import read_class_map

    bad = tmp_path / "map.toml"
    bad.write_text('large.cell_left = "large"\n')  # TOML reads a.b = ... as a nested table
    with pytest.raises(DataError, match="quote folder names that contain dots"):
        read_class_map(bad)
    bad.write_text('"large.cell_left" = "large"\n')
    assert read_class_map(bad) == {"large.cell_left": "large"}
