"""The run report: metrics with intervals, per-class, quantization impact, distillation gain, plots, pages."""

import json
import shutil

import pandas as pd
import pytest
from conftest import run_cli

from ctdistill.core.errors import RunFolderError
from ctdistill.report import build_report
from ctdistill.report.tables import verdict_text

REPORT_FILES = ["metrics.csv", "per_class.csv", "quantization_impact.csv", "distillation_gain.csv", "report.html",
                "report.md", "Plots/accuracy_vs_size.png", "Plots/tiny_roc.png", "Plots/tiny_reliability.png",
                "Plots/tiny_student_confusion.png", "Plots/scratch_student_confusion.png", "Plots/per_class.png",
                "Plots/quantization.png"]


@pytest.fixture(scope="module")
def report_run(finished_run):
    """The shared run (conftest): teachers tiny and tiny_b, their ensemble, seeds 0 and 1."""
    return finished_run[1]


def test_run_writes_every_report_file(report_run):
    assert not [f for f in REPORT_FILES if not (report_run / f).is_file()]


def test_metrics_have_intervals_auc_and_ece_for_every_model(report_run):
    metrics = pd.read_csv(report_run / "metrics.csv")
    summary = pd.read_csv(report_run / "summary.csv")
    assert metrics["model"].tolist() == summary["model"].tolist()
    for name in ("accuracy", "f1", "auc"):
        assert metrics[[name, f"{name}_lo", f"{name}_hi"]].notna().all().all()
        assert ((metrics[f"{name}_lo"] <= metrics[name]) & (metrics[name] <= metrics[f"{name}_hi"])).all()
    assert metrics["ece"].between(0, 1).all() and metrics["balanced_accuracy"].notna().all()
    assert metrics["accuracy"].tolist() == pytest.approx(summary["accuracy"].tolist())
    per_class = pd.read_csv(report_run / "per_class.csv")
    assert len(per_class) == 4 * len(metrics) and {"sensitivity", "specificity", "auc"} <= set(per_class)
    for name in ("sensitivity", "specificity"):  # Wilson intervals hold their estimate, and are not degenerate
        assert (per_class[f"{name}_lo"] <= per_class[name]).all() and (per_class[name] <= per_class[f"{name}_hi"]).all()
        assert (per_class[f"{name}_hi"] - per_class[f"{name}_lo"] > 0.05).all()


def test_quantization_impact_and_distillation_gain_rows(report_run):
    impact = pd.read_csv(report_run / "quantization_impact.csv")
    assert impact["model"].tolist() == [f"{t}_student_{m}" for t in ("tiny", "tiny_b", "ensemble")
                                        for m in ("dynamic", "float16", "int8")]
    assert impact["flip_rate"].between(0, 1).all() and impact["mcnemar_p"].between(0, 1).all()
    assert {f"sensitivity_change_{c}" for c in ("cavity", "mass", "nodule", "normal")} <= set(impact)
    gain = pd.read_csv(report_run / "distillation_gain.csv")
    assert gain[["model", "baseline"]].values.tolist() == [[f"{t}_student", "scratch_student"]
                                                           for t in ("tiny", "tiny_b", "ensemble")]
    assert gain["accuracy_gain_lo"].iloc[0] <= gain["accuracy_gain"].iloc[0] <= gain["accuracy_gain_hi"].iloc[0]


def test_seeds_repeat_the_student_stages_and_report_mean_and_std(report_run):
    students = ["scratch_student"] + [f"{t}_student{m}" for t in ("tiny", "tiny_b", "ensemble") for m in ("", "_int8")]
    assert sorted(f.stem for f in (report_run / "predictions" / "seed1").glob("*.csv")) == sorted(students)
    seeds = pd.read_csv(report_run / "seeds.csv").set_index("model")
    assert set(seeds.index) == set(students)
    assert (seeds["seeds"] == 2).all() and seeds["accuracy_std"].notna().all()
    metrics = pd.read_csv(report_run / "metrics.csv").set_index("model")
    for model in seeds.index:  # seed 0 is the run's own model
        assert seeds.loc[model, "accuracy_seed0"] == pytest.approx(metrics.loc[model, "accuracy"])
        pair = seeds.loc[model, ["accuracy_seed0", "accuracy_seed1"]]
        assert seeds.loc[model, "accuracy_mean"] == pytest.approx(pair.mean())
    assert "Across seeds" in (report_run / "report.md").read_text()


def test_pages_are_self_contained(report_run):
    page = (report_run / "report.html").read_text()
    assert "data:image/png;base64," in page and "src='Plots" not in page and "http" not in page.split("<body>")[1]
    for table_id in ("metrics", "per_class", "quantization_impact", "distillation_gain"):
        assert f'id="{table_id}"' in page
    markdown = (report_run / "report.md").read_text()
    assert "](Plots/accuracy_vs_size.png)" in markdown and "## What quantization changed" in markdown


