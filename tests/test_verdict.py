"""The verdict: generated from the run's numbers, in words a clinician reads; right when distillation
helps, when it hurts and when the teacher is at chance; the same in the terminal, report.md and report.html."""

from __future__ import annotations

import html
import json

import pandas as pd
import pytest

from ctdistill.assess.scoring import valid_vs_test
from ctdistill.assess.verdict import deployable, verdict
from ctdistill.report.tables import verdict_text

CLASSES = ["a", "b"]


def tables(teacher_acc: float, gain: tuple[float, float, float], n: int = 200, valid: float = 0.82,
           n_valid: int = 400) -> dict:
    """Tables as ``scoring.assess_run`` returns them, for one teacher ``t`` and its int8 student."""
    models = [("scratch_student", "scratch", "", "float32", 0.80),
              ("t_teacher", "teacher", "t", "float32", teacher_acc),
              ("t_student", "distilled", "t", "float32", 0.80 + gain[0]),
              ("t_student_int8", "quantized", "t", "int8", 0.80 + gain[0])]
    summary = pd.DataFrame([{"model": m, "kind": k, "teacher": t, "mode": mode, "accuracy": acc, "size_mb": 0.64,
                             "valid_accuracy": valid, "file": f"{m}.tflite"} for m, k, t, mode, acc in models])
    metrics = summary[["model", "kind", "teacher", "mode", "accuracy", "size_mb"]].assign(
        accuracy_lo=summary["accuracy"] - 0.05, accuracy_hi=summary["accuracy"] + 0.05, f1=summary["accuracy"],
        f1_lo=summary["accuracy"] - 0.05, f1_hi=summary["accuracy"] + 0.05, n=n)
    per_class = pd.DataFrame([{"model": m, "class": c, "sensitivity": s, "support": n // 2}
                              for m, *_ in models for c, s in zip(CLASSES, (0.95, 0.62), strict=True)])
    point, lo, hi = gain
    gains = pd.DataFrame([{"model": "t_student", "baseline": "scratch_student", "accuracy_gain": point,
                           "accuracy_gain_lo": lo, "accuracy_gain_hi": hi, "f1_gain": point, "f1_gain_lo": lo,
                           "f1_gain_hi": hi}])
    return {"summary": summary, "metrics": metrics, "per_class": per_class, "distillation_gain": gains,
            "valid_vs_test": valid_vs_test(summary, metrics, n_valid), "cross_label": None, "audit": None,
            "class_names": CLASSES}


def run_dir(tmp_path, source="real CT", gate=True):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "manifest.json").write_text(json.dumps({"dataset": {"source": source}}))
    if gate:
        (tmp_path / "quant_gate.json").write_text(json.dumps({"t": {
            "max_drop_points": 1.0, "decision": "int8",
            "attempts": [{"mode": "int8", "drop_points": 0.4, "passed": True}]}}))
    return tmp_path


def test_distillation_that_helps_is_said_with_its_interval(tmp_path):
    found = verdict(tables(0.95, (0.06, 0.02, 0.10)), run_dir(tmp_path))
    text = "\n".join(verdict_text(found))
    assert found["deploy"]["model"] == "t_student_int8"
    assert "Deploy t_student_int8.tflite (640 KB" in text
    assert "Distillation gained 6.0 points of accuracy" in text and "(95% CI +2.0 to +10.0 points;" in text
    assert "weakest class is b: it finds 62.0%" in text
    assert "int8 kept validation accuracy within 1 point(s)" in text
    assert found["warnings"] == []


def test_distillation_that_hurts_says_what_it_cost(tmp_path):
    text = "\n".join(verdict_text(verdict(tables(0.95, (-0.14, -0.20, -0.08)), run_dir(tmp_path))))
    assert "Distillation cost 14.0 points of accuracy" in text


def test_an_interval_that_spans_zero_is_no_clear_difference(tmp_path):
    text = "\n".join(verdict_text(verdict(tables(0.95, (0.01, -0.03, 0.05)), run_dir(tmp_path))))
    assert "no clear difference against the student trained without a teacher: +1.0 points" in text
    assert "includes zero" in text


def test_a_teacher_at_chance_a_small_synthetic_test_set_and_a_shift_are_warned(tmp_path):
    synthetic = run_dir(tmp_path, "built-in synthetic CT phantoms")
    found = verdict(tables(0.52, (0.0, -0.1, 0.1), n=40, valid=0.99), synthetic)
    kinds = [kind for kind, _ in found["warnings"]]
    assert kinds == ["synthetic", "small_test_set", "teacher_near_chance", "shift"]
    text = "\n".join(verdict_text(found))
    assert "Warning: teacher t is near chance (52.0% against 50.0%" in text
    few = verdict(tables(0.95, (0.0, -0.1, 0.1), valid=0.99, n_valid=20), run_dir(tmp_path / "few"))
    assert "shift" not in [k for k, _ in few["warnings"]]  # 20 validation images: their interval reaches the test's


def test_a_teacher_weaker_than_the_scratch_student_is_warned(tmp_path):
    found = verdict(tables(0.70, (0.0, -0.1, 0.1)), run_dir(tmp_path))
    assert [kind for kind, _ in found["warnings"]] == ["teacher_weaker"]


