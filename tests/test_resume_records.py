"""Completion records: when a finished stage is trusted on resume, and when it runs again."""

import json

import numpy as np
import pytest

from ctdistill.errors import ConfigError, DataError
from ctdistill.run.book import Stages, check_same_data, clear_partial_files, resumed_config, run_key


def stage(run_dir, name, calls, text="weights"):
    def compute():
        calls.append(name)
        (run_dir / f"{name}.bin").write_text(f"{text} {len(calls)}")
        return f"model {name}", {"accuracy": np.float64(0.5), "n": np.int64(3)}
    return compute


def test_a_finished_stage_is_restored_not_recomputed(tmp_path):
    calls = []
    book = Stages(tmp_path, "key")
    obj, result = book.run("teacher-a", stage(tmp_path, "a", calls), restore=lambda r: f"loaded {r['n']}")
    assert obj == "model a" and result == {"accuracy": 0.5, "n": 3}  # NumPy scalars stored as numbers
    record = json.loads((tmp_path / "stages" / "teacher-a.json").read_text())
    assert list(record["files"]) == ["a.bin"] and record["seconds"] >= 0
    obj, again = Stages(tmp_path, "key").run("teacher-a", stage(tmp_path, "a", calls),
                                             restore=lambda r: f"loaded {r['n']}")
    assert calls == ["a"] and obj == "loaded 3" and again == result


def test_a_changed_file_or_key_runs_the_stage_again(tmp_path):
    calls = []
    Stages(tmp_path, "key").run("s", stage(tmp_path, "a", calls))
    (tmp_path / "a.bin").write_text("edited by hand")
    Stages(tmp_path, "key").run("s", stage(tmp_path, "a", calls))
    assert calls == ["a", "a"]
    Stages(tmp_path, "other config").run("s", stage(tmp_path, "a", calls))
    assert calls == ["a", "a", "a"]


def test_rerunning_a_stage_invalidates_the_stages_built_on_it(tmp_path):
    calls = []
    book = Stages(tmp_path, "key")
    book.run("teacher", stage(tmp_path, "t", calls))
    book.run("student", stage(tmp_path, "s", calls), after=("teacher",))
    (tmp_path / "t.bin").unlink()  # the teacher must be trained again ...
    book.run("teacher", stage(tmp_path, "t", calls))
    book.run("student", stage(tmp_path, "s", calls), after=("teacher",))  # ... and so its student
    assert calls == ["t", "s", "t", "s"]


def test_resume_refuses_a_changed_config_and_changed_data(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 4, "weights": "none", "teachers": ["vgg16"]}))
    assert resumed_config(tmp_path, {"epochs": 4}).epochs == 4
    with pytest.raises(ConfigError, match=r"different configuration \(alpha: 0.5 -> 0.9; epochs: 4 -> 9\)"):
        resumed_config(tmp_path, {"epochs": 9, "alpha": 0.9})
    with pytest.raises(ConfigError, match="not a ctdistill run folder"):
        resumed_config(tmp_path / "elsewhere", {})
    (tmp_path / "manifest.json").write_text(json.dumps({"dataset": {"fingerprint": "a" * 64}}))
    check_same_data(tmp_path, "a" * 64)
    with pytest.raises(DataError, match="the dataset changed since the run started"):
        check_same_data(tmp_path, "b" * 64)


def test_run_key_and_partial_files(tmp_path):
    assert run_key({"a": 1, "b": 2}, "f") == run_key({"b": 2, "a": 1}, "f") != run_key({"a": 1, "b": 2}, "g")
    (tmp_path / "Plots").mkdir()
    (tmp_path / "Plots" / ".curves.x1.tmp.png").write_bytes(b"half")
    (tmp_path / "summary.csv").write_text("kept")
    assert [p.name for p in clear_partial_files(tmp_path)] == [".curves.x1.tmp.png"]
    assert (tmp_path / "summary.csv").is_file()


def test_an_older_runs_config_resumes_with_the_values_it_ran_with(tmp_path):
    """A config.json written before a key existed (here ``crop``) resumes with that key's legacy
    value, never with today's default: the run is not silently retrained another way."""
    import json

    from ctdistill.run.book import resumed_config

    (tmp_path / "config.json").write_text(json.dumps({"teachers": ["vgg16"], "weights": "none", "batch_size": 256}))
    cfg = resumed_config(tmp_path, {})
    assert cfg.crop == "none" and cfg.batch_size == 256


def test_moved_data_resumes_with_the_saved_run_key(tmp_path):
    import json

    from ctdistill.config import Config
    from ctdistill.run.book import resumed_config, resumed_key, run_key

    saved = Config(teachers=("vgg16",), weights="none", data=str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(saved.to_dict()))
    elsewhere = tmp_path / "moved"
    elsewhere.mkdir()
    moved = resumed_config(tmp_path, {}, {"data": str(elsewhere)})
    assert moved.data == str(elsewhere)
    assert resumed_key(moved, tmp_path, "fp") == run_key(saved.to_dict(), "fp")


def test_quantize_refuses_a_run_whose_training_has_not_finished(tmp_path):
    from ctdistill.config import Config
    from ctdistill.errors import ConfigError
    from ctdistill.run.book import Stages
    from ctdistill.run.pipeline import trained_teachers

    cfg = Config(teachers=("vgg16", "resnet50"), weights="none", ensemble="mean", seeds=(0, 1))
    with pytest.raises(ConfigError, match=r"stages scratch, distill-vgg16, distill-resnet50, distill-ensemble, seeds"):
        trained_teachers(cfg, Stages(tmp_path, "key"))