def test_report_command_on_a_copied_run_reproduces_the_numbers(report_run, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(report_run, copy)
    for name in ("metrics.csv", "per_class.csv", "quantization_impact.csv", "distillation_gain.csv", "seeds.csv",
                 "report.html"):
        (copy / name).unlink()
    for model in [*copy.glob("*.keras"), *copy.glob("*.tflite"), *copy.glob("*.h5")]:
        model.unlink()  # the report needs no model
    done = run_cli("report", str(copy), timeout=600)
    assert done.returncode == 0, done.stderr
    first = verdict_text(json.loads((copy / "verdict.json").read_text()))[0]
    assert f"Verdict:\n  {first}" in done.stdout  # the terminal gets the verdict too, first line first
    for name in ("metrics.csv", "per_class.csv", "quantization_impact.csv", "distillation_gain.csv", "seeds.csv",
                 "verdict.json"):
        assert (copy / name).read_bytes() == (report_run / name).read_bytes(), name


def test_report_on_a_folder_that_is_not_a_run_fails_clearly(tmp_path):
    with pytest.raises(RunFolderError, match="not a finished ctdistill run"):
        build_report(tmp_path)
    done = run_cli("report", str(tmp_path), timeout=300)
    assert done.returncode == 2 and "not a finished ctdistill run" in done.stderr and "Traceback" not in done.stderr


def test_report_out_elsewhere_keeps_the_latency_chart(report_run, tmp_path):
    """``ctdistill bench`` writes bench.csv into the run; ``report --out X`` must still find it."""
    copy = tmp_path / "run"
    shutil.copytree(report_run, copy)
    models = pd.read_csv(copy / "summary.csv")
    students = models[models["kind"] != "teacher"]
    pd.DataFrame({"model": students["model"], "file": students["file"], "format": "litert",
                  "threads": 1, "latency_ms_median": 0.5}).to_csv(copy / "bench.csv", index=False)
    written = build_report(copy, tmp_path / "elsewhere")
    assert tmp_path / "elsewhere" / "Plots" / "accuracy_vs_latency.png" in written


def test_report_names_the_test_split_it_used(report_run):
    text = (report_run / "report.md").read_text()
    assert "the dataset's own test split" in text and "official" not in text


def test_no_text_overlaps_in_any_report_figure(report_run, tmp_path, monkeypatch):
    """Every figure the report draws, checked text box against text box (matplotlib's layout)."""
    from ctdistill.report import plots

    checked: list = []
    monkeypatch.setattr(plots, "OVERLAPS", checked)
    build_report(report_run, tmp_path / "again")
    assert len(checked) >= 10  # size chart, ROC, reliability and confusion per teacher, curves
    assert not [(name, pairs) for name, pairs in checked if pairs]


def test_the_overlap_check_sees_slanted_long_class_names_collide():
    """Not vacuous: long class names at 35 degrees (the old confusion-matrix ticks) are caught."""
    import matplotlib.pyplot as plt

    from ctdistill.report.plots import _slanted, overlapping_texts

    names = ["adenocarcinoma", "large.cell.carcinoma", "normal", "squamous.cell.carcinoma"]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.set_xticks(range(4), names, rotation=35, ha="right")
    assert overlapping_texts(fig)
    ax.set_xticks(range(4), names, **_slanted(names))
    assert not overlapping_texts(fig)
    plt.close(fig)


def test_the_page_shows_the_decisive_quantization_columns_and_embeds_the_training_curves(report_run):
    page = (report_run / "report.html").read_text()
    table = page.split('id="quantization_impact"')[1].split("</table>")[0]
    assert "predictions flipped" in table and "sensitivity_change" not in table
    assert "training curves: student trained from scratch" in page


def page_table(page: str, table_id: str) -> pd.DataFrame:
    """A table of report.html as text cells (the standard library's parser: no lxml needed)."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        rows: list = []
        inside = False

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            self.inside = tag in ("td", "th")
            if self.inside:
                self.rows[-1].append("")

        def handle_endtag(self, tag):
            self.inside = self.inside and tag not in ("td", "th")

        def handle_data(self, data):
            if self.inside:
                self.rows[-1][-1] += data

    parser = Cells()
    parser.rows = []
    parser.feed(page.split(f'id="{table_id}"')[1].split("</table>")[0])
    return pd.DataFrame(parser.rows[1:], columns=parser.rows[0])


def test_the_page_tabulates_the_deployed_models_classes_plots_every_model_and_shows_percent(report_run):
    """Per class: the plot has every model, the table the deployed one, the folded table the rest; every
    proportion in percent with one decimal (issue #29 item 4)."""
    page = (report_run / "report.html").read_text()
    deployed = json.loads((report_run / "verdict.json").read_text())["deploy"]["model"]
    per_class = pd.read_csv(report_run / "per_class.csv")
    shown = page_table(page, "per_class")
    assert set(shown["model"]) == {deployed} and len(shown) == 4
    assert set(page_table(page, "per_class_all")["model"]) == set(per_class["model"])
    row = per_class[per_class["model"] == deployed].iloc[0]
    assert shown["sensitivity [95% CI]"].iloc[0] == (f"{100 * row.sensitivity:.1f} [{100 * row.sensitivity_lo:.1f}, "
                                                     f"{100 * row.sensitivity_hi:.1f}]")
    metrics = pd.read_csv(report_run / "metrics.csv")
    models = page_table(page, "metrics")
    assert models["accuracy [95% CI]"].iloc[0].startswith(f"{100 * metrics['accuracy'].iloc[0]:.1f} [")
    section = page.split("What quantization changed")[1].split("<h2>")[0]
    assert "What quantization cost: accuracy change against file size" in section and "<details>" in section