def test_without_a_gate_it_says_int8_is_unchecked_and_nothing_passing_recommends_nothing(tmp_path):
    found = verdict(tables(0.95, (0.0, -0.1, 0.1)), run_dir(tmp_path, gate=False))
    assert "deployed unchecked" in "\n".join(verdict_text(found))
    failed = {"t": {"max_drop_points": 1.0, "decision": "none", "attempts": []}}
    assert deployable(tables(0.95, (0, 0, 0))["summary"], failed) is None
    unquantized = tables(0.95, (0, 0, 0))
    unquantized["summary"] = unquantized["summary"][unquantized["summary"]["kind"] != "quantized"]
    unquantized["metrics"] = unquantized["metrics"][unquantized["metrics"]["kind"] != "quantized"]
    found = verdict(unquantized, run_dir(tmp_path))
    assert found["deploy"] is None and [k for k, _ in found["warnings"]] == ["not_quantized"]


def test_the_shared_run_carries_its_verdict_in_both_pages_and_deploys_what_predict_uses(finished_run):
    from ctdistill.predict import resolve_model

    out = finished_run[1]
    found = json.loads((out / "verdict.json").read_text())
    lines = verdict_text(found)
    # a tiny run of two epochs may well be at chance: then the refusal comes first, the candidate second
    deploy_line = lines[1] if found["unfit"] else lines[0]
    assert (found["unfit"] is None) == (not lines[0].startswith("No model of this run is fit to deploy"))
    assert deploy_line.startswith("Best candidate, not fit to deploy: " if found["unfit"] else "Deploy ")
    assert any("synthetic phantoms" in line for line in lines)
    markdown, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert markdown.index("## Verdict") < markdown.index("| run |")  # first thing a reader sees
    assert all(f"- {line}" in markdown for line in lines)
    assert all(html.escape(line) in page for line in lines) and page.index("id='verdict'") < page.index("id='run'")
    chosen, _ = resolve_model(out)
    assert found["deploy"]["file"] == chosen.name  # the verdict deploys what `predict RUN_DIR` would use


def test_a_model_no_better_than_guessing_is_refused_first(tmp_path):
    """A chance-level run: the verdict's first line refuses, whatever else it says."""
    chance = tables(0.95, (-0.28, -0.35, -0.20))  # students at 52% on a two-class 50/50 test set
    found = verdict(chance, run_dir(tmp_path))
    assert found["unfit"] == {"reason": "majority", "bound": pytest.approx(0.47), "chance": 0.5, "interval": True}
    lines = verdict_text(found)
    assert lines[0].startswith("No model of this run is fit to deploy: the best candidate (t_student_int8) does not "
                               "beat guessing; its test accuracy's 95% interval reaches down to 47.0%, not above "
                               "the 50.0% of always answering the largest class.")
    assert lines[1].startswith("Best candidate, not fit to deploy: t_student_int8.tflite")
    assert verdict(tables(0.95, (0.06, 0.02, 0.10)), run_dir(tmp_path / "fine"))["unfit"] is None


def test_balanced_accuracy_at_chance_is_refused_when_accuracy_only_mirrors_the_largest_class(tmp_path):
    skewed = tables(0.95, (0.10, 0.05, 0.15))
    skewed["metrics"]["balanced_accuracy"] = 0.5  # 90% accuracy by answering the 90% class every time
    found = verdict(skewed, run_dir(tmp_path))
    assert found["unfit"]["reason"] == "balanced" and "balanced accuracy (50.0%)" in verdict_text(found)[0]


def test_a_run_without_int8_deploys_its_most_compressed_mode_and_says_no_gate_ran(tmp_path):
    no_int8 = tables(0.95, (0.06, 0.02, 0.10))
    for name in ("summary", "metrics"):
        frame = no_int8[name]
        extra = frame[frame["kind"] == "quantized"].assign(model="t_student_float16", mode="float16", size_mb=1.2)
        frame = frame.assign(model=frame["model"].str.replace("int8", "dynamic"),
                             mode=frame["mode"].str.replace("int8", "dynamic"))
        no_int8[name] = pd.concat([frame, extra], ignore_index=True)
    no_int8["summary"]["file"] = no_int8["summary"]["model"] + ".tflite"
    no_int8["per_class"]["model"] = no_int8["per_class"]["model"].str.replace("int8", "dynamic")
    no_int8["valid_vs_test"] = valid_vs_test(no_int8["summary"], no_int8["metrics"], 400)
    found = verdict(no_int8, run_dir(tmp_path, gate=False))
    assert found["deploy"]["model"] == "t_student_dynamic" and found["warnings"] == []
    text = "\n".join(verdict_text(found))
    assert "the dynamic student distilled from t, chosen as the student among the dynamic students" in text
    assert "No quantization safety gate ran (it judges int8, which --quant-modes did not make)" in text


def test_a_teacher_larger_than_the_student_says_what_it_knows_on_the_students_view(tmp_path):
    """Issue #26: the verdict says why a good 224 px teacher may teach a 32 px student nothing."""
    found = tables(0.94, (0.0, -0.1, 0.1))
    found["summary"]["accuracy_student_view"] = [None, 0.524, None, None]
    warned = dict(verdict(found, run_dir(tmp_path))["warnings"])
    assert warned["resolution"] == ("teacher t works on larger images than the student: 94.0% on its own test "
                                    "images, 52.4% on the student's, enlarged to its size; it can pass on only "
                                    "what survives the student's resolution")
    del found["summary"]["accuracy_student_view"]  # a run made before the column: nothing said
    assert "resolution" not in dict(verdict(found, run_dir(tmp_path / "old"))["warnings"])
