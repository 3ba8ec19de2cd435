"""The teacher table: all seven build from keras.applications and produce logits; weights are explained."""

import numpy as np
import pytest

from ctdistill.config import SEED_TEACHERS as ALL_TEACHERS
from ctdistill.core.errors import ConfigError
from ctdistill.models import teachers as teachers_module
from ctdistill.models.teachers import TEACHERS, build_teacher, check_weights, resolve_weights, set_base_trainable


def test_table_has_the_seven_seed_teachers():
    assert set(ALL_TEACHERS) <= set(TEACHERS)
    assert TEACHERS["xception"].min_size == 71


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_TEACHERS)
def test_each_teacher_builds_and_outputs_logits_for_a_tiny_input(name):
    model = build_teacher(name, (16, 16, 3), 4, weights=None)  # below every minimum: resized inside
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    logits = np.asarray(model(x, training=False))
    assert logits.shape == (2, 4) and np.isfinite(logits).all()
    assert not np.allclose(logits.sum(axis=1), 1.0)  # logits, not probabilities
    set_base_trainable(model, False)
    assert not model.get_layer("base").trainable


def test_grey_input_and_partial_unfreeze(tiny_teacher):
    model = build_teacher(tiny_teacher, (8, 8, 1), 3, weights=None)
    assert model(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 3)
    set_base_trainable(model, True, top_layers=1)
    base = model.get_layer("base")
    assert [layer.trainable for layer in base.layers][-1] and not base.layers[0].trainable


def test_weights_folder_must_hold_keras_file_name(tmp_path):
    with pytest.raises(ConfigError, match="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        resolve_weights("resnet50", str(tmp_path))
    (tmp_path / TEACHERS["resnet50"].weights_file).write_bytes(b"x")
    assert resolve_weights("resnet50", str(tmp_path)).endswith("notop.h5")
    assert resolve_weights("resnet50", "none") is None and resolve_weights("vgg16", "imagenet") == "imagenet"


def test_failed_imagenet_download_says_how_to_work_offline(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    spec = TEACHERS["vgg16"]
    monkeypatch.setitem(TEACHERS, "vgg16", teachers_module.TeacherSpec(offline, spec.preprocess, 32, spec.weights_file))
    with pytest.raises(ConfigError, match=r"vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 .*--weights none"):
        build_teacher("vgg16", (32, 32, 3), 4, weights="imagenet")
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-keras-home")  # nothing cached: the check must fetch
    with pytest.raises(ConfigError, match="could not get ImageNet weights for vgg16"):
        check_weights("vgg16", "imagenet")


def test_pretrained_weights_file_gives_two_phase_fine_tuning(tmp_path, tiny_teacher):
    """Head on a frozen base first, then the unfrozen base at the lower rate (the seed's recipe)."""
    from ctdistill.config import Config
    from ctdistill.data.synthetic import load_synthetic
    from ctdistill.training.teachers import train_teacher

    pretrained = TEACHERS[tiny_teacher].builder(include_top=False, weights=None, input_shape=(16, 16, 3))
    path = tmp_path / "tiny.weights.h5"
    pretrained.save_weights(path)
    data = load_synthetic(16, 3, (4, 2, 2))
    cfg = Config(teachers=(tiny_teacher,), weights=str(path), epochs=3, frozen_epochs=2, patience=5, batch_size=8)
    teacher, history = train_teacher(tiny_teacher, data, cfg)
    assert history["phase"].tolist() == ["head", "head", "finetune", "finetune", "finetune"]
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    base = teacher.get_layer("base")
    assert base.trainable
    loaded = [np.asarray(w) for w in pretrained.get_weights()]
    # the frozen head phase left the base exactly as loaded only until fine-tuning moved it
    assert any(not np.allclose(a, np.asarray(b)) for a, b in zip(loaded, base.get_weights(), strict=True))
