"""Where a model looks: occlusion sensitivity (Zeiler & Fergus 2014) of any exported model.

Slide a grey patch over the image and record how much the probability of one class drops: pixels
whose hiding costs the most are the ones the decision rests on. It needs only a function from a
batch of images to probabilities, so it runs on the ``.tflite`` int8 file that is deployed as well
as on a Keras model, with no gradients and no backend. All occluded copies of one image go through
the model in one batch.

On small medical datasets a shortcut shows here first: a model whose saliency sits on the image's
border (the scanner table, a margin, a burned-in marker) rather than in the body.
:func:`border_share` measures the share of the saliency in the outer band of the image against the
band's share of the area.

Example:
    >>> corner = lambda x: np.stack([x[:, :4, :4].mean((1, 2, 3)) / 255, 1 - x[:, :4, :4].mean((1, 2, 3)) / 255], 1)
    >>> image = np.full((16, 16, 1), 100, np.uint8); image[:4, :4] = 250  # the class-0 evidence, top left
    >>> heat = occlusion_map(corner, image, label=0, patch=4, stride=2)
    >>> bool(heat[:4, :4].mean() > heat[8:, 8:].mean())
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ctdistill.core.errors import DataError
from ctdistill.data.dicom import LUNG_WINDOW
from ctdistill.data.inputs import read_input
from ctdistill.models.inference import load_model, predict_keras, predict_tflite
from ctdistill.run.book import saved_values
from ctdistill.run.folder import predictions_dir, read_predictions

BORDER = 0.125  # the outer band whose share of the saliency is reported: 1/8 of each side
MEAN_OVER = 16  # test images per class averaged into the class's mean map


def patch_for(side: int) -> tuple[int, int]:
    """``(patch, stride)`` for an image ``side`` px wide: patches of 1/4 of the side, half-overlapping."""
    patch = max(2, side // 4)
    return patch, max(1, patch // 2)


def occlusion_map(predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray, label: int,
                  patch: int | None = None, stride: int | None = None, fill: float | None = None) -> np.ndarray:
    """The drop in ``label``'s probability when each region of ``image`` is hidden, per pixel.

    Args:
        predict: a batch of ``(N, H, W, C)`` uint8 images to ``(N, classes)`` probabilities.
        image: one ``(H, W, C)`` uint8 image, as the model takes it.
        label: the class whose probability is watched (the true one, or the predicted one).
        patch, stride: the patch's side and step in pixels (default :func:`patch_for`).
        fill: the grey the patch is painted (default: the image's mean, so the patch adds no edge of its own).

    Returns:
        ``(H, W)`` floats: each pixel's mean drop over the patches that covered it (negative where
        hiding it raised the probability).
    """
    height, width = image.shape[:2]
    default_patch, default_stride = patch_for(min(height, width))
    patch, stride = patch or default_patch, stride or default_stride
    fill = float(image.mean()) if fill is None else fill
    tops = sorted({*range(0, height - patch + 1, stride), height - patch})
    lefts = sorted({*range(0, width - patch + 1, stride), width - patch})
    boxes = [(t, left) for t in tops for left in lefts]
    copies = np.repeat(image[None], len(boxes) + 1, axis=0)
    for k, (t, left) in enumerate(boxes, start=1):
        copies[k, t:t + patch, left:left + patch] = np.uint8(round(fill))
    probability = np.asarray(predict(copies))[:, label]
    drop, covered = np.zeros((height, width)), np.zeros((height, width))
    for k, (t, left) in enumerate(boxes, start=1):
        drop[t:t + patch, left:left + patch] += probability[0] - probability[k]
        covered[t:t + patch, left:left + patch] += 1
    return drop / np.maximum(covered, 1)


def border_share(heat: np.ndarray, band: float = BORDER) -> tuple[float, float]:
    """``(saliency share, area share)`` of the outer ``band`` of the image: the positive part of the
    map in the band over all of it, and the band's share of the pixels (what an even map would give).

    Example:
        >>> heat = np.zeros((16, 16)); heat[0, :] = 1
        >>> border_share(heat)
        (1.0, 0.4375)
    """
    height, width = heat.shape
    edge_y, edge_x = max(1, round(band * height)), max(1, round(band * width))
    outer = np.ones_like(heat, dtype=bool)
    outer[edge_y:height - edge_y, edge_x:width - edge_x] = False
    positive = np.clip(heat, 0, None)
    total = positive.sum()
    return (float(positive[outer].sum() / total) if total > 0 else 0.0), float(outer.mean())


@dataclasses.dataclass
class Example:
    """One test image of the deployed model with its saliency map: ``kind`` is ``"correct"`` (the most
    confident right answer of its class) or ``"wrong"`` (its most confident wrong one); the map watches
    the predicted class."""

    file: str
    true: str
    predicted: str
    confidence: float
    kind: str
    image: np.ndarray
    heat: np.ndarray


def explain_deployed(run_dir: Path, deploy: dict, class_names: list[str], per_class: int = MEAN_OVER) -> dict | None:
    """Saliency of the deployed model on its own test images, for the report.

    Args:
        run_dir: the run folder.
        deploy: the verdict's ``deploy`` entry: ``file`` (relative to ``run_dir``) and ``model`` (its name in
            ``predictions/``).
        class_names: the run's classes, in the model's output order.
        per_class: test images per class averaged into the class's mean map.

    Returns:
        ``{"examples": [Example], "mean": {class: (H, W) map}, "border": {class: (saliency share,
        area share)}, "read": n}``; None when no test file can be read here (synthetic phantoms, a run
        folder copied without its data) or the model file is not there.
    """
    path, model_id = Path(run_dir) / deploy["file"], deploy["model"]
    if not path.is_file():  # a report rebuilt from a run folder copied without its models
        return None
    config = saved_values(run_dir)  # the run's own preprocessing, with an older run's legacy values
    size, channels, crop = config["image_size"], config["channels"], config["crop"]
    runner = load_model(path)
    predict = (lambda x: predict_tflite(path, x)) if path.suffix == ".tflite" else (
        lambda x: predict_keras(runner, x.astype(np.float32)))
    table = read_predictions(predictions_dir(run_dir), model_id)
    if "file" not in table:  # images that were never files (the synthetic phantoms): nothing to read again
        return None
    test = table[table["split"] == "test"].reset_index(drop=True)
    proba = test[[f"prob_{c}" for c in class_names]].to_numpy()
    test = test.assign(confidence=proba.max(axis=1))
    images = {}

    def image(file: str) -> np.ndarray | None:
        if file not in images:
            try:
                images[file] = read_input(Path(file), size, channels, LUNG_WINDOW, crop)[0][0]
            except (OSError, DataError):
                images[file] = None
        return images[file]

    examples, mean, border = [], {}, {}
    for index, name in enumerate(class_names):
        mine = test[test["true_label"] == name]
        for kind, rows in (("correct", mine[mine["predicted_label"] == name]),
                           ("wrong", mine[mine["predicted_label"] != name])):
            for row in rows.sort_values("confidence", ascending=False).itertuples():
                if (img := image(row.file)) is not None:
                    label = class_names.index(row.predicted_label)
                    examples.append(Example(row.file, name, row.predicted_label, float(row.confidence), kind, img,
                                            occlusion_map(predict, img, label)))
                    break
        maps = [occlusion_map(predict, img, index) for file in mine["file"].head(per_class)
                if (img := image(file)) is not None]
        if maps:
            mean[name] = np.mean(maps, axis=0)
            border[name] = border_share(mean[name])
    read = sum(v is not None for v in images.values())
    return {"examples": examples, "mean": mean, "border": border, "read": read} if read else None
