"""The distillation loss equals alpha*CE + (1-alpha)*T^2*KL, checked against numbers computed by hand."""

import keras
import numpy as np
import pytest

from ctdistill.config import Config
from ctdistill.training.distill import make_distiller
from ctdistill.training.recipe import one_hot


def _distiller(teacher, student, temperature, alpha, label_smoothing=0.0):
    cfg = Config(temperature=temperature, alpha=alpha, label_smoothing=label_smoothing, weights="none")
    return make_distiller(_fixed_logits_model(teacher), _fixed_logits_model(student), cfg, Y)


def _fixed_logits_model(logits: np.ndarray) -> keras.Model:
    """A model whose output is ``x @ W`` with W = logits (x is a one-hot row selector)."""
    inputs = keras.Input((len(logits),))
    dense = keras.layers.Dense(logits.shape[1], use_bias=False)
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([logits.astype(np.float32)])
    return model


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def hand_loss(y, s, t, temperature, alpha, t_squared=True):
    ce = -np.log(_softmax(s)[np.arange(len(y)), y]).mean()
    p_t, p_s = _softmax(t / temperature), _softmax(s / temperature)
    kl = (p_t * np.log(p_t / p_s)).sum(axis=1).mean()
    return alpha * ce + (1 - alpha) * (temperature**2 if t_squared else 1.0) * kl


TEACHER = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, -1.0]])
STUDENT = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
Y = np.array([0, 1])
Y1 = one_hot(Y, 3)  # models are trained on one-hot labels (label smoothing needs them)


def test_loss_matches_worked_example():
    # By hand at T=2: CE = mean(-log softmax(s)[y]) = 1.2547; row 0 p_t = softmax([1, .5, 0]) =
    # [.506, .307, .186], p_s = softmax([.25, .25, 0]) = [.360, .360, .280]; mean KL = 0.25434;
    # loss = 0.5 * 1.2547 + 0.5 * 2^2 * 0.25434 = 1.1360.
    d = _distiller(TEACHER, STUDENT, 2.0, 0.5)
    x = np.eye(2, dtype=np.float32)
    got = float(d.compute_loss(x=x, y=Y1, y_pred=d.student(x), training=False))
    assert got == pytest.approx(hand_loss(Y, STUDENT, TEACHER, 2.0, 0.5), rel=1e-5)
    assert got == pytest.approx(1.1360, abs=1e-3)  # the number itself, computed by hand


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.0), (2.0, 0.5), (4.0, 0.3), (8.0, 1.0)])
def test_loss_scales_with_t_squared(temperature, alpha):
    d = _distiller(TEACHER, STUDENT, temperature, alpha)
    x = np.eye(2, dtype=np.float32)
    got = float(d.compute_loss(x=x, y=Y1, y_pred=d.student(x), training=False))
    assert got == pytest.approx(hand_loss(Y, STUDENT, TEACHER, temperature, alpha), rel=1e-5)
    if alpha < 1.0 and temperature != 1.0:  # the seed forgot T^2: that number must not match
        assert got != pytest.approx(hand_loss(Y, STUDENT, TEACHER, temperature, alpha, t_squared=False), rel=1e-3)


def test_identical_logits_give_pure_hard_label_loss():
    d = _distiller(STUDENT, STUDENT, 2.0, 0.5)
    x = np.eye(2, dtype=np.float32)
    got = float(d.compute_loss(x=x, y=Y1, y_pred=d.student(x), training=False))
    ce = -np.log(_softmax(STUDENT)[np.arange(2), Y]).mean()
    assert got == pytest.approx(0.5 * ce, rel=1e-5)


def test_cached_teacher_logits_give_the_same_loss_as_running_the_teacher():
    d = _distiller(TEACHER, STUDENT, 3.0, 0.3)
    x = np.eye(2, dtype=np.float32)
    live = float(d.compute_loss(x=x, y=Y1, y_pred=d(x), training=False))
    cached_x = {"image": x, "teacher_logits": TEACHER.astype(np.float32)}
    cached = float(d.compute_loss(x=cached_x, y=Y1, y_pred=d(cached_x), training=False))
    assert cached == pytest.approx(live, rel=1e-6)
    assert cached == pytest.approx(hand_loss(Y, STUDENT, TEACHER, 3.0, 0.3), rel=1e-5)


