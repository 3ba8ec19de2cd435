"""The shared training recipe: presets, augmentation, schedule, class balance, carved validation, ensembles."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from ctdistill.config import PRESETS, Config
from ctdistill.core.errors import ConfigError
from ctdistill.data.dataset import Dataset, Split
from ctdistill.data.split import carve_validation
from ctdistill.training.distill import ensemble_teacher
from ctdistill.training.recipe import (
    AUGMENTATIONS,
    balanced_indices,
    make_augmenter,
    make_optimizer,
    set_bn_momentum,
    steps_per_epoch,
    training_batches,
)


def test_seed_preset_restores_the_seed_recipe_and_flags_still_override_it():
    cfg = Config.from_mapping({"preset": "seed", "patience": 7})
    assert cfg.augment == () and cfg.lr_schedule == "constant" and cfg.monitor == "val_loss"
    assert cfg.validation == "given" and cfg.label_smoothing == 0 and cfg.weight_decay == 0
    assert cfg.patience == 7 and cfg.preset == "seed"
    assert Config.from_mapping({}).augment == Config().augment  # the default preset is the dataclass defaults
    assert set(PRESETS["seed"]) <= set(Config().to_dict())


def test_unknown_preset_and_augmentation_are_refused_by_name():
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        Config.from_mapping({"preset": "fast"})
    with pytest.raises(ConfigError, match="vflip.*vertical flip is not offered"):
        Config.from_mapping({"augment": "hflip,vflip"})
    assert Config.from_mapping({"augment": "none"}).augment == ()


def test_no_vertical_flip_is_offered():
    # An anterior-posterior flip makes an anatomy no scan shows (see ctdistill.training.recipe).
    for name in AUGMENTATIONS:
        layer = AUGMENTATIONS[name](0)
        assert getattr(layer, "mode", "horizontal") == "horizontal", name


def test_augmenter_keeps_shape_and_range_and_changes_images():
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")
    aug = make_augmenter(Config(), seed=0)
    out = keras.ops.convert_to_numpy(aug(x, training=True))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    assert not np.allclose(out, x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(aug(x, training=False)), x)  # inference: identity
    assert make_augmenter(Config(augment=()), seed=0) is None


def test_balanced_indices_equalise_class_counts_and_keep_every_example():
    y = np.array([0] * 10 + [1] * 4 + [2] * 1)
    ix = balanced_indices(y, seed=0)
    assert np.bincount(y[ix]).tolist() == [10, 10, 10]
    assert set(ix) == set(range(len(y)))
    assert steps_per_epoch(y, Config(class_balance="balanced", batch_size=8)) == 4  # 30 examples
    assert steps_per_epoch(y, Config(batch_size=8)) == 2


def test_training_batches_are_full_one_hot_and_hold_every_example_once_per_pass():
    """Every training batch is full (one input shape, one compilation: issue #30); the batches form one
    stream in which each pass of 10 rows is a new seeded permutation, so nothing is lost or favoured."""
    x = np.arange(10, dtype="float32").reshape(10, 1, 1, 1) * np.ones((1, 4, 4, 3), "float32")
    y = np.array([0, 1] * 5)
    stream = training_batches(x, y, 2, Config(augment=(), batch_size=4))
    assert len(stream) == 3  # the optimiser's steps per epoch: one pass's worth, as before
    rows = []
    for _ in range(5):  # 5 epochs of 3 full batches = 60 rows = 6 passes
        batches = [stream[i] for i in range(len(stream))]
        stream.on_epoch_end()
        assert [len(b[1]) for b in batches] == [4, 4, 4]
        images, labels = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
        np.testing.assert_array_equal(labels.argmax(1), images[:, 0, 0, 0].astype(int) % 2)
        rows += images[:, 0, 0, 0].astype(int).tolist()
    passes = [rows[k:k + 10] for k in range(0, 60, 10)]
    assert all(sorted(p) == list(range(10)) for p in passes)  # shuffled, nothing lost
    assert len({tuple(p) for p in passes}) == 6  # a new order every pass
    again = training_batches(x, y, 2, Config(augment=(), batch_size=4))
    assert np.concatenate([again[i][0] for i in range(3)])[:, 0, 0, 0].astype(int).tolist() == rows[:12]  # seeded


def test_validation_batches_keep_every_row_once_in_order():
    from ctdistill.training.recipe import validation_batches

    v = validation_batches(np.arange(11, dtype="float32")[:, None], np.array([0, 1] * 5 + [0]), 2, 4)
    assert [len(v[i][0]) for i in range(len(v))] == [4, 4, 3]  # 11 is prime: the short last batch stays
    for _ in range(2):
        assert np.concatenate([v[i][0] for i in range(len(v))]).ravel().tolist() == list(range(11))
        v.on_epoch_end()


def test_validation_batches_are_one_shape_when_a_close_divisor_exists():
    from ctdistill.training.recipe import even_batch_size

    for batch in (8, 32, 256):
        for n in range(1, 600):
            size = even_batch_size(n, batch)
            assert 1 <= size <= batch
            assert n % size == 0 or size == batch  # one shape, or the old batches with a short last one
            assert -(-n // size) <= 2 * -(-n // batch)  # at most twice the batches
    # The Kaggle data's splits at batch 32: the given 72 validation images in three batches of 24;
    # the default carved split, 137 images (prime), keeps 32, 32, 32, 32, 9.
    assert (even_batch_size(72, 32), even_batch_size(137, 32), even_batch_size(96, 32)) == (24, 32, 32)


def test_a_set_smaller_than_a_batch_is_one_batch_of_every_row():
    stream = training_batches(np.arange(3, dtype="float32")[:, None], np.array([0, 1, 0]), 2, Config(batch_size=32))
    assert len(stream) == 1 and sorted(stream[0][0].ravel().tolist()) == [0, 1, 2]


def test_a_continuous_stream_runs_across_epochs_without_losing_or_repeating_rows():
    """A pool larger than an epoch: ``steps`` batches per epoch, one permutation after another."""
    x, y = np.arange(10, dtype="float32")[:, None], np.eye(2, dtype="float32")[[0, 1] * 5]
    from ctdistill.training.recipe import Batches

    stream = Batches(x, y, 5, seed=0, steps=2)
    seen = []
    for _ in range(3):  # 6 batches of 5 = three passes
        seen += [stream[i][0].ravel().tolist() for i in range(len(stream))]
        stream.on_epoch_end()
    assert [len(b) for b in seen] == [5] * 6
    assert sorted(seen[0] + seen[1]) == sorted(seen[2] + seen[3]) == list(range(10))
    # read in any order (as fit does with shuffle=True), each pass is still a permutation of the rows
    again = Batches(x, y, 5, seed=0, steps=2)
    mixed = {}
    for _ in range(3):
        for i in np.random.default_rng(1).permutation(len(again)):
            mixed[(again.epoch, int(i))] = again[int(i)][0].ravel().tolist()
        again.on_epoch_end()
    assert [mixed[(e, i)] for e in range(3) for i in range(2)] == seen


def test_cosine_schedule_warms_up_then_decays():
    opt = make_optimizer(Config(warmup_epochs=2), 1e-3, steps_per_epoch=10, epochs=10)
    schedule = opt._learning_rate  # the schedule object (opt.learning_rate is its current value)
    values = [float(schedule(step)) for step in (0, 10, 20, 60, 99)]
    assert values[0] == pytest.approx(1e-4) and values[2] == pytest.approx(1e-3)
    assert values[1] < values[2] and values[2] > values[3] > values[4]
    assert isinstance(opt, keras.optimizers.AdamW)
    const = make_optimizer(Config(lr_schedule="constant", weight_decay=0.0), 1e-3, 10, 10)
    assert type(const) is keras.optimizers.Adam and float(const.learning_rate) == pytest.approx(1e-3)


def test_bn_momentum_reaches_nested_models():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.BatchNormalization()])
    set_bn_momentum(outer, 0.9)
    bns = [layer for layer in outer._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 2 and all(layer.momentum == 0.9 for layer in bns)


def _dataset(n_train=40, n_valid=10):
    rng = np.random.default_rng(0)

    def split(n, tag):
        return Split(rng.integers(0, 255, (n, 4, 4, 3)).astype("uint8"), np.arange(n) % 2,
                     [f"{tag}/{i}.png" for i in range(n)])

    return Dataset(split(n_train, "train"), split(n_valid, "valid"), split(6, "test"), ["a", "b"], "fp", "toy")


def test_carved_validation_keeps_copy_groups_together_and_test_as_given():
    data = _dataset()
    paths = data.train.paths + data.valid.paths + data.test.paths
    groups = [i // 5 if i < 50 else -1 for i in range(len(paths))]  # groups of 5 (near) copies
    table = pd.DataFrame({"path": paths, "near_group": groups})
    carved = carve_validation(data, table, 0.2, seed=0)
    assert len(carved.train) + len(carved.valid) == 50 and 6 <= len(carved.valid) <= 14
    group_of = dict(zip(paths, groups, strict=True))
    assert not {group_of[p] for p in carved.train.paths} & {group_of[p] for p in carved.valid.paths}
    assert carved.test.paths == data.test.paths
    np.testing.assert_array_equal(carved.test.x, data.test.x)
    assert carve_validation(data, None, 0.2, seed=0).valid.x.shape[0] == 10  # no audit: each image its own group


def test_ensemble_teacher_outputs_the_weighted_mean_of_logits():
    def fixed(bias):
        inputs = keras.Input((2,))
        dense = keras.layers.Dense(3)
        model = keras.Model(inputs, dense(inputs))
        dense.set_weights([np.zeros((2, 3), "float32"), np.array(bias, "float32")])
        return model

    ens = ensemble_teacher({"a": fixed([1, 0, 0]), "b": fixed([0, 3, 0])}, {"a": 3.0, "b": 1.0})
    out = keras.ops.convert_to_numpy(ens(np.zeros((1, 2), "float32")))
    np.testing.assert_allclose(out, [[0.75, 0.75, 0.0]], rtol=1e-6)


def test_ensemble_teacher_accepts_models_loaded_from_keras_files(tmp_path):
    # A resumed run restores its teachers from .keras files; loaded, a one-output model returns a list.
    from ctdistill.models.inference import load_model
    from ctdistill.run.outputs import save_model

    loaded = {}
    for name, bias in (("a", [2, 0, 0]), ("b", [0, 2, 0])):
        inputs = keras.Input((2,))
        dense = keras.layers.Dense(3)
        model = keras.Model(inputs, dense(inputs), name=f"teacher_{name}")
        dense.set_weights([np.zeros((2, 3), "float32"), np.array(bias, "float32")])
        loaded[name] = load_model(save_model(model, tmp_path / f"{name}.keras"))
    out = keras.ops.convert_to_numpy(ensemble_teacher(loaded, {"a": 1.0, "b": 1.0})(np.zeros((1, 2), "float32")))
    np.testing.assert_allclose(out, [[1.0, 1.0, 0.0]], rtol=1e-6)


def test_ensemble_run_distils_one_more_student(finished_run, tiny_teacher, tiny_teacher_b):
    cfg, out = finished_run  # two tiny teachers, ensemble = "weighted" (conftest)
    summary = pd.read_csv(out / "summary.csv").set_index("model")
    assert {"ensemble_teacher", "ensemble_student", "ensemble_student_int8"} <= set(summary.index)
    info = json.loads((out / "ensemble.json").read_text())
    assert info["weights"] == info["valid_accuracy"] and set(info["weights"]) == {tiny_teacher, tiny_teacher_b}
    assert (out / "ensemble_Student.keras").is_file() and (out / "ensemble_student_int8.tflite").is_file()
    quant = pd.read_csv(out / "TinyEvalRes_Quant.csv")
    assert "ensemble" in set(quant["teacher"])
