"""Figures (PNG under ``Plots/``): training curves, confusion matrices, ROC curves, reliability
diagrams and the accuracy-vs-size trade-off. They draw numbers computed elsewhere; nothing here
computes a metric.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ctdistill.assess.saliency import BORDER  # noqa: E402
from ctdistill.core.errors import DataError  # noqa: E402
from ctdistill.data.describe import open_picture  # noqa: E402
from ctdistill.run.folder import atomic_path  # noqa: E402

KIND_COLOURS = {"teacher": "tab:red", "distilled": "tab:blue", "quantized": "tab:green", "scratch": "tab:grey"}


OVERLAPS: list[tuple[str, list]] | None = None  # a list: every saved figure's overlapping texts go there (tests)


def save_figure(fig, path: Path) -> Path:
    """Write a figure atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    if OVERLAPS is not None:
        OVERLAPS.append((Path(path).name, overlapping_texts(fig)))
    plt.close(fig)
    return path


def plot_confusion(confusion: pd.DataFrame, title: str, path: Path) -> Path:
    """Confusion matrix heat map with class names and counts in every cell."""
    values = confusion.to_numpy()
    n = len(confusion)
    fig, ax = plt.subplots(figsize=(1.3 * n + 2.5, 1.1 * n + 2), layout="constrained")
    im = ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(n), confusion.columns, **_slanted(confusion.columns))
    ax.set_yticks(range(n), confusion.index)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(values[i, j]), ha="center", va="center",
                    color="white" if values[i, j] > values.max() / 2 else "black")
    fig.colorbar(im, ax=ax, label="images")
    return save_figure(fig, path)


def plot_history(history: pd.DataFrame, title: str, path: Path) -> Path:
    """Loss and accuracy per epoch, train and validation, with the restored epoch marked."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                ax.plot(history["epoch"], history[key], style, label=key)
        if "best" in history and history["best"].any():
            ax.axvline(history.loc[history["best"], "epoch"].iloc[-1], color="grey", lw=0.8, label="restored")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_confusion_pair(confusion: list[list[int]], class_names: list[str], title: str, path: Path) -> Path:
    """Counts and row-normalised rates (each row = the true class, so the diagonal is sensitivity)."""
    counts = np.asarray(confusion, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / counts.sum(axis=1, keepdims=True)
    n = len(class_names)
    # constrained layout keeps each colour bar (and its label) clear of the next panel's class names
    fig, axes = plt.subplots(1, 2, figsize=(2.6 * n + 3.6, 1.1 * n + 2.2), layout="constrained")
    for ax, values, label, fmt in ((axes[0], counts, "images", "{:.0f}"), (axes[1], rates, "share of true class",
                                                                             "{:.2f}")):
        im = ax.imshow(values, cmap="Blues", vmin=0)
        ax.set_xticks(range(n), class_names, **_slanted(class_names))
        ax.set_yticks(range(n), class_names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        for i in range(n):
            for j in range(n):
                ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center",
                        color="white" if values[i, j] > np.nanmax(values) / 2 else "black")
        fig.colorbar(im, ax=ax, label=label, shrink=0.8)
    axes[0].set_title("counts")
    axes[1].set_title("row-normalised")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_roc(curves: dict[str, list[dict]], class_names: list[str], title: str, path: Path,
             aucs: dict[str, list[float]] | None = None) -> Path:
    """One-vs-rest ROC curves: one panel per class, one line per model (``curves``: model -> per-class
    points), each model's AUC for that class in the panel's legend (``aucs``: model -> per-class AUC)."""
    n = len(class_names)
    fig, axes = plt.subplots(1, n, figsize=(3.9 * n, 4.4), squeeze=False, layout="constrained")
    for c, ax in enumerate(axes[0]):
        for model, per_class in curves.items():
            if per_class[c]["fpr"]:
                auc = (aucs or {}).get(model, [None] * n)[c]
                ax.plot(per_class[c]["fpr"], per_class[c]["tpr"], lw=1.2,
                        label=model if auc is None else f"{model} (AUC {auc:.3f})")
        ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)  # a tick at 1.2 would run into the title
        ax.set_title(class_names[c])
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_reliability(calibrations: dict[str, dict], title: str, path: Path) -> Path:
    """Reliability diagram: accuracy against mean confidence per bin, one line per model, with its ECE."""
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8, label="perfect calibration")
    for model, bins in calibrations.items():
        conf, acc = np.asarray(bins["confidence"], float), np.asarray(bins["accuracy"], float)
        keep = ~np.isnan(conf)
        ax.plot(conf[keep], acc[keep], "o-", ms=3, label=f"{model} (ECE {bins['ece']:.3f})")
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title(title)
    return save_figure(fig, path)


def plot_accuracy_vs_size(metrics: pd.DataFrame, path: Path) -> Path:
    """Every model of the run: test accuracy (95% CI) against file size, log size axis. Points carry
    numbers and the key beside the plot names them (names on the points overlapped)."""
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    for kind, group in metrics.groupby("kind"):
        err = None
        if "accuracy_lo" in group:
            err = [100 * (group["accuracy"] - group["accuracy_lo"]), 100 * (group["accuracy_hi"] - group["accuracy"])]
        ax.errorbar(group["size_mb"], 100 * group["accuracy"], yerr=err, fmt="o", capsize=3,
                    color=KIND_COLOURS.get(kind), label=kind)
    _numbered(ax, metrics["model"], metrics["size_mb"], 100 * metrics["accuracy"])
    ax.set_xscale("log")
    ax.set_xlabel("model file size (MB, log scale)")
    ax.set_ylabel("test accuracy (%), 95% CI")
    ax.set_title("accuracy against size, every model of the run")
    ax.legend(loc="lower left", fontsize=8)
    return save_figure(fig, path)


def plot_leakage_curve(curve: pd.DataFrame, metrics: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against the smallest distance allowed to the nearest training image, one line per
    teacher, distilled and scratch model (quantized ones follow their float students), with the
    number of test images left on a second axis."""
    fig, ax = plt.subplots(figsize=(9, 4.6), layout="constrained")
    shown = metrics[metrics["kind"].isin(["teacher", "distilled", "scratch"])]
    for row in shown.itertuples():
        if row.model in curve:
            ax.plot(curve["d"], 100 * curve[row.model], "-", lw=1.3, color=KIND_COLOURS.get(row.kind),
                    alpha=0.9, label=row.model)
    ax.set_xlabel("test images kept: nearest training/validation image more than d bits away (perceptual hash)")
    ax.set_ylabel("test accuracy (%)")
    count = ax.twinx()
    kept = count.plot(curve["d"], curve["n_images"], ":", color="black", lw=1, label="test images kept (right axis)")
    count.set_ylabel("test images kept")
    ax.legend(handles=ax.get_lines() + kept, loc="lower left", fontsize=7)
    ax.set_title("how much of the result rests on near copies")
    return save_figure(fig, path)


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


