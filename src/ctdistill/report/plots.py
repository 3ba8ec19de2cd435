"""Charts (PNG under ``Plots/``): training curves, confusion matrices, ROC curves, reliability
diagrams, per-class sensitivity and specificity, the accuracy-vs-size and quantization trade-offs.
They draw numbers computed elsewhere; nothing here computes a metric. Figures made of the data's
images (pairs, crops, saliency) are in ``pictures``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

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


def plot_per_class(per_class: pd.DataFrame, kinds: dict[str, str], path: Path) -> Path:
    """Per class (one panel each): every model's sensitivity (circle) and specificity (triangle) with
    their Wilson 95% intervals, models as rows coloured by kind (``kinds``: model -> kind)."""
    classes, models = list(dict.fromkeys(per_class["class"])), list(dict.fromkeys(per_class["model"]))
    fig, axes = plt.subplots(1, len(classes), figsize=(2.6 * len(classes) + 2.5, 0.32 * len(models) + 1.6),
                             sharey=True, squeeze=False, layout="constrained")
    rows = {m: i for i, m in enumerate(models)}
    for name, ax in zip(classes, axes[0], strict=True):
        mine = per_class[per_class["class"] == name]
        for measure, marker, shift in (("sensitivity", "o", -0.15), ("specificity", "^", 0.15)):
            for row in mine.itertuples():
                value = 100 * getattr(row, measure)
                lo, hi = (100 * getattr(row, f"{measure}_{end}", np.nan) for end in ("lo", "hi"))
                err = None if np.isnan(lo) else [[value - lo], [hi - value]]
                ax.errorbar(value, rows[row.model] + shift, xerr=err, fmt=marker, ms=4, capsize=2, lw=1,
                            color=KIND_COLOURS.get(kinds.get(row.model), "black"))
        ax.set_title(str(name)[:24], fontsize=8, loc="left")
        ax.set_xlabel("%", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    lowest = per_class[[c for c in ("sensitivity", "specificity", "sensitivity_lo", "specificity_lo")
                        if c in per_class]].min().min()
    for ax in axes[0]:  # one scale for every panel, from a round number below the lowest value
        ax.set_xlim(max(0.0, 10 * np.floor(10 * lowest) - 2) if np.isfinite(lowest) else -2, 102)
    axes[0][0].set_yticks(range(len(models)), [m[:36] for m in models])
    axes[0][0].invert_yaxis()
    handles = [plt.Line2D([], [], ls="", marker=m, color="black", label=t) for m, t in
               (("o", "sensitivity"), ("^", "specificity"))]
    handles += [plt.Line2D([], [], ls="", marker="s", color=c, label=k) for k, c in KIND_COLOURS.items()
                if k in set(kinds.values())]
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    fig.suptitle("per class: sensitivity and specificity, Wilson 95% intervals", fontsize=9)
    return save_figure(fig, path)


def plot_quantization(impact: pd.DataFrame, path: Path) -> Path:
    """Each quantized student: its accuracy change against its float student (points) and its file
    size (MB, log axis), coloured by teacher, one marker per mode; collapsed models crossed out."""
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    colours = dict(zip(dict.fromkeys(impact["teacher"]), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 9,
                       strict=False))
    markers = dict(zip(dict.fromkeys(impact["mode"]), "os^Dvp*hX", strict=False))
    dodge = {t: 1.0 + 0.025 * (i - (len(colours) - 1) / 2) for i, t in enumerate(colours)}  # students of one size
    for row in impact.itertuples():
        x, y = row.size_mb * dodge[row.teacher], 100 * row.accuracy_change
        ax.scatter(x, y, color=colours[row.teacher], marker=markers[row.mode], s=40, zorder=3)
        if row.collapsed:
            ax.scatter(x, y, color="tab:red", marker="x", s=120, zorder=4)
    ax.axhline(0, color="grey", lw=1, ls="--")
    if impact["size_mb"].max() > 3 * impact["size_mb"].min():  # sizes far apart: a log axis
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("quantized file size (MB)")
    ax.set_ylabel("accuracy change against\nthe float student (points)")
    ax.set_title("what quantization cost, per student and mode (test split; students of one size set side by side)",
                 fontsize=9)
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=str(t)[:28]) for t, c in colours.items()]
    handles += [plt.Line2D([], [], ls="", marker=m, color="black", label=str(mode)) for mode, m in markers.items()]
    if impact["collapsed"].any():
        handles.append(plt.Line2D([], [], ls="", marker="x", color="tab:red", label="collapsed (one class)"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7)
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
