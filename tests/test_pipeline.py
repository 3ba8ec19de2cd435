"""A full tiny run through quantization writes every file the seed names, with sane contents."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_tree

from ctdistill.config import Config
from ctdistill.core.errors import RunFolderError
from ctdistill.run.pipeline import run

SEED_FILES = ["{t}_teachermodel.csv", "{t}_Distiller_history.csv", "{t}_student_classification_report.csv",
              "{t}_student_Confusion.csv", "{t}_student_confusion_matrix.png", "{t}_predictions.csv",
              "{t}_Student.h5", "{t}_Student.keras", "{t}_student_dynamic.tflite", "{t}_student_float16.tflite",
              "{t}_student_int8.tflite", "{t}_Teacher.keras",
              "Plots/{t}_teacher_curves.png", "Plots/{t}_distiller_curves.png"]
RUN_FILES = ["TinyEvalRes_Quant.csv", "summary.csv", "config.json", "manifest.json", "timings.json",
             "Scratch_Student.keras", "Scratch_history.csv", "Plots/scratch_curves.png"]


@pytest.fixture(scope="module")
def tiny_run(finished_run):
    """The shared run (conftest): teachers tiny and tiny_b, their ensemble, seeds 0 and 1."""
    return finished_run


def test_every_seed_file_is_written(tiny_run):
    cfg, out = tiny_run
    missing = [f for f in SEED_FILES for f in [f.format(t="tiny")] if not (out / f).is_file()]
    missing += [f for f in RUN_FILES if not (out / f).is_file()]
    assert not missing
    assert not list(out.rglob(".*.tmp*")), "temporary files left behind"


def test_tables_have_the_promised_rows_and_columns(tiny_run):
    cfg, out = tiny_run
    summary = pd.read_csv(out / "summary.csv")
    assert summary["model"].tolist()[:6] == ["scratch_student", "tiny_teacher", "tiny_student", "tiny_student_dynamic",
                                             "tiny_student_float16", "tiny_student_int8"]
    assert summary["kind"].tolist()[:6] == ["scratch", "teacher", "distilled", "quantized", "quantized", "quantized"]
    assert summary["model"].tolist()[-5:] == ["ensemble_teacher", "ensemble_student", "ensemble_student_dynamic",
                                              "ensemble_student_float16", "ensemble_student_int8"]
    assert summary["accuracy"].between(0, 1).all() and (summary["size_mb"] > 0).all()
    quant = pd.read_csv(out / "TinyEvalRes_Quant.csv")
    assert list(quant.columns) == ["teacher", "mode", "accuracy", "precision", "recall", "teacher_mb",
                                   "student_mb", "quantized_mb", "accuracy_dedup", "precision_dedup", "recall_dedup"]
    assert summary["accuracy_dedup"].isna().all()  # the phantoms are not audited: no de-duplicated view
    assert quant["mode"].tolist() == ["dynamic", "float16", "int8"] * 3  # tiny, tiny_b, ensemble
    assert (quant["quantized_mb"] < quant["student_mb"]).all()
    # sizes come from the files on disk
    assert quant["teacher_mb"].iloc[0] == pytest.approx((out / "tiny_Teacher.keras").stat().st_size / 1e6)


def test_predictions_and_confusion_use_class_names(tiny_run):
    cfg, out = tiny_run
    pred = pd.read_csv(out / "tiny_predictions.csv")
    names = ["cavity", "mass", "nodule", "normal"]
    assert list(pred.columns) == ["true_label", "predicted_label"] + [f"prob_{n}" for n in names]
    assert len(pred) == 24 and pred[[f"prob_{n}" for n in names]].sum(axis=1).round(4).eq(1).all()
    confusion = pd.read_csv(out / "tiny_student_Confusion.csv", index_col=0)
    assert list(confusion.index) == names and confusion.to_numpy().sum() == 24
    acc = (pred["true_label"] == pred["predicted_label"]).mean()
    summary = pd.read_csv(out / "summary.csv").set_index("model")
    assert summary.loc["tiny_student", "accuracy"] == pytest.approx(acc)


def test_histories_select_on_valid_never_test(tiny_run):
    cfg, out = tiny_run
    for name in ("tiny_teachermodel.csv", "tiny_Distiller_history.csv", "Scratch_history.csv"):
        history = pd.read_csv(out / name)
        assert "val_accuracy" in history and not any("test" in c for c in history.columns)
        assert 1 <= len(history) <= cfg.epochs and history["best"].sum() == 1


def test_manifest_records_config_seed_versions_and_data(tiny_run):
    cfg, out = tiny_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == cfg.to_dict() and manifest["seed"] == 0
    assert {"keras", "numpy", "ai-edge-litert"} <= set(manifest["versions"])
    assert len(manifest["dataset"]["fingerprint"]) == 64
    assert manifest["dataset"]["counts"]["test"] == {"cavity": 6, "mass": 6, "nodule": 6, "normal": 6}


def test_an_existing_run_is_never_overwritten(tiny_run, tiny_teacher):
    cfg, out = tiny_run
    before = (out / "summary.csv").read_bytes()
    with pytest.raises(RunFolderError, match="already exists"):
        run(cfg, out)
    assert (out / "summary.csv").read_bytes() == before


@pytest.mark.slow  # a whole pipeline of its own: the full suite runs it, the fast tier does not
def test_same_config_and_seed_give_byte_identical_predictions(tmp_path, tiny_teacher):
    """Determinism (``deterministic=True``, the default): a second run of the same config repeats the
    first one's predictions, every model and both splits, byte for byte."""
    cfg = Config(teachers=(tiny_teacher,), weights="none", image_size=16, epochs=3, patience=2, batch_size=32,
                 synthetic_per_class=(8, 3, 4), quant_modes=("int8",), bootstrap_resamples=0)
    first, second = run(cfg, tmp_path / "first"), run(cfg, tmp_path / "again")
    files = sorted(p.relative_to(first) for p in (first / "predictions").rglob("*.csv"))
    assert len(files) == 4  # scratch, teacher, student and its int8 model
    for name in files:
        assert (second / name).read_bytes() == (first / name).read_bytes(), name
    record = json.loads((first / "stages" / "teacher-tiny.json").read_text())
    assert record["key"] == json.loads((second / "stages" / "teacher-tiny.json").read_text())["key"]


