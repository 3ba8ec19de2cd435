"""The benchmark scripts still run against the library they measure (on a tiny tree, one epoch).

They are not imported by the package, so nothing else notices when a library signature they use
changes (``bench/recipe_variants.py`` broke that way once). Their numbers are not checked: only that they
run to their final line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_tree

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _bench_module(script: str, monkeypatch):
    """Import ``bench/<script>`` as a module, with ``bench/`` on ``sys.path`` for the bench files it imports."""
    import importlib.util

    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(Path(script).stem, BENCH / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_recipe_bench_trains_scores_and_tabulates(tmp_path):
    tree = make_tree(tmp_path / "tree", per_class=8, size=36)
    out = tmp_path / "rows.csv"
    stdout = _run("recipe_variants.py", "ctdistill", "reference", "--data", str(tree), "--seeds", "0", "--epochs",
                  "1", "--out", str(out))
    rows = pd.read_csv(out)
    assert list(rows["variant"]) == ["ctdistill", "reference"]  # the library's recipe and the seed's procedure
    assert rows["epochs_run"].tolist() == [1, 1] and rows["test_acc"].between(0.0, 1.0).all()
    assert "| ctdistill |" in stdout and "| reference |" in stdout  # the mean ± std table


@pytest.mark.slow
def test_inference_bench_ends_with_the_ratio_line(tmp_path):
    tree = make_tree(tmp_path / "tree", per_class=8, size=36)
    stdout = _run("inference_speed.py", "--data", str(tree), "--epochs", "1", "--calls", "3", "--batch", "8")
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("int8_vs_keras_predict=") and "int8_vs_keras_predict_on_batch=" in last
    assert "keras float32 predict" in stdout and "litert int8" in stdout


@pytest.mark.slow
def test_born_again_bench_distils_the_scratch_student(tmp_path):
    tree = make_tree(tmp_path / "tree", per_class=8, size=36)
    out = tmp_path / "rows.csv"
    stdout = _run("born_again.py", "--data", str(tree), "--seeds", "0", "--epochs", "1", "--out", str(out))
    rows = pd.read_csv(out)
    assert list(rows["model"]) == ["scratch student", "born-again student"]
    assert stdout.strip().splitlines()[-1].startswith("born-again student (1 seeds): test_acc ")


@pytest.mark.slow
def test_student_ensemble_bench_trains_members_once_then_reuses_them(tmp_path):
    tree = make_tree(tmp_path / "tree", per_class=8, size=36)
    out, models = tmp_path / "rows.csv", tmp_path / "members"
    common = ("--data", str(tree), "--members", "0,1", "--epochs", "1", "--models", str(models), "--out", str(out))
    _run("student_ensemble.py", *common, "--seeds", "")
    assert sorted(p.name for p in models.iterdir()) == ["scratch-s0.keras", "scratch-s1.keras"]
    stdout = _run("student_ensemble.py", *common, "--seeds", "0", "--temperature", "4")
    rows = pd.read_csv(out)
    assert list(rows["model"]) == ["scratch student (member)"] * 2 + ["ensemble teacher (2 students)",
                                                                       "ensemble-distilled student"]
    assert rows["temperature"].iloc[-1] == 4 and 0.0 <= rows["int8_acc"].iloc[-1] <= 1.0
    assert (tmp_path / "rows-history-s0.csv").is_file()
    assert stdout.strip().splitlines()[-1].startswith("ensemble-distilled student (1 seeds): test_acc ")


@pytest.mark.slow
def test_out_of_fold_bench_labels_each_image_by_a_member_that_held_it_out(tmp_path):
    tree = make_tree(tmp_path / "tree", per_class=8, size=36)
    out = tmp_path / "rows.csv"
    common = ("--data", str(tree), "--folds", "2", "--epochs", "1", "--models", str(tmp_path / "members"),
              "--out", str(out))
    _run("out_of_fold.py", *common, "--train-fold", "1")  # member 1 alone, as a parallel process would
    stdout = _run("out_of_fold.py", *common, "--seeds", "0")  # member 0, member 1 loaded, then the student
    rows = pd.read_csv(out)
    assert list(rows["model"]) == ["member 1 (without fold 1)", "member 0 (without fold 0)", "mean of the 2 members",
                                   "out-of-fold-distilled student"]
    assert rows["held_out_acc"].iloc[:2].between(0, 1).all() and 0 <= rows["int8_acc"].iloc[-1] <= 1
    assert sorted(p.name for p in (tmp_path / "members").iterdir()) == ["fold-0-of-2.keras", "fold-1-of-2.keras"]
    assert stdout.strip().splitlines()[-1].startswith("out-of-fold-distilled student (1 seeds): test_acc ")


def test_ray_scaling_plan_turns_measured_stages_into_a_table(tmp_path):
    """The paper table of bench/ray_scaling.py: one worker does all the work in a row; many are bound by the
    longest chain (teacher, then a distillation, then a quantization)."""
    timings = tmp_path / "local.json"
    timings.write_text('{"stages": {"scratch": 10, "teacher-a": 100, "teacher-b": 60, "distill-a": 20, '
                       '"distill-b": 20, "quantize-a": 5, "quantize-b": 5, "seeds": 90, "seeds-int8": 8}}')
    stdout = _run("ray_scaling.py", "plan", "--timings", str(timings), "--workers", "1,64")
    rows = [line.split("|")[1:-1] for line in stdout.splitlines() if line.startswith("| 1 |") or
            line.startswith("| 64 |")]
    work = 10 * 3 + 80 * 7 + 20 * 21 + 5 * 7 + 14 * 8 / 4  # 14 int8 conversions, 4 in the measured stage
    assert float(rows[0][1]) == pytest.approx(work, abs=1)
    # the longest chain: a teacher, its distillation, then its quantization (5 s; one int8 conversion is 2 s)
    assert float(rows[1][1]) == pytest.approx(80 + 20 + 5, abs=1)


@pytest.mark.parametrize("script", ["lite_probe.py", "teacher_finetune.py", "distill_gain.py", "resolution_ceiling.py",
                                    "compile_time.py", "interrupt_probe.py", "kd_settings.py", "int8_variants.py",
                                    "teacher_stage.py"])
def test_new_bench_scripts_parse_their_flags(script):
    assert "usage:" in _run(script, "--help")


def test_distill_gain_per_seed_and_pooled(finished_run, monkeypatch):
    """The gain table of a run with seeds: one row per seed and a pooled row, for float and int8."""
    module = _bench_module("distill_gain.py", monkeypatch)
    cfg, out = finished_run
    rows = module.gain_table(out, "tiny", n_resamples=100)
    assert [(r["model"], r["seed"]) for r in rows] == [("float", 0), ("float", 1), ("float", "pooled"),
                                                       ("int8", 0), ("int8", 1), ("int8", "pooled")]
    for r in rows:
        assert r["f1_gain_lo"] <= r["f1_gain"] <= r["f1_gain_hi"]
    pooled = rows[2]
    assert pooled["acc"] == pytest.approx((rows[0]["acc"] + rows[1]["acc"]) / 2)
    assert "| float | pooled |" in module.markdown(rows)


def test_resolution_ceiling_agreement_per_seed(finished_run, monkeypatch):
    """Teacher-student agreement from a run's saved predictions: one row per seed and student kind."""
    module = _bench_module("resolution_ceiling.py", monkeypatch)
    rows = module.agreement(finished_run[1], "tiny")
    assert [(r["seed"], r["model"]) for r in rows] == [(0, "tiny_student"), (0, "scratch_student"),
                                                       (1, "tiny_student"), (1, "scratch_student")]
    assert all(0.0 <= r["agree_with_teacher"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0 for r in rows)


def test_collection_audit_and_threshold_benches_run_on_a_tree(tmp_path):
    tree = make_tree(tmp_path / "tree", per_class=4, size=36)
    assert "| tree | 24 | 2 |" in _run("collections_audit.py", str(tree))
    stdout = _run("thresholds.py", str(tree), "--size", "16")
    assert "| tree | 0-1 bits |" in stdout and "Shortcut flags" in stdout


def test_verdict_table_reads_a_finished_run(finished_run):
    _, run_dir = finished_run
    last = _run("verdict_table.py", str(run_dir)).strip().splitlines()[-1]
    assert last.startswith(f"| {run_dir.name} | train ") and "synthetic" in last


def test_kd_settings_distils_from_a_runs_teacher_and_pairs_with_its_scratch_students(finished_run, tmp_path,
                                                                                     monkeypatch):
    """Another temperature and alpha on a finished run's saved teacher: per seed and pooled against the run's own
    scratch students, beside the run's own setting read from its predictions."""
    module = _bench_module("kd_settings.py", monkeypatch)
    _, run_dir = finished_run
    out = tmp_path / "rows.csv"
    module.main([str(run_dir), "--teacher", "tiny", "--seeds", "0,1", "--setting", "temperature=4,alpha=0.1",
                 "--resamples", "50", "--out", str(out)])
    rows = pd.read_csv(out)
    assert list(zip(rows["setting"], rows["seed"].astype(str), strict=True)) == [
        ("run", "0"), ("run", "1"), ("run", "pooled"),
        ("temperature=4,alpha=0.1", "0"), ("temperature=4,alpha=0.1", "1"), ("temperature=4,alpha=0.1", "pooled")]
    gain = _bench_module("distill_gain.py", monkeypatch)
    own = [r for r in gain.gain_table(run_dir, "tiny", n_resamples=50) if r["model"] == "float"]
    assert list(rows["acc"][:3]) == pytest.approx([r["acc"] for r in own])  # the run's row is read, not retrained
    assert (rows["epochs_run"][3:5] >= 1).all()
    assert rows["scratch_acc"][3:5].tolist() == rows["scratch_acc"][:2].tolist()  # the same scratch students
    with pytest.raises(SystemExit):
        module.main([str(run_dir), "--teacher", "tiny", "--setting", "temperature"])


def test_pipeline_runs_gives_both_sides_the_same_framing(tmp_path, monkeypatch):
    """``--crop body`` crops the seed's procedure's images too: the comparison is of procedures, not inputs."""
    import argparse

    import ctdistill.data

    module = _bench_module("pipeline_runs.py", monkeypatch)
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("loaded")

    monkeypatch.setattr(ctdistill.data, "load_dataset", spy)
    tree = make_tree(tmp_path / "tree", per_class=4, size=36)
    values = module.config_values(argparse.Namespace(data=str(tree), teachers="resnet50", epochs=100,
                                                     teacher_epochs=100, crop="body"))
    with pytest.raises(RuntimeError, match="loaded"):
        module.child_reference(values)
    assert values["crop"] == "body" and seen["crop"] == "body"


def test_pipeline_runs_reads_the_epochs_each_stage_ran(finished_run, monkeypatch):
    cfg, run = finished_run
    module = _bench_module("pipeline_runs.py", monkeypatch)
    students, others = module.epochs_run(run, cfg.teachers)
    assert set(students) == set(cfg.teachers) and all(1 <= n <= cfg.epochs for n in students.values())
    assert set(others) == {f"{t} teacher" for t in cfg.teachers} | {"scratch"}
    assert others["scratch"] == len(pd.read_csv(run / "Scratch_history.csv")) >= 1


def test_teacher_stage_times_every_epoch_of_both_procedures(tiny_teacher, tmp_path, monkeypatch, capsys):
    module = _bench_module("teacher_stage.py", monkeypatch)
    tree = make_tree(tmp_path / "tree", per_class=8, size=36)
    for setting in ("reference", "no-augment"):  # the seed's fit, and ctdistill's train_teacher
        seconds = module.child(tiny_teacher, setting, str(tree), 2)
        assert len(seconds) == 2 and all(s > 0 for s in seconds), setting
    with pytest.raises(SystemExit):
        module.main(["--settings", "reference,nonsense"])
    assert "unknown settings ['nonsense']" in capsys.readouterr().err  # refused before any training


def test_int8_variants_converts_a_runs_student_three_ways(finished_run, monkeypatch, capsys):
    """A row per seed and conversion: the shipped int8, float input and output, every training image calibrating."""
    module = _bench_module("int8_variants.py", monkeypatch)
    module.main([str(finished_run[1]), "--student", "tiny", "--seeds", "0,1"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| 0 ")
            or line.startswith("| 1 ")]
    assert [(r[0], r[2]) for r in rows] == [(f"| {s}", v) for s in (0, 1)
                                           for v in ("int8", "int8, float I/O", "int8, all training images")]
    assert all(0.0 <= float(r[3]) <= 100.0 and 0.0 <= float(r[4].rstrip(" |")) <= 100.0 for r in rows)
