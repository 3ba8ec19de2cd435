"""The compact student CNNs, as a table: ``seed`` (the seed's) and ``gap`` (global pooling).

Both: three Conv2D blocks (32, 64, 128 filters, 3x3, same padding, ReLU, BatchNorm, MaxPool 2).
``seed`` then has Flatten, Dense 256 ReLU, Dropout 0.5, Dense ``n_classes``: its Flatten -> Dense
weights grow with the input area (0.62 M parameters at 32 px, 2.19 M at 64 px). ``gap`` replaces
Flatten with global average pooling, so its size does not depend on the input size (0.13 M).

The models take raw 0..255 pixels (they rescale inside, so the exported ``.tflite`` needs no
separate preprocessing) and output *logits*: the softmax is applied outside, exactly once.
"""

from __future__ import annotations

import keras
from keras import layers

STUDENT_HEADS = {
    "seed": lambda: layers.Flatten(name="flatten"),
    "gap": lambda: layers.GlobalAveragePooling2D(name="gap"),
}


def build_student(input_shape: tuple[int, int, int], n_classes: int, name: str = "student", head: str = "seed",
                  bn_momentum: float = 0.99) -> keras.Model:
    """Build a student.

    Args:
        input_shape: ``(H, W, C)`` of the raw images.
        n_classes: number of output logits.
        name: Keras model name.
        head: ``seed`` (Flatten) or ``gap`` (global average pooling), see ``STUDENT_HEADS``.
        bn_momentum: BatchNormalization moving-average momentum (see ``ctdistill.training.recipe.set_bn_momentum``).

    Returns:
        An uncompiled ``keras.Model`` mapping uint8-range images to logits.

    Example:
        >>> build_student((32, 32, 3), 4).output.shape
        (None, 4)
    """
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = STUDENT_HEADS[head]()(x)
    x = layers.Dense(256, activation="relu", name="fc")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