def plot_accuracy_vs_latency(metrics: pd.DataFrame, bench: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against batch-1 median latency (``ctdistill bench``), one marker per thread count.

    ``bench["model"]`` must hold the run's model ids (``report`` maps bench file names to them)."""
    joined = bench.merge(metrics[["model", "kind", "accuracy"]], on="model")
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    for (kind, threads), group in joined.groupby(["kind", "threads"]):
        ax.scatter(group["latency_ms_median"], 100 * group["accuracy"], color=KIND_COLOURS.get(kind),
                   marker="o" if threads == 1 else "^", label=f"{kind}, {threads} thread(s)")
    _numbered(ax, joined["model"], joined["latency_ms_median"], 100 * joined["accuracy"])
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency, median (ms, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy against latency on this machine")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def _slanted(names) -> dict:
    """Tick label placement for class names under a matrix: slanted when short, upright when long
    (long names slanted at 35 degrees run into their neighbours)."""
    return {"rotation": 90, "ha": "center"} if max(len(str(n)) for n in names) > 10 else {"rotation": 35, "ha": "right"}


def _numbered(ax, names, xs, ys) -> None:
    """Number every point (a model keeps its number wherever it appears) and list the numbers beside
    the axes, so no name is drawn over another."""
    numbers = {name: i + 1 for i, name in enumerate(dict.fromkeys(names))}
    for name, x, y in zip(names, xs, ys, strict=True):
        ax.annotate(str(numbers[name]), (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    key = "\n".join(f"{n:>2}  {name}" for name, n in numbers.items())
    ax.text(1.02, 1.0, key, transform=ax.transAxes, fontsize=7, va="top", family="monospace")


def overlapping_texts(fig) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap: titles, axis labels, drawn tick labels, legend
    entries and the keys beside a plot (texts placed on the data, such as the counts in a confusion
    matrix or point numbers, sit there by design and are left out). Used by the tests on every
    report figure.
    """
    fig.canvas.draw()  # lay the figure out as it is drawn
    renderer = fig.canvas.get_renderer()
    texts = [fig._suptitle] + list(fig.texts)
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_visible():  # a twin axes hides the axis it shares
                texts += [label for tick in axis._update_ticks() for label in (tick.label1, tick.label2)
                          if label.get_visible()]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
        texts += [x for x in ax.texts if x.get_transform() == ax.transAxes]  # keys beside the axes
    unique = {id(x): x for x in texts if x is not None}.values()  # the suptitle is also one of fig.texts
    boxes = [(x.get_text(), x.get_window_extent(renderer).expanded(0.98, 0.9))  # touching is not overlapping
             for x in unique if x.get_visible() and x.get_text().strip()]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]