@pytest.mark.slow  # a whole pipeline of its own: the full suite runs it, the fast tier does not
def test_audited_run_reports_official_and_deduplicated_test_metrics(tmp_path, tiny_teacher):
    import shutil

    from conftest import make_tree

    root = make_tree(tmp_path / "tree", per_class=4, size=24)
    shutil.copy(root / "train" / "normal" / "img0.png", root / "test" / "normal" / "leaked.png")
    cfg = Config(data=str(root), teachers=(tiny_teacher,), weights="none", image_size=16, epochs=2, patience=2,
                 batch_size=8, quant_modes=(), bootstrap_resamples=0)  # the audit is the point: no quantization
    out = run(cfg, tmp_path / "run")
    audit = json.loads((out / "audit.json").read_text())
    assert [p.rsplit("/", 1)[-1] for p in audit["cross_split_files"]] == ["leaked.png"]
    summary = pd.read_csv(out / "summary.csv")
    assert (summary["n_test"] == 9).all() and (summary["n_test_dedup"] == 8).all()
    assert summary["accuracy_dedup"].between(0, 1).all()
    pred = pd.read_csv(out / "predictions" / "tiny_student.csv")
    test = pred[pred["split"] == "test"].reset_index(drop=True)
    keep = ~test["file"].str.endswith("leaked.png")
    acc = (test.loc[keep, "true_label"] == test.loc[keep, "predicted_label"]).mean()
    assert summary.set_index("model").loc["tiny_student", "accuracy_dedup"] == pytest.approx(acc)
    # nearest neighbours and the leakage curve (issue #18): the leaked copy is at distance 0, same label
    neighbours = pd.read_csv(out / "neighbours.csv")
    leaked = neighbours[neighbours["path"].str.endswith("leaked.png")].iloc[0]
    assert leaked["phash_distance"] == 0 and leaked["phash_same_label"] and leaked["thumb_distance"] < 1e-5
    curve = pd.read_csv(out / "leakage_curve.csv")
    whole = curve[curve["d"] == -1].iloc[0]
    assert whole["n_images"] == 9 and whole["tiny_student"] == pytest.approx(
        summary.set_index("model").loc["tiny_student", "accuracy"])
    assert curve[curve["d"] == 0].iloc[0]["n_images"] <= 8  # the leaked copy is gone from d = 0 on
    page = (out / "report.md").read_text()
    assert "How much rests on near copies" in page and "## Audit and data shift" in page
    assert "1 validation or test image(s) have a copy in an earlier split" in page
    assert "Scans found in the pixels" in page and "(Plots/crops.png)" in page  # the crop's contact sheet
    assert (out / "Plots" / "crops.png").stat().st_size > 1000
    shift = pd.read_csv(out / "valid_vs_test.csv")
    assert (shift["valid_lo"] <= shift["valid_accuracy"]).all() and (shift["n_valid"] > 0).all()


