"""Predict with an exported model on image files, folders and DICOM files.

The model's card (``<model file>.json``, see ``report.card``) gives its input size, channels and class
names; images go through the same decoding as the training images (``decode_image``), DICOM files
through ``data.dicom``. A run folder as the model picks, among the quantized students the safety gate
chose (``quantize.gate``), the one with the best validation accuracy (or the one named with
``teacher`` / ``mode``).

Example:
    >>> table, failed = predict_paths("runs/ct1", ["scans/"])      # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ctdistill.assess.verdict import best_candidate, ungated_mode
from ctdistill.core.errors import CtdistillError, DataError
from ctdistill.data.dicom import LUNG_WINDOW
from ctdistill.data.inputs import read_input, source_size
from ctdistill.models.inference import load_model, predict_keras, predict_tflite
from ctdistill.run.folder import VERDICT, card_path, read_json

MODEL_SUFFIXES = (".tflite", ".keras", ".h5")
log = logging.getLogger("ctdistill")


def resolve_model(path: str | Path, teacher: str | None = None, mode: str | None = None) -> tuple[Path, str]:
    """A model file as given, or the chosen student of a run folder, with the reason for the choice.

    Returns:
        ``(model file, reason)``; the reason says why this file (for the terminal).
    """
    path = Path(path)
    if path.is_file():
        return path, "the model file given"
    if not path.is_dir():
        raise CtdistillError(f"{path}: no such model file or run folder")
    cards = []
    for card in sorted(p for p in path.glob("*.json") if p.name.endswith(tuple(s + ".json" for s in MODEL_SUFFIXES))):
        try:
            cards.append(read_card(card, RUN_KEYS + CHOICE_KEYS))
        except CtdistillError as exc:  # another model's broken card must not stop the choice
            log.warning("skipped %s", exc)

    made: dict[str, list[str]] = {}
    for c in cards:
        if c["kind"] == "quantized":
            made.setdefault(c["teacher"], []).append(c["mode"])

    def chosen(c):  # without --mode: the mode the safety gate accepted; where none ran, verdict's rule
        if mode is not None:
            return c["mode"] == mode
        gate = c.get("safety_gate")
        return gate["chosen"] if gate else c["mode"] == ungated_mode(made.get(c["teacher"], []))

    wanted = [c for c in cards if c["kind"] in ("quantized", "distilled") and chosen(c)
              and (teacher is None or c["teacher"] == teacher)]
    if not wanted:
        raise CtdistillError(f"{path}: no model card for a student with "
                             f"{f'mode={mode}' if mode else 'a mode that passed the quantization gate'}"
                             f"{f', teacher={teacher}' if teacher else ''}; is it a finished ctdistill run?")
    best = next(c for c in wanted if c["model"] == best_candidate(
        [{"model": c["model"], "valid_accuracy": c["metrics"].get("valid_accuracy"), "size_mb": c["size_mb"]}
         for c in wanted])["model"])
    why = (f"mode {mode} as asked" if mode else "the mode the quantization safety gate accepted"
           if best.get("safety_gate") else f"{best['mode']}, unchecked: no safety gate ran")
    among = f"teacher {teacher}'s students" if teacher else f"{len(wanted)} candidate student(s)"
    valid = best["metrics"].get("valid_accuracy")
    score = f"best validation accuracy ({valid:.3f})" if valid is not None else "first"
    return path / best["file"], f"{best['mode']}: {why}; {score} of {among}"


def load_card(model_file: Path) -> dict:
    if model_file.suffix not in MODEL_SUFFIXES:
        raise CtdistillError(f"{model_file}: not a model ctdistill can load; give a .tflite, .keras or .h5 file "
                             "written by ctdistill (with its model card <file>.json), or a run folder")
    sidecar = card_path(model_file)
    if not sidecar.is_file():
        raise CtdistillError(f"{model_file}: its model card {sidecar.name} is missing (it holds the input size, "
                             "channels and class names); export models with ctdistill run or ctdistill report")
    return read_card(sidecar)


# What a model card (report.card) must hold for its model to run, and to be chosen from a run folder.
RUN_KEYS = ("input", "class_names")
CHOICE_KEYS = ("model", "file", "kind", "teacher", "mode", "metrics", "size_mb")


def read_card(path: Path, required: tuple[str, ...] = RUN_KEYS) -> dict:
    """A model card, checked for the ``required`` keys: a one-line ``CtdistillError`` naming the file
    when it is not valid JSON or lacks one."""
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CtdistillError(f"{path}: model card is not valid JSON ({exc})") from None
    missing = [k for k in required if not isinstance(card, dict) or k not in card]
    if missing:
        raise CtdistillError(f"{path}: not a ctdistill model card (missing {', '.join(missing)})")
    return card


def expand_inputs(paths: list[str | Path]) -> list[Path]:
    """Files as given; folders recursively (sorted, hidden files skipped)."""
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            if not found:
                raise DataError(f"{path}: no files in this folder (nothing to predict)")
            files += found
        else:
            files.append(path)
    return files


def predict_paths(model: str | Path, inputs: list[str | Path], teacher: str | None = None, mode: str | None = None,
                  window: tuple[float, float] = LUNG_WINDOW, explain: Path | None = None
                  ) -> tuple[pd.DataFrame, list[str]]:
    """Predict every input; returns the table (file, frame, crop fallback, predicted class, one
    probability per class) and the one-line errors of the inputs that could not be read (they are
    skipped). ``table.attrs["warnings"]`` lists what the user must know: synthetic training data, a
    run whose verdict found no model fit to deploy, images whose body the crop did not find. With
    ``explain`` (a folder), each image's occlusion map of its answer (``assess.saliency``) is written
    there as an overlay PNG, named in the table's ``explained`` column."""
    model_file, reason = resolve_model(model, teacher, mode)
    info = load_card(model_file)
    runner = load_model(model_file)
    size, channels, names = info["input"]["height"], info["input"]["channels"], info["class_names"]
    crop = info.get("preprocessing", {}).get("crop", "none")  # cards before the crop existed: none
    rows, arrays, failed, small = [], [], [], []
    for path in expand_inputs(inputs):
        try:
            frames, fallbacks = read_input(path, size, channels, window, crop)
        except DataError as exc:
            failed.append(str(exc))
            continue
        rows += [{"file": str(path), "frame": i, "crop_fallback": why} for i, why in enumerate(fallbacks)]
        arrays += frames
        small += [str(path)] * len(frames) if min(source_size(path)) < size else []
    table = pd.DataFrame(rows, columns=["file", "frame", "crop_fallback"])
    if arrays:
        run = lambda x: (predict_tflite(runner, x.astype(np.float32)) if isinstance(runner, Path)  # noqa: E731
                         else predict_keras(runner, x.astype(np.float32)))
        proba = run(np.stack(arrays))
        table["predicted"] = np.asarray(names)[proba.argmax(axis=1)]
        for i, name in enumerate(names):
            table[f"prob_{name}"] = proba[:, i]
        if explain is not None:
            table["explained"] = explain_images(run, arrays, table, proba, explain)
    warnings = _warnings(info, model_file, table)
    if small:  # upscaled from fewer pixels than the model takes: the answer says little about the image
        warnings.append(f"{len(small)} image(s) are smaller than the model's {size}x{size} input and were enlarged "
                        f"to it (e.g. {small[0]}): their predictions rest on less than the model was trained on")
    table.attrs.update(model=str(model_file), reason=reason, warnings=warnings)
    return table, failed


