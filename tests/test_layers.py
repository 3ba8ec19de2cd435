"""The package's layers: data flows upward, imports never point back down the flow.

Each module of ``src/ctdistill`` belongs to one layer (the README's "For contributors" section
describes them); a module may import from its own layer and the layers below it, never from one
above. A back edge (training code importing the report, say) is how the old design tangled.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ctdistill"

# Bottom to top, in the order data moves through a run.
LAYERS = [
    ("foundations", {"ctdistill", "errors", "choices", "quiet", "progress"}),
    ("configuration and run folder", {"config", "values", "runfolder", "provenance"}),
    ("data", {"data", "data.*"}),
    ("models", {"models", "models.*", "inference"}),
    ("training, export and metrics", {"recipe", "train", "distill", "quantize", "quantgate", "metrics", "compare"}),
    ("recording a run", {"records", "resume", "steps", "repeats"}),
    ("reporting", {"scoring", "verdict", "report", "report.*"}),
    ("commands", {"pipeline", "rundata", "predict", "benchmark", "doctor", "preflight", "scale"}),
    ("command line", {"options", "cli"}),
]


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if module in members or any(m.endswith(".*") and module.startswith(m[:-1]) for m in members):
            return index
    raise KeyError(module)


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "ctdistill"
        found[name] = path
    return found


def imports(path: Path) -> set[str]:
    """The ctdistill modules ``path`` imports, at module level or inside functions."""
    known, out = modules(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ctdistill":
            base = node.module.removeprefix("ctdistill").lstrip(".") or "ctdistill"
            for alias in node.names:  # `from ctdistill.report import page` imports the module report.page
                sub = f"{base}.{alias.name}" if base != "ctdistill" else alias.name
                out.add(sub if sub in known else base)
        elif isinstance(node, ast.Import):
            out |= {a.name.removeprefix("ctdistill.") for a in node.names if a.name.startswith("ctdistill.")}
    return out


def test_every_module_has_a_layer():
    missing = sorted(m for m in modules() if not any(_matches(m, members) for _, members in LAYERS))
    assert not missing, f"place these modules in a layer of tests/test_layers.py (and the README): {missing}"


def _matches(module: str, members: set[str]) -> bool:
    return module in members or any(m.endswith(".*") and module.startswith(m[:-1]) for m in members)


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_import_points_up_the_flow(module):
    here = layer_of(module)
    upward = sorted(f"{target} ({LAYERS[layer_of(target)][0]})" for target in imports(modules()[module])
                    if target != module and layer_of(target) > here)
    assert not upward, f"{module} ({LAYERS[here][0]}) imports from a later layer: {', '.join(upward)}"


def test_the_check_catches_a_back_edge(tmp_path, monkeypatch):
    """A training module that imported the report would fail (the check is not vacuous)."""
    fake = tmp_path / "train.py"
    fake.write_text("from ctdistill.report import build_report\n")
    assert "report" in imports(fake)
    assert layer_of("report") > layer_of("train")
