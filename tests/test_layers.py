"""The package's layers: data flows upward, imports never point back down the flow.

Each module of ``src/ctdistill`` belongs to one layer (docs/development.md, "For contributors"
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
    ("foundations", {"ctdistill", "core", "core.*"}),
    ("configuration and run folder", {"config", "run.folder", "run.provenance"}),
    ("data", {"data", "data.*"}),
    ("models", {"models", "models.*"}),
    ("training, export and metrics", {"training", "training.*", "quantize", "quantize.*", "assess.metrics",
                                      "assess.compare"}),
    ("recording a run", {"run.outputs", "run.book", "run.plan", "run.steps", "run.repeats"}),
    ("assessing a run", {"assess", "assess.scoring", "assess.verdict", "assess.latency", "assess.saliency",
                         "assess.runs"}),
    ("reporting", {"report", "report.*"}),
    ("commands", {"run", "run.pipeline", "run.data_steps", "run.environment", "run.preflight", "run.ray_executor",
                  "run.tracking", "predict"}),
    ("command line", {"cli", "cli.*"}),
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
    assert not missing, f"place these modules in a layer of tests/test_layers.py (and docs/development.md): {missing}"


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
    fake = tmp_path / "fit.py"
    fake.write_text("from ctdistill.report import build_report\n")
    assert "report" in imports(fake)
    assert layer_of("report") > layer_of("training.fit")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle of ``graph`` (module -> the modules it imports), each as the modules around it."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                found.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_circle_even_within_a_layer():
    """Two modules of one layer that import each other pass the layer check; this catches them."""
    graph = {name: {t for t in imports(path) if t != name} for name, path in modules().items()}
    assert cycles(graph) == []
    assert cycles({"run.pipeline": {"run.ray_executor"}, "run.ray_executor": {"run.pipeline"}}) == [
        ["run.pipeline", "run.ray_executor", "run.pipeline"]]


def test_the_contributors_list_names_every_module_where_its_layer_is():
    """The contributors' list (docs/development.md) is checked against this file's table: each module is named
    (as its path under src/ctdistill/) in the item of its own layer."""
    readme = (SRC.parents[1] / "docs" / "development.md").read_text(encoding="utf-8")
    section = readme[readme.index("## For contributors"):]
    items: dict[int, str] = {}
    current = None
    for line in section.splitlines():
        number, _, rest = line.partition(". **")
        if rest and number.strip().isdigit():
            current = int(number) - 1
        if current is not None:
            items[current] = items.get(current, "") + line + "\n"
    for name, path in modules().items():
        if path.name == "__init__.py" and name not in ("report",):
            continue
        shown = "report/" if name.startswith("report") else path.relative_to(SRC).as_posix()
        layer = layer_of(name)
        assert f"`{shown}" in items.get(layer, ""), (
            f"docs/development.md: name `{shown}` in item {layer + 1} ({LAYERS[layer][0]})")
