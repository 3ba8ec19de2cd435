"""The run's verdict: what to deploy and what to know about it, decided from the run's own numbers.

A reader should not have to assemble the story from sixty files. :func:`verdict` picks the model
``ctdistill predict RUN_DIR`` would deploy (the student whose quantized mode the safety gate
accepted, with the best validation accuracy: the same rule as ``predict.resolve_model``) and
gathers, for it: test accuracy and macro-F1 with their 95% intervals, the distillation gain over
the scratch student with its paired interval, the worst class and its sensitivity, the gate's
decision, and the warnings that apply to the run. Numbers and flags only; ``report.tables.verdict_text``
turns them into sentences for the terminal, ``report.md`` and ``report.html``.

Example:
    >>> found = verdict(assess_run(Path("runs/ct1")), Path("runs/ct1"))   # doctest: +SKIP
    >>> found["deploy"]["model"], found["warnings"]                        # doctest: +SKIP
    ('densenet121_student_int8', [])
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ctdistill.assess.scoring import SHARED_ROW
from ctdistill.core.choices import DEPLOY_ORDER
from ctdistill.data.audit_text import label_tag_words
from ctdistill.run import folder as rf

SMALL_TEST_SET = 100  # fewer test images than this: every interval is wide (one image is > 1 point)
CHANCE_MARGIN = 0.05  # a teacher within 5 points of always answering the largest class is "near chance"


def best_candidate(candidates: list[dict]) -> dict | None:
    """The one deployment rule, used by the verdict and by ``predict RUN_DIR`` alike: the highest
    validation accuracy (test numbers never choose); a tie goes to the smaller file, then the name.

    Args:
        candidates: ``{"model", "valid_accuracy", "size_mb"}`` of each student that may be deployed.
    """
    ranked = sorted(candidates, key=lambda c: (-(c["valid_accuracy"] or 0.0), c["size_mb"], c["model"]))
    return ranked[0] if ranked else None


def ungated_mode(modes) -> str | None:
    """The mode deployed where no safety gate ran: the first of ``DEPLOY_ORDER`` among ``modes`` made.

    Example:
        >>> ungated_mode(["float16", "dynamic"])
        'dynamic'
    """
    return next((m for m in DEPLOY_ORDER if m in set(modes)), None)


def deployable(summary: pd.DataFrame, gates: dict) -> pd.Series | None:
    """The summary row of the model to deploy, or None when no quantized student passed the gate.

    Candidates are the quantized students whose mode the safety gate accepted (where no gate ran:
    :func:`ungated_mode` of the modes made); :func:`best_candidate` picks among them."""
    quantized = summary[summary["kind"] == "quantized"]
    made = quantized.groupby("teacher")["mode"].agg(list).to_dict()
    chosen = quantized[[mode == (gates[t]["decision"] if t in gates else ungated_mode(made[t]))
                        for t, mode in zip(quantized["teacher"], quantized["mode"], strict=True)]]
    if chosen.empty:
        return None
    best = best_candidate(chosen[["model", "valid_accuracy", "size_mb"]].to_dict("records"))
    return None if best is None else chosen.set_index("model", drop=False).loc[best["model"]]


def verdict(tables: dict, run_dir: Path) -> dict:
    """The findings a clinician reads first, from ``scoring.assess_run``'s tables and the run folder.

    Returns:
        ``{"deploy": {model, file, size_mb, latency_ms, accuracy, accuracy_lo, accuracy_hi, f1, f1_lo,
        f1_hi, n, float_model, teacher, mode} or None, "unfit": {reason, bound, chance, interval} or None
        (:func:`_unfit`), "gain": {accuracy_gain, f1_gain, *_lo, *_hi, baseline} or None, "worst_class":
        {class, sensitivity, support} or None, "gate": {decision, max_drop_points, attempts} or None,
        "warnings": [(kind, words)]}``.
    """
    summary, metrics = tables["summary"], tables["metrics"].set_index("model")
    gates = rf.read_json(run_dir, rf.QUANT_GATE, {})
    row = deployable(summary, gates)
    found: dict = {"deploy": None, "unfit": None, "gain": None, "worst_class": None, "gate": None, "warnings": []}
    if row is not None:
        m = metrics.loc[row["model"]]
        found["deploy"] = {"model": row["model"], "file": row["file"], "size_mb": float(row["size_mb"]),
                           "latency_ms": _latency(run_dir, row["file"]), "teacher": row["teacher"],
                           "float_model": f"{row['teacher']}_student",
                           **{k: float(m[k]) for k in ("accuracy", "f1") if k in m},
                           **{k: float(m[k]) for k in ("accuracy_lo", "accuracy_hi", "f1_lo", "f1_hi") if k in m},
                           "n": int(m["n"]), "valid_accuracy": float(row["valid_accuracy"]), "mode": row["mode"]}
        found["unfit"] = _unfit(found["deploy"], m, tables["per_class"], tables["metrics"])
        found["gain"] = _gain(tables["distillation_gain"], found["deploy"]["float_model"])
        found["worst_class"] = _worst_class(tables["per_class"], row["model"])
        gate = gates.get(row["teacher"])
        if gate:
            found["gate"] = {"decision": gate["decision"], "max_drop_points": gate["max_drop_points"],
                             "attempts": [(a["mode"], a["drop_points"], a["passed"]) for a in gate["attempts"]]}
    found["warnings"] = _warnings(tables, run_dir, found["deploy"])
    return found


def _unfit(deploy: dict, m: pd.Series, per_class: pd.DataFrame, metrics: pd.DataFrame) -> dict | None:
    """Why the chosen model is no better than guessing, or None: its test accuracy's 95% interval
    reaches down to the rate of always answering the largest class (the point estimate where no
    interval was computed), or its balanced accuracy is at most one over the number of classes."""
    majority = _majority_share(per_class, metrics)
    bound = deploy.get("accuracy_lo", deploy["accuracy"])
    if majority is not None and bound <= majority:
        return {"reason": "majority", "bound": float(bound), "chance": majority,
                "interval": "accuracy_lo" in deploy}
    classes = int((per_class["model"] == deploy["model"]).sum())
    balanced = m.get("balanced_accuracy")
    if classes and balanced is not None and not pd.isna(balanced) and balanced <= 1 / classes:
        return {"reason": "balanced", "bound": float(balanced), "chance": 1 / classes, "interval": False}
    return None


def _latency(run_dir: Path, file: str) -> float | None:
    """Batch-1 median latency of ``file`` from ``bench.csv`` (``ctdistill bench RUN_DIR``), if measured."""
    path = Path(run_dir) / rf.BENCH
    if not path.is_file():
        return None
    bench = pd.read_csv(path)
    rows = bench[bench.get("file", pd.Series(dtype=str)) == file] if "file" in bench else bench.iloc[0:0]
    return float(rows["latency_ms_median"].min()) if len(rows) else None


def _gain(gains: pd.DataFrame, model: str) -> dict | None:
    rows = gains[gains["model"] == model] if len(gains) else gains
    if not len(rows):
        return None
    row = rows.iloc[0]
    return {k: (float(row[k]) if k in row else None) for k in
            ("accuracy_gain", "accuracy_gain_lo", "accuracy_gain_hi", "f1_gain", "f1_gain_lo", "f1_gain_hi")
            } | {"baseline": row["baseline"]}


def _worst_class(per_class: pd.DataFrame, model: str) -> dict | None:
    rows = per_class[(per_class["model"] == model) & (per_class["support"] > 0)]
    if rows.empty:
        return None
    worst = rows.loc[rows["sensitivity"].idxmin()]
    return {"class": worst["class"], "sensitivity": float(worst["sensitivity"]), "support": int(worst["support"])}


def _warnings(tables: dict, run_dir: Path, deploy: dict | None) -> list[tuple[str, str]]:
    """``(kind, words)`` for every caution that applies; kinds are stable names tests can check."""
    metrics, per_class = tables["metrics"], tables["per_class"]
    source = str(rf.read_json(run_dir, rf.MANIFEST, {}).get("dataset", {}).get("source", ""))
    out = []
    if "synthetic" in source:
        out.append(("synthetic", "trained and tested on synthetic phantoms, not medical data: the numbers show "
                                 "the pipeline working, nothing about patients"))
    if deploy is None and not (metrics["kind"] == "quantized").any():
        out.append(("not_quantized", "no quantized model was made (no --quant-modes, or quantization deferred: "
                                     "ctdistill quantize RUN_DIR); nothing is recommended for deployment yet"))
    elif deploy is None:
        out.append(("no_deployable", "no quantized student passed the safety gate; nothing is recommended for "
                                     "deployment"))
    n = int(metrics["n"].iloc[0]) if len(metrics) else 0
    if 0 < n < SMALL_TEST_SET:
        out.append(("small_test_set", f"only {n} test images: one image moves accuracy by "
                                      f"{100 / n:.1f} points, so the intervals are wide"))
    scratch = metrics.loc[metrics["kind"] == "scratch", "accuracy"]
    chance = _majority_share(per_class, metrics)
    for row in metrics[metrics["kind"] == "teacher"].itertuples():
        if chance is not None and row.accuracy <= chance + CHANCE_MARGIN:
            out.append(("teacher_near_chance", f"teacher {row.teacher} is near chance ({100 * row.accuracy:.1f}% "
                                               f"against {100 * chance:.1f}% for always answering the largest "
                                               "class): it has little to teach"))
        elif len(scratch) and row.accuracy < scratch.iloc[0]:
            out.append(("teacher_weaker", f"teacher {row.teacher} ({100 * row.accuracy:.1f}%) is less accurate than "
                                          f"the student trained without it ({100 * scratch.iloc[0]:.1f}%)"))
    out += _resolution(tables.get("summary"))
    audit = tables["audit"] or {}
    shift, base = audit.get("train_test_shift") or {}, audit.get("shortcut_baseline") or {}
    if shift.get("shifted"):
        out.append(("train_test_shift", f"the test images are drawn differently from the training ones: file "
                                        f"metadata alone tells them apart with AUC {shift['auc']:.2f} (95% CI from "
                                        f"{shift['lo']:.2f}); validation numbers will not carry over (see the audit)"))
    if base.get("above_chance"):
        out.append(("shortcut", f"file metadata alone predicts the class with balanced accuracy "
                                f"{base['balanced_accuracy']:.2f} (chance {base['chance']:.2f}), mostly through "
                                f"{base['top_features'][0][0]}: a model can learn the images' source instead of the "
                                "finding"))
    out += [("label_tag", label_tag_words(tag)) for tag in audit.get("label_tags") or []]
    crossed = tables["cross_label"]
    if crossed is not None and len(crossed):
        out.append(("cross_label", f"{len(crossed)} test image(s) are the same picture as a training or validation "
                                   "image of another class (neighbours.csv; listed in the log): a label conflict, and "
                                   "a leak whichever label is right"))
    out += _scan_leak(tables.get("group_leakage"), deploy)
    compared = tables["valid_vs_test"]
    if deploy is not None and len(compared):
        mine = compared.set_index("model").loc[deploy["model"]]
        if mine["beyond_intervals"]:  # both are estimates: warn only when the intervals do not touch
            out.append(("shift", f"validation accuracy ({100 * deploy['valid_accuracy']:.1f}%, 95% CI from "
                                 f"{100 * mine['valid_lo']:.1f}%) is above the whole 95% interval of test accuracy "
                                 f"({100 * deploy['accuracy_lo']:.1f}-{100 * deploy['accuracy_hi']:.1f}%): the test "
                                 "images differ from the training ones (see the audit)"))
    return out


def _resolution(summary: pd.DataFrame | None) -> list[tuple[str, str]]:
    """A teacher that works at a larger size than the student, and what it knows on the student's view."""
    if summary is None or "accuracy_student_view" not in summary:  # runs made before the column existed
        return []
    rows = summary[(summary["kind"] == "teacher") & summary["accuracy_student_view"].notna()]
    return [("resolution", f"teacher {row.teacher} works on larger images than the student: {100 * row.accuracy:.1f}% "
                           f"on its own test images, {100 * row.accuracy_student_view:.1f}% on the student's, "
                           "enlarged to its size; it can pass on only what survives the student's resolution")
            for row in rows.itertuples()]


