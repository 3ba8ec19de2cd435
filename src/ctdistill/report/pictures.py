"""Figures made of the data's images (PNG under ``Plots/``): copy pairs, the body crop's contact sheet,
and the deployed model's occlusion maps. They draw what ``assess`` and the audit computed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctdistill.assess.saliency import BORDER
from ctdistill.core.errors import DataError
from ctdistill.data.describe import open_picture
from ctdistill.report.plots import plt, save_figure


def plot_pairs(pairs: list[tuple[str, str, str]], path: Path, limit: int = 8) -> Path:
    """Image pairs side by side (left: the test image, right: what it repeats), one row per pair,
    captioned; a file that cannot be read any more (the data moved) is left blank."""
    rows = pairs[:limit]
    fig, axes = plt.subplots(len(rows), 2, figsize=(6, 3 * len(rows)), squeeze=False, layout="constrained")
    for (left, right, caption), ax_row in zip(rows, axes, strict=True):
        for file, ax in ((left, ax_row[0]), (right, ax_row[1])):
            ax.set_axis_off()
            try:
                ax.imshow(open_picture(file), cmap="gray")
            except (OSError, DataError):
                ax.text(0.5, 0.5, "not readable here", ha="center", transform=ax.transAxes)
        ax_row[0].set_title(caption, fontsize=8, loc="left")
    return save_figure(fig, path)


def plot_crops(samples: list[tuple[str, str, str, str]], path: Path, columns: int = 4) -> Path:
    """A contact sheet of the body crop: each original with its box (``data.crop``; the audit's
    ``body_box``: top, left, bottom, right), green where the body was found, red where the whole image
    was kept (captioned with why). ``samples``: ``(file, caption, body_box, body_fallback)``."""
    rows = -(-len(samples) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows), squeeze=False, layout="constrained")
    for ax in axes.ravel():
        ax.set_axis_off()
    for (file, caption, box, fallback), ax in zip(samples, axes.ravel(), strict=False):
        try:
            ax.imshow(open_picture(file), cmap="gray")
        except (OSError, DataError):
            ax.text(0.5, 0.5, "not readable here", ha="center", transform=ax.transAxes)
        top, left, bottom, right = (int(v) for v in str(box).split(","))
        ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, lw=1.5,
                                   edgecolor="tab:red" if fallback else "lime"))
        ax.set_title(f"{caption}\n{f'no body found: {fallback}' if fallback else 'body found'}", fontsize=7, loc="left")
    return save_figure(fig, path)


def plot_saliency(examples: list, path: Path) -> Path:
    """Test images of the deployed model (top) and their occlusion maps over them (bottom), captioned
    with the true class, the answer and its confidence (``assess.saliency.Example``)."""
    fig, axes = plt.subplots(2, len(examples), figsize=(2.2 * len(examples), 4.6), squeeze=False,
                             layout="constrained")
    for example, (top, bottom) in zip(examples, axes.T, strict=True):
        grey = example.image.mean(axis=-1)
        top.imshow(grey, cmap="gray", vmin=0, vmax=255)
        bottom.imshow(grey, cmap="gray", vmin=0, vmax=255)
        bottom.imshow(np.clip(example.heat, 0, None), cmap="inferno", alpha=0.55)
        top.set_title(f"{example.kind}: {example.true[:14]}\nsaid {example.predicted[:14]} "
                      f"({100 * example.confidence:.0f}%)", fontsize=7, loc="left")
        for ax in (top, bottom):
            ax.set_axis_off()
    return save_figure(fig, path)


def plot_overlay(image: np.ndarray, heat: np.ndarray, caption: str, path: Path) -> Path:
    """One model input beside its occlusion map laid over it (``ctdistill predict --explain``)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(4.4, 2.5), layout="constrained")
    grey = image.mean(axis=-1)
    for ax in (left, right):
        ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
    right.imshow(np.clip(heat, 0, None), cmap="inferno", alpha=0.55)
    left.set_title(caption[:60], fontsize=7, loc="left")
    return save_figure(fig, path)


def plot_mean_saliency(mean: dict[str, np.ndarray], path: Path) -> Path:
    """Each class's mean occlusion map over its test images, the outer band (``assess.saliency.BORDER``) outlined."""
    fig, axes = plt.subplots(1, len(mean), figsize=(2.4 * len(mean), 2.6), squeeze=False, layout="constrained")
    for (name, heat), ax in zip(mean.items(), axes[0], strict=True):
        ax.imshow(np.clip(heat, 0, None), cmap="inferno")
        height, width = heat.shape
        edge_y, edge_x = max(1, round(BORDER * height)), max(1, round(BORDER * width))
        ax.add_patch(plt.Rectangle((edge_x - 0.5, edge_y - 0.5), width - 2 * edge_x, height - 2 * edge_y, fill=False,
                                   lw=1, ls="--", edgecolor="white"))
        ax.set_title(name[:24], fontsize=8, loc="left")
        ax.set_axis_off()
    return save_figure(fig, path)
