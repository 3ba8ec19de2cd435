"""What a plain ``pip install`` and a first hour of use need: declared dependencies, checks before
training, readable output files, help that matches the behaviour, and errors that come at once."""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ctdistill.cli.main import build_parser
from ctdistill.cli.options import RUN_OPTIONS, default_of, format_default
from ctdistill.config import Config
from ctdistill.core.errors import ConfigError, RunFolderError
from ctdistill.run import preflight
from ctdistill.run.folder import atomic_path, write_json

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "ctdistill"


def _declared() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_name(d) for d in deps}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ (]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def _imported_top_levels() -> set[str]:
    names = set()
    for file in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"ctdistill", "__future__"}


def test_every_runtime_import_is_a_declared_dependency():
    """A plain install (no extras) must run every command: each module the package imports comes
    from a distribution in ``[project] dependencies`` (or one of their own dependencies, like absl)."""
    declared = _declared()
    owners = importlib.metadata.packages_distributions()
    provided = set(declared)
    for dist in declared:
        try:
            requires = importlib.metadata.requires(dist) or []
        except importlib.metadata.PackageNotFoundError:  # tensorflow vs tensorflow-cpu: one is installed
            continue
        provided |= {_name(r) for r in requires if "extra ==" not in r}
    # The other Keras backends are imported only when the user chose them (so they are installed):
    # JAX is an extra (ctdistill[jax]); PyTorch, a backend Keras supports, is the user's own install.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    provided |= {_name(r) for key, reqs in extras.items() if key != "test" for r in reqs} | {"torch"}
    undeclared = {m: owners.get(m, [m]) for m in _imported_top_levels()
                  if not {o.lower().replace("_", "-") for o in owners.get(m, [m])} & provided}
    assert not undeclared, f"imported but not declared as dependencies: {undeclared}"


def test_indirect_imports_are_declared_too():
    """pandas imports ``tabulate`` inside ``DataFrame.to_markdown``: invisible to an import scan."""
    uses_markdown = any(".to_markdown(" in f.read_text() for f in SRC.rglob("*.py"))
    assert not uses_markdown or "tabulate" in _declared()


def test_written_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "table.csv") as tmp:
            tmp.write_text("a\n")
        write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    for name in ("table.csv", "x.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def _help_of(parser: argparse.ArgumentParser, dest: str) -> str:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    return next(a.help for a in sub._actions if a.dest == dest)


@pytest.mark.parametrize("key", [key for _, key, _, _ in RUN_OPTIONS])
def test_every_flag_prints_the_configs_own_default(key):
    shown = re.search(r"\(default: (.*)\)$", _help_of(build_parser(), key)).group(1)
    value = default_of(key)
    assert shown == format_default(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert float(shown) == value
    elif isinstance(value, tuple) and key != "teachers":
        assert shown == (",".join(map(str, value)) or "none")
    elif isinstance(value, str):
        assert shown == value


def test_learning_rate_help_names_the_optimiser_actually_used():
    text = _help_of(build_parser(), "learning_rate")
    assert "AdamW" in text and Config().weight_decay > 0


def test_preflight_names_a_missing_package_before_training(monkeypatch, tmp_path):
    real = preflight.importlib.util.find_spec
    monkeypatch.setattr(preflight.importlib.util, "find_spec", lambda m: None if m == "tabulate" else real(m))
    with pytest.raises(ConfigError, match=r"tabulate \(report.md tables\)"):
        preflight.check_run(Config(weights="none"), tmp_path / "run")


def test_preflight_refuses_a_disk_without_room(monkeypatch, tmp_path):
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: type("Usage", (), {"free": 50e6})())
    with pytest.raises(RunFolderError, match="MB free on its disk, the run writes about"):
        preflight.check_run(Config(weights="none"), tmp_path / "run")  # seven teachers: ~500 MB


def _python(code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


WHAT_WAS_IMPORTED = ("import sys\nfrom ctdistill.cli.main import main\ncode = main(sys.argv[1:])\n"
                     "print('tensorflow' in sys.modules, 'keras' in sys.modules, code)")


@pytest.mark.parametrize("args", [["run", "--epochs", "-1"], ["run", "--image-size", "0"],
                                  ["run", "--teachers", "alexnet"], ["run", "--data", "/no/such/folder"]])
def test_configuration_errors_come_before_tensorflow_loads(args):
    """A typo must fail at once: no Keras or TensorFlow import (seconds) before the config is checked,
    and a missing --data is reported as such, not as a failed weights download."""
    result = _python(WHAT_WAS_IMPORTED, *args)
    assert result.stdout.split() == ["False", "False", "2"], result.stdout + result.stderr
    if "--data" in args:
        assert "/no/such/folder: data path does not exist" in result.stderr


def test_predict_with_a_tflite_model_never_imports_tensorflow(tmp_path):
    """LiteRT runs .tflite files on its own; the model card gives the preprocessing."""
    import keras
    import numpy as np

    from ctdistill.models.student import build_student
    from ctdistill.quantize.convert import convert_all

    keras.utils.set_random_seed(0)
    model = build_student((8, 8, 3), 2)
    calibration = np.random.default_rng(0).integers(0, 255, (8, 8, 8, 3), dtype=np.uint8)
    path = convert_all(model, ("int8",), calibration, lambda m: tmp_path / f"m_{m}.tflite")["int8"]
    write_json(Path(f"{path}.json"), {"input": {"height": 8, "channels": 3}, "class_names": ["a", "b"]})
    from conftest import save_image

    image = save_image(tmp_path / "x.png", np.full((12, 10), 90, np.uint8), "PNG")
    result = _python(WHAT_WAS_IMPORTED, "predict", str(path), str(image))
    assert result.stdout.split()[-3:] == ["False", "False", "0"], result.stdout + result.stderr
    assert "chosen: the model file given" in result.stdout


def test_predict_on_a_file_that_is_not_a_model_says_so(tmp_path, capsys):
    from ctdistill.cli.main import main

    table = tmp_path / "summary.csv"
    table.write_text("a,b\n")
    assert main(["predict", str(table), str(table)]) == 2
    err = capsys.readouterr().err
    assert "not a model ctdistill can load" in err and ".tflite, .keras or .h5" in err