def test_label_smoothing_smooths_only_the_hard_label_targets():
    eps, k = 0.1, 3
    d = _distiller(STUDENT, STUDENT, 2.0, 0.5, label_smoothing=eps)  # KL term is 0: teacher == student
    x = np.eye(2, dtype=np.float32)
    got = float(d.compute_loss(x=x, y=Y1, y_pred=d.student(x), training=False))
    target = (1 - eps) * Y1 + eps / k  # Szegedy et al. 2016
    ce = -(target * np.log(_softmax(STUDENT))).sum(axis=1).mean()
    assert got == pytest.approx(0.5 * ce, rel=1e-5)


def test_a_pool_of_augmented_views_carries_the_teachers_logits_of_each_view(tiny_teacher):
    """``teacher_views``: every pooled image comes with the teacher's logits of exactly that image
    (consistent teaching), the images are augmented, and the stream repeats for any epoch count."""
    from ctdistill.data import load_dataset
    from ctdistill.models.teachers import build_teacher
    from ctdistill.training.distill import distill_student, view_pool_stream

    data = load_dataset(None, 16, 3, 0, (6, 3, 3))
    cfg = Config(teachers=(tiny_teacher,), weights="none", image_size=16, batch_size=8, epochs=2, teacher_views=3)
    teacher = build_teacher(tiny_teacher, data.input_shape, data.n_classes, weights=None)
    stream = view_pool_stream(teacher, data, cfg)
    assert len(stream) == 3  # an epoch is one pass over the 24 training images, batch 8
    batches = []
    for _ in range(4):  # 3 views x 24 images = 9 batches, then more
        batches += [stream[i] for i in range(len(stream))]
        stream.on_epoch_end()
    assert len(batches) == 12
    images = np.concatenate([b[0]["image"] for b in batches[:9]])
    logits = np.concatenate([b[0]["teacher_logits"] for b in batches[:9]])
    assert images.shape == (72, 16, 16, 3)
    np.testing.assert_allclose(logits, np.asarray(teacher(images, training=False)), rtol=1e-4, atol=1e-4)
    originals = data.train.x.reshape(len(data.train), -1).astype(np.float32)
    unchanged = [(np.abs(originals - img.ravel()) <= 1).all(axis=1).any() for img in images[:8]]
    assert not any(unchanged)  # each pooled image is a new view, not a training image as it was
    student, history = distill_student(teacher, data, cfg, "views")
    assert len(history) == 2 and student.output.shape[-1] == data.n_classes


def test_teacher_on_every_batch_sees_the_students_augmented_view(tiny_teacher):
    """``teacher_views=0``: the augmentation runs inside the training step and the teacher's logits
    are taken on the very view the student gets (Beyer et al. 2022), on any backend."""
    import keras

    from ctdistill.data import load_dataset
    from ctdistill.models.student import build_student
    from ctdistill.training.distill import CachedTeacherDistiller, distill_student

    class Flip(keras.layers.Layer):  # a deterministic "augmentation": mirror in training only
        def call(self, x, training=None):
            return keras.ops.flip(x, axis=2) if training else x

    teacher = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    distiller = CachedTeacherDistiller(
        teacher=teacher, student=build_student((8, 8, 1), 2),
        distillation_losses=keras.distillation.LogitsDistillation(temperature=2.0, loss=keras.losses.KLDivergence()),
        student_loss_weight=0.5, augmenter=Flip())
    x = np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype("float32")
    distiller(x, training=True)
    seen = np.asarray(distiller._extract_all_teacher_features(x)["final_output"])
    np.testing.assert_allclose(seen, np.asarray(teacher(x[:, :, ::-1])), rtol=1e-5, atol=1e-5)
    assert not np.allclose(seen, np.asarray(teacher(x)))
    # and the whole fit runs with it, compiled (the view is kept within one traced step)
    data = load_dataset(None, 16, 3, 0, (6, 3, 3))
    cfg = Config(teachers=(tiny_teacher,), weights="none", image_size=16, batch_size=8, epochs=2, teacher_views=0)
    from ctdistill.models.teachers import build_teacher

    student, history = distill_student(build_teacher(tiny_teacher, data.input_shape, data.n_classes, None), data,
                                       cfg, "every batch")
    assert len(history) == 2 and np.isfinite(history["loss"]).all()