def test_split_lists_compare_relative_to_the_data_folder_when_the_data_moved(tmp_path):
    """Tree paths are compared relative to the data folder; a prepared layout's ids as they are."""
    from ctdistill.core.errors import DataError
    from ctdistill.run.data_steps import write_splits

    path = tmp_path / "splits.json"
    write_splits(path, {"train": ["/a/data/train/x.png", "train/y.png"]}, resume=False)
    write_splits(path, {"train": ["/b/moved/train/x.png", "train/y.png"]}, True, ("/a/data", "/b/moved"))
    with pytest.raises(DataError, match="splits differ"):
        write_splits(path, {"train": ["/b/moved/train/z.png", "train/y.png"]}, True, ("/a/data", "/b/moved"))


@pytest.mark.slow  # a whole pipeline of its own: the full suite runs it, the fast tier does not
def test_a_teacher_at_its_own_size_teaches_and_resumes(tmp_path, tiny_teacher, tiny_teacher_b):
    """Two teachers at 24 px teach a 16 px student (their ensemble too); the teachers are scored on
    their own images, the students on theirs; a run cut after the teachers resumes with them."""
    import keras

    cfg = Config(teachers=(tiny_teacher, tiny_teacher_b), weights="none", image_size=16, teacher_image_size=24,
                 epochs=2, patience=1, warmup_epochs=0, teacher_views=2, synthetic_per_class=(6, 3, 3),
                 ensemble="mean", quant_modes=("int8",), bootstrap_resamples=0)
    out = run(cfg, tmp_path / "run")
    assert keras.saving.load_model(out / "tiny_Teacher.keras").input_shape[1:3] == (24, 24)
    assert keras.saving.load_model(out / "tiny_Student.keras").input_shape[1:3] == (16, 16)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["teacher_image_size"] == 24 and manifest["teacher_weights"]["tiny"] is None
    student, teacher = (pd.read_csv(out / "predictions" / f"{m}.csv") for m in ("ensemble_student", "ensemble_teacher"))
    assert student["true_label"].tolist() == teacher["true_label"].tolist()  # the same images, row for row
    teachers = pd.read_csv(out / "summary.csv").set_index("model").loc[["tiny_teacher", "tiny_b_teacher"]]
    assert teachers["accuracy_student_view"].between(0, 1).all()  # scored on the 16 px images enlarged to 24
    assert "resolution" in [kind for kind, _ in json.loads((out / "verdict.json").read_text())["warnings"]]
    (out / "stages" / "distill-tiny.json").unlink()  # as if the run died after the teachers
    before = (out / "stages" / "teacher-tiny.json").read_bytes()
    run(cfg, out, resume=True)
    assert (out / "stages" / "distill-tiny.json").is_file()
    assert (out / "stages" / "teacher-tiny.json").read_bytes() == before  # the teacher was not retrained


@pytest.mark.parametrize("view", ["decoded", "enlarged"])
def test_a_larger_teacher_sees_the_files_decoded_at_its_side_or_the_students_images_enlarged(tmp_path, tiny_teacher,
                                                                                            view):
    """``--teacher-view`` (issue #26): decoded from the files at the teacher's side, or the student's own
    images enlarged, so the teacher learns only what the student can see."""
    from ctdistill.data import load_dataset
    from ctdistill.run.data_steps import enlarged, resplit, teacher_sizes

    tree = make_tree(tmp_path / "tree", per_class=6, size=40)
    cfg = Config(data=str(tree), teachers=(tiny_teacher,), weights="none", image_size=16, teacher_image_size=24,
                 teacher_view=view, crop="none")
    data = resplit(cfg, load_dataset(str(tree), 16, 3, crop="none"), None, say=False)
    big = teacher_sizes(cfg, data, None)[24]
    same = np.array_equal(big.train.x, enlarged(data.train, 24).x)
    assert big.train.x.shape[1:3] == (24, 24) and same == (view == "enlarged")
    assert big.train.y.tolist() == data.train.y.tolist()
