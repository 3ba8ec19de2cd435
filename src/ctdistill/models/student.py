"""The seed's compact student CNN.

Three Conv2D blocks (32, 64, 128 filters, 3x3, same padding, ReLU, BatchNorm, MaxPool 2), Flatten,
Dense 256 ReLU, Dropout 0.5, Dense ``n_classes``. The model takes raw 0..255 pixels (it rescales
inside, so the exported ``.tflite`` needs no separate preprocessing) and outputs *logits*: the
softmax is applied outside the loss, exactly once.
"""

from __future__ import annotations

import keras
from keras import layers


def build_student(input_shape: tuple[int, int, int], n_classes: int, name: str = "student") -> keras.Model:
    """Build the seed student.

    Args:
        input_shape: ``(H, W, C)`` of the raw images.
        n_classes: number of output logits.
        name: Keras model name.

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
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="fc")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