def explain_images(run, arrays: list[np.ndarray], table: pd.DataFrame, proba: np.ndarray, folder: Path) -> list[str]:
    """Write each image's occlusion map of its answer as ``folder/<nnnn>_<file>_f<frame>.png``; returns
    the paths, in the table's order."""
    from ctdistill.assess.saliency import occlusion_map
    from ctdistill.report.pictures import plot_overlay  # matplotlib: only when maps are asked for

    written = []
    for k, (row, image) in enumerate(zip(table.itertuples(), arrays, strict=True)):
        label = int(proba[k].argmax())
        path = Path(folder) / f"{k:04d}_{Path(row.file).stem}_f{row.frame}.png"
        caption = f"{Path(row.file).name} (frame {row.frame}): {row.predicted} {100 * proba[k, label]:.0f}%"
        written.append(str(plot_overlay(image, occlusion_map(run, image, label), caption, path)))
    return written


def _warnings(info: dict, model_file: Path, table: pd.DataFrame) -> list[str]:
    out = []
    if "synthetic" in str(info.get("dataset", {}).get("source", "")):
        out.append("this model was trained on ctdistill's synthetic phantoms, not medical data: its predictions "
                   "say nothing about patients")
    unfit = (read_json(model_file.parent, VERDICT, {}) or {}).get("unfit")
    if unfit:
        out.append(f"the run's verdict found no model fit to deploy: its best candidate does not beat guessing "
                   f"({100 * unfit['bound']:.1f}% against {100 * unfit['chance']:.1f}%; see {VERDICT})")
    missed = table.loc[table["crop_fallback"] != "", "crop_fallback"]
    if len(missed):
        why = ", ".join(f"{reason} {n}" for reason, n in missed.value_counts().items())
        out.append(f"the body was not found in {len(missed)} of {len(table)} image(s) ({why}; column crop_fallback): "
                   "they were predicted on the whole image, unlike training's crops")
    return out


def shown_path(path: str) -> str:
    """``path`` relative to the current folder when that is shorter (for the terminal; files keep theirs)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return relative if len(relative) < len(path) else path


def counts_text(table: pd.DataFrame) -> str:
    """``predicted: normal 3, adenocarcinoma 1 (4 images from 3 files)``."""
    if "predicted" not in table or not len(table):
        return "predicted: nothing (no readable input)"
    counts = table["predicted"].value_counts()
    return (f"predicted: {', '.join(f'{name} {n}' for name, n in counts.items())} ({len(table)} image(s) from "
            f"{table['file'].nunique()} file(s))")
