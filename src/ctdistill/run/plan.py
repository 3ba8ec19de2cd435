"""The stage plan of a run: which stages it goes through, in order, and what each builds on.

One place for the facts both executors need (``pipeline`` runs the stages in this process,
``ray_executor`` as tasks on a cluster): the models that get a distilled student (the teachers, and
the ensemble when one is built), the stages' names and order, and each stage's upstream stages,
whose rerun invalidates its completion record (``book``).

Example:
    >>> from ctdistill.config import Config
    >>> cfg = Config(teachers=("vgg16", "resnet50"), ensemble="mean", quant_modes=(), seeds=())
    >>> distilled_names(cfg), planned_stages(cfg)[:3], upstream("distill-vgg16", cfg, distilled_names(cfg))
    (['vgg16', 'resnet50', 'ensemble'], ['scratch', 'teacher-vgg16', 'distill-vgg16'], ('teacher-vgg16',))
"""

from __future__ import annotations

from ctdistill.config import Config
from ctdistill.quantize.convert import can_export


def builds_ensemble(cfg: Config) -> bool:
    """Whether a run of ``cfg`` builds an ensemble teacher from its trained teachers."""
    return cfg.ensemble != "none" and len(cfg.teachers) > 1


def distilled_names(cfg: Config) -> list[str]:
    """The teachers whose students a run of ``cfg`` distils, in run order (with ``ensemble`` when one is built)."""
    return [*cfg.teachers, *(["ensemble"] if builds_ensemble(cfg) else [])]


def planned_stages(cfg: Config) -> list[str]:
    """The stages a run of ``cfg`` goes through, in order (what the progress display counts)."""
    names = distilled_names(cfg)
    stages = ["scratch", *(f"{kind}-{n}" for n in names for kind in ("teacher", "distill"))]
    stages += ["seeds"] if cfg.seeds else []
    if cfg.quant_modes and can_export():
        stages += [f"quantize-{n}" for n in names] + (["seeds-int8"] if cfg.seeds and "int8" in cfg.quant_modes
                                                       else [])
    return stages


def upstream(stage: str, cfg: Config, names: list[str]) -> tuple[str, ...]:
    """The stages ``stage`` builds on: a rerun of any of them invalidates its record. ``names``: the
    teachers whose students are distilled (:func:`distilled_names`)."""
    if stage == "seeds":
        return tuple(f"teacher-{n}" for n in names)
    if stage == "seeds-int8":
        return ("seeds",)
    kind, _, name = stage.partition("-")
    if kind == "teacher":
        return tuple(f"teacher-{t}" for t in cfg.teachers) if name == "ensemble" else ()
    return {"distill": (f"teacher-{name}",), "quantize": (f"distill-{name}",)}.get(kind, ())