def _scan_leak(leakage: pd.DataFrame | None, deploy: dict | None) -> list[tuple[str, str]]:
    """A warning when test images share a patient or scan with the images the model learnt from
    (``scoring.group_leakage``), with the deployed model's accuracy on them and on the rest."""
    if leakage is None or leakage.empty or deploy is None or deploy["model"] not in leakage:
        return []
    rows = leakage.set_index("test images")
    shared = rows[rows.index.str.startswith(SHARED_ROW)]
    if shared.empty:
        return []
    rest, model = rows.drop(shared.index), deploy["model"]
    other = f", {100 * rest[model].iloc[0]:.1f}% on the rest" if len(rest) else ""
    return [("scan_leak", f"{int(shared['n_images'].iloc[0])} test image(s) share a patient or scan (copies included) "
                          "with training or validation images (DICOM ids, --group-by, or pictures chained within the "
                          f"audit's same-scan distance): the deployed model scores {100 * shared[model].iloc[0]:.1f}% "
                          f"on them{other} (report: 'Test images that share a patient or scan with training')")]


def _majority_share(per_class: pd.DataFrame, metrics: pd.DataFrame) -> float | None:
    """The accuracy of always answering the largest test class."""
    if per_class.empty or metrics.empty:
        return None
    support = per_class[per_class["model"] == metrics["model"].iloc[0]]["support"]
    return float(support.max() / support.sum()) if support.sum() else None

