"""Data layer: labels across splits, decoding by content, numpy layout, cache, synthetic phantoms."""

import io

import numpy as np
import pytest
from conftest import make_tree, save_image
from PIL import Image

from ctdistill.core.errors import DataError
from ctdistill.data import load_dataset, write_numpy
from ctdistill.data import tree as tree_module
from ctdistill.data.decode import decode_image
from ctdistill.data.synthetic import CLASS_NAMES, load_synthetic


def test_tree_labels_agree_across_splits_after_normalisation(image_tree):
    ds = load_dataset(image_tree, 16, 3)
    assert ds.class_names == ["adeno", "normal"]
    assert [len(ds.split(s)) for s in ("train", "valid", "test")] == [6, 6, 6]
    assert ds.train.x.shape == (6, 16, 16, 3) and ds.train.x.dtype == np.uint8
    # same folder index, different folder names: labels must still line up by name
    assert (ds.test.y == ds.train.y).all()


def test_val_folder_name_is_accepted(tmp_path):
    root = make_tree(tmp_path / "t", names={"train": ["a", "b"], "valid": ["a", "b"], "test": ["a", "b"]})
    (root / "valid").rename(root / "val")
    assert len(load_dataset(root, 8, 1).valid) == 6


def test_splits_that_disagree_fail_clearly(tmp_path):
    root = make_tree(tmp_path / "t", names={"train": ["a", "b"], "valid": ["a", "b"], "test": ["a", "c"]})
    with pytest.raises(DataError, match=r"test/c \(nothing in train, valid\)"):
        load_dataset(root, 8, 3)


def test_class_folder_tree_without_splits_is_split_stratified(tmp_path):
    root = tmp_path / "flat"
    make_tree(root, splits=("train",), per_class=10, names={"train": ["class one", "class two"]})
    ds = load_dataset(root / "train", 8, 3)
    assert sorted(ds.class_names) == ["class one", "class two"]
    assert len(ds.train) + len(ds.valid) + len(ds.test) == 20
    assert set(ds.test.y.tolist()) == {0, 1}


def _grey(size=(30, 20), value=128):
    return np.full(size[::-1], value, np.uint8)


def test_decoding_is_by_content_not_extension(tmp_path):
    path = save_image(tmp_path / "really_a_jpeg.png", np.stack([_grey()] * 3, -1), "JPEG")
    assert path.read_bytes()[:2] == b"\xff\xd8"
    arr = decode_image(path.read_bytes(), 8, 3, str(path))
    assert arr.shape == (8, 8, 3) and abs(int(arr.mean()) - 128) <= 2


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "P", "LA", "CMYK", "I;16"])
def test_any_mode_converts_to_configured_channels(mode):
    buf = io.BytesIO()
    if mode == "I;16":
        Image.fromarray(np.full((10, 12), 40000, np.uint16)).save(buf, format="PNG")
    else:
        Image.fromarray(_grey((12, 10), 200)).convert(mode).save(buf, format="TIFF" if mode == "CMYK" else "PNG")
    for channels in (1, 3):
        arr = decode_image(buf.getvalue(), 6, channels)
        assert arr.shape == (6, 6, channels) and arr.dtype == np.uint8
        assert arr.max() > 100  # intensities survive the conversion (16-bit scaled, not clipped to 255)


@pytest.mark.parametrize("payload,fragment", [(b"", "empty file"), (b"hello, not an image", "not a readable image"),
                                               (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "")])
def test_bad_bytes_name_the_file(payload, fragment):
    with pytest.raises(DataError, match=f"scan.png: .*{fragment}"):
        decode_image(payload, 8, 3, "scan.png")


def test_numpy_layout_roundtrip_onehot_and_integer_labels(image_tree, tmp_path):
    ds = load_dataset(image_tree, 12, 3)
    out = tmp_path / "np"
    write_numpy(ds, out)
    assert np.load(out / "y_train.npy").shape == (6, 2)  # one-hot, as the seed stored it
    back = load_dataset(out, 12, 3)
    assert back.class_names == ds.class_names
    assert (back.test.x == ds.test.x).all() and (back.test.y == ds.test.y).all()
    np.save(out / "y_val.npy", ds.valid.y)  # integer labels are accepted too
    np.save(out / "X_val.npy", ds.valid.x.astype(np.float32) / 255.0)  # and [0, 1] floats
    back = load_dataset(out, 12, 3)
    assert (back.valid.y == ds.valid.y).all() and np.abs(back.valid.x.astype(int) - ds.valid.x).max() <= 1


def test_numpy_layout_refuses_pickled_and_mismatched_arrays(image_tree, tmp_path):
    out = tmp_path / "np"
    write_numpy(load_dataset(image_tree, 8, 3), out)
    np.save(out / "y_test.npy", np.zeros(5, np.int64))
    with pytest.raises(DataError, match="y_test.npy: 5 labels for 6 images"):
        load_dataset(out, 8, 3)
    np.save(out / "y_test.npy", np.array([{"a": 1}] * 6, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="y_test.npy: refused to load"):
        load_dataset(out, 8, 3)


def test_second_load_uses_the_cache(image_tree, monkeypatch):
    first = load_dataset(image_tree, 10, 3)

    def boom(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(tree_module, "decode_slice", boom)
    second = load_dataset(image_tree, 10, 3)
    assert (first.train.x == second.train.x).all() and first.fingerprint == second.fingerprint
    with pytest.raises(AssertionError, match="decoded again"):  # a new size is a new key
        load_dataset(image_tree, 11, 3)


def test_missing_or_file_data_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope", 8, 3)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        load_dataset(tmp_path / "f.txt", 8, 3)


def test_synthetic_phantoms_are_deterministic_balanced_and_distinct():
    a, b = load_synthetic(24, 3, (5, 3, 4), seed=1), load_synthetic(24, 3, (5, 3, 4), seed=1)
    assert (a.train.x == b.train.x).all() and a.fingerprint == b.fingerprint
    assert a.class_names == CLASS_NAMES
    assert a.train.counts(4) == [5, 5, 5, 5] and len(a.test) == 16
    assert not (load_synthetic(24, 3, (5, 3, 4), seed=2).train.x == a.train.x).all()
    # lesions add brightness inside the lungs: per-class mean images differ from normal
    means = [a.train.x[a.train.y == k].astype(float).mean(axis=0) for k in range(4)]
    normal = CLASS_NAMES.index("normal")
    assert all(np.abs(means[k] - means[normal]).max() > 10 for k in range(4) if k != normal)
