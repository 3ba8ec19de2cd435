"""The typed, validated configuration of a ctdistill run.

Defaults are the best recipe measured in ``BENCHMARKS.md`` (crop to the body, batch 32, AdamW with
a cosine schedule, augmentation, a validation split carved by copy groups) around the seed's
distillation values (T=2, alpha=0.5, at most 300 epochs, 32x32x3 inputs, all seven teachers);
``--preset seed`` gives the seed script's recipe (batch 256, whole images, no augmentation, ...).
A configuration can be read from a TOML or JSON file and overridden by command-line flags; every
value is checked once, here, so later stages can trust it.

Example:
    >>> cfg = Config.from_mapping({"teachers": ["resnet"], "epochs": 5})
    >>> cfg.teachers, cfg.temperature
    (('resnet50',), 2.0)
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tomllib
from pathlib import Path
from typing import Any, get_type_hints

from ctdistill.choices import (AUGMENTATIONS, CROPS, ENSEMBLES, MONITORS, QUANT_MODES, SPLIT_MODES,
                               TEACHER_ALIASES, VALIDATION_MODES)
from ctdistill.choices import STUDENT_HEADS as STUDENTS
from ctdistill.choices import TEACHERS as ALL_TEACHERS
from ctdistill.errors import ConfigError

# Named recipes (``--preset``): values applied beneath a config file's keys and the flags.
# ``ctdistill`` is the measured default recipe (the dataclass defaults); ``seed`` is the seed
# script's: whole images, batch 256, no augmentation, constant Adam, early stopping on validation
# loss, the given 72-image valid split, Keras' BatchNorm momentum.
PRESETS: dict[str, dict[str, Any]] = {
    "ctdistill": {},
    "seed": {"crop": "none", "batch_size": 256, "augment": (), "lr_schedule": "constant", "warmup_epochs": 0, "weight_decay": 0.0,
             "label_smoothing": 0.0, "class_balance": "none", "validation": "given", "monitor": "val_loss",
             "patience": 30, "bn_momentum": 0.99, "student": "seed"},
}


# The value a key had before it existed: a run saved by an older ctdistill is read with these where
# its config.json lacks the key (it cropped nothing), never with today's defaults.
LEGACY_VALUES: dict[str, Any] = {"crop": "none"}
# Keys that may differ when a run is continued elsewhere: where the data and the class map live (the
# data's content is checked by fingerprint, which covers every file's class).
MOVABLE = ("data", "class_map")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that decides what a run computes.

    Args:
        data: dataset path (split tree, class-folder tree or numpy layout); None = built-in
            synthetic phantoms.
        class_map: a TOML/JSON file mapping class folder names to class names (``data.classes``);
            None = folder names, reconciled across splits where they differ.
        teachers: canonical teacher names (aliases such as ``resnet`` are accepted).
        weights: ``imagenet``, ``none`` or a path to a weights file / folder of Keras weight files.
        image_size, channels: the input every model takes (teachers resize up internally).
        crop: ``body`` crops every image to the body (the largest bright component, which drops the
            scanner table and black margins) before resizing, in training, evaluation and ``predict``
            alike (``data.crop``); ``none`` stretches the whole image, as the seed did.
        temperature, alpha: Hinton KD temperature and weight of the hard-label loss.
        batch_size, epochs: batch size and the *maximum* epochs of every training stage.
        patience, monitor: early stopping on the validation split, best weights restored.
        learning_rate: Adam learning rate for students and the teacher head phase.
        finetune_learning_rate: learning rate whenever the teacher's base network trains: after
            unfreezing it, or from the start with ``weights="none"``.
        teacher_epochs: maximum epochs of teacher training (None = ``epochs``). Students always get
            ``epochs``, distilled and scratch alike, so their comparison stays fair.
        frozen_epochs: maximum epochs of the head-only teacher phase (ImageNet weights only).
        unfreeze_layers: how many base layers (counted from the top) to unfreeze; -1 = all.
        quant_modes: post-training quantization modes to export per student.
        seed: seeds Python, NumPy and the backend so a run is repeatable.
        split: ``given`` keeps the dataset's splits, ``grouped`` re-splits so that no group of
            (near) copies straddles two splits, ``auto`` = given when the data has splits, else grouped.
        synthetic_per_class: images per class and split (train, valid, test) of the phantoms.
        preset: the named recipe the other values started from (``PRESETS``).
        augment: training augmentations (``ctdistill.recipe.AUGMENTATIONS``), the same for every
            model; empty = none. With augmentation the teacher runs on each augmented batch during
            distillation (it must see what the student sees); without, its logits are cached.
        lr_schedule, warmup_epochs: ``cosine`` (linear warm-up, then cosine decay over ``epochs``)
            or ``constant``.
        weight_decay: decoupled weight decay (AdamW); 0 = plain Adam.
        label_smoothing: smoothing of the hard labels (all models, and the student's hard-label loss).
        class_balance: ``balanced`` resamples the training split to equal class counts; ``none``.
        validation: ``carved`` pools train and valid and carves a validation split of
            ``valid_fraction`` that shares no group of (near) copies with the training images (the
            test split stays as given); ``given`` keeps the dataset's valid split.
        bn_momentum: moving-average momentum of every BatchNormalization layer.
        student: ``seed`` (Flatten -> Dense 256, as the seed) or ``gap`` (global average pooling).
        ensemble: ``mean`` or ``weighted`` (by validation accuracy) also distils one student from the
            averaged logits of all teachers (two or more); ``none``.
        ece_bins: equal-width confidence bins of the expected calibration error.
        bootstrap_resamples, ci_method: the 95% bootstrap intervals (``percentile`` or ``BCa``;
            0 resamples = no intervals), seeded with ``seed``.
        seeds: repeat the student stages (scratch, distilled, int8) with these seeds as well, from
            the same teachers, and report mean ± std across seeds; empty = only ``seed``.
        max_quant_drop: the quantization safety gate: the largest validation-accuracy loss (points)
            full int8 may have before int8-mixed, 16x8 and float16 are tried (``quantgate``); < 0 = off.
        teacher_views: with augmentation, k > 0 computes the teacher's logits once on k augmented
            copies of the training split and draws each epoch's batches from that pool
            (``distill.view_pool_stream``): the teacher's cost is paid k times instead of once per
            epoch; 0 runs the teacher on every augmented batch. Default 8 (measured in BENCHMARKS.md:
            faster, and no less accurate on real teachers).
        strict: stop at the first unreadable image; by default it is skipped, and every skipped
            file is listed in the log, ``manifest.json`` and the report.
        deterministic: TensorFlow's deterministic ops, so the same data, config and seed on the same
            machine give identical predictions (cost measured in BENCHMARKS.md).
    """

    data: str | None = None
    class_map: str | None = None
    teachers: tuple[str, ...] = ALL_TEACHERS
    weights: str = "imagenet"
    image_size: int = 32
    channels: int = 3
    crop: str = "body"
    temperature: float = 2.0
    alpha: float = 0.5
    batch_size: int = 32
    epochs: int = 300
    patience: int = 50
    monitor: str = "val_accuracy"
    learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    teacher_epochs: int | None = None
    frozen_epochs: int = 10
    unfreeze_layers: int = -1
    quant_modes: tuple[str, ...] = ("dynamic", "float16", "int8")
    seed: int = 0
    split: str = "auto"
    synthetic_per_class: tuple[int, int, int] = (80, 20, 40)
    preset: str = "ctdistill"
    augment: tuple[str, ...] = ("hflip", "rotate", "translate", "zoom", "contrast")
    lr_schedule: str = "cosine"
    warmup_epochs: int = 5
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    class_balance: str = "none"
    validation: str = "carved"
    valid_fraction: float = 0.2
    bn_momentum: float = 0.9
    student: str = "seed"
    ensemble: str = "none"
    ece_bins: int = 10
    bootstrap_resamples: int = 1000
    ci_method: str = "percentile"
    seeds: tuple[int, ...] = ()
    max_quant_drop: float = 1.0
    teacher_views: int = 8
    strict: bool = False
    deterministic: bool = True

    def __post_init__(self) -> None:
        # Aliases are resolved however the config was made (file, flags or Python).
        object.__setattr__(self, "teachers", canonical_teachers(self.teachers))
        for key in ("augment", "quant_modes"):  # `--augment none`, `--quant-modes none`: the empty list
            value = tuple(getattr(self, key))
            object.__setattr__(self, key, () if value in (("none",), ("",)) else value)
        _validate(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str = "configuration") -> "Config":
        """Build a config from plain values (file contents or flags), coercing and checking types."""
        hints = get_type_hints(cls)
        preset = values.get("preset", "ctdistill")
        if preset not in PRESETS:
            raise ConfigError(f"{source}: unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        values = {**PRESETS[preset], **values}
        unknown = sorted(set(values) - set(hints))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; "
                              f"known keys are {', '.join(hints)}")
        coerced = {k: _coerce(k, v, hints[k], source) for k, v in values.items()}
        if "teachers" in coerced:
            coerced["teachers"] = canonical_teachers(coerced["teachers"], source)  # names the source
        return cls(**coerced)

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "Config":
        """Read a ``.toml`` or ``.json`` file, then apply ``overrides`` (e.g. command-line flags)."""
        return cls.from_mapping({**read_values(path), **(overrides or {})}, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def read_values(path: str | Path) -> dict[str, Any]:
    """The keys of a ``.toml`` or ``.json`` config file, unchecked (``Config.from_mapping`` checks)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid {path.suffix.lstrip('.') or 'config'} file ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a table of keys at the top level")
    return values


def canonical_teachers(names: Any, source: str = "teachers") -> tuple[str, ...]:
    """Map the seed's aliases to canonical names, keep order, reject unknown names."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out: list[str] = []
    for raw in names:
        name = TEACHER_ALIASES.get(str(raw).strip().lower(), str(raw).strip().lower())
        if name not in ALL_TEACHERS and not _is_registered(name):
            raise ConfigError(f"{source}: unknown teacher {raw!r}; choose from {', '.join(ALL_TEACHERS)} "
                              f"(aliases: {', '.join(TEACHER_ALIASES)})")
        if name not in out:
            out.append(name)
    return tuple(out)


def _is_registered(name: str) -> bool:
    # Tests and plug-ins add teachers to the table after importing it; a table nobody imported holds
    # only the built-in names, so validation never needs to import Keras for this.
    table = sys.modules.get("ctdistill.models.teachers")
    return table is not None and name in table.TEACHERS


def _coerce(key: str, value: Any, hint: Any, source: str) -> Any:
    """Accept what a TOML/JSON file or a flag can express; reject anything else by name."""
    text = hint.__name__ if isinstance(hint, type) else str(hint)
    if value is None and "None" in text:
        return None
    text = text.replace(" | None", "")
    try:
        if text.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            if "int" in text:
                return tuple(_strict_int(v) for v in items)
            return tuple(str(v).strip() for v in items if str(v).strip())
        if text == "bool":
            return _strict_bool(value)
        if text == "int":
            return _strict_int(value)
        if text == "float":
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if "str" in text:
            if not isinstance(value, (str, Path)):
                raise TypeError
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ConfigError(f"{source}: {key} must be {_describe(text)}, got {value!r}")


def _strict_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise TypeError


def _strict_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise TypeError
    return int(value)


def _describe(text: str) -> str:
    if text.startswith("tuple"):
        return "a list (or comma-separated string)"
    return {"int": "an integer", "float": "a number", "bool": "true or false"}.get(text, "a string")


_RULES: tuple[tuple[str, Any, str], ...] = (
    ("temperature", lambda v: v > 0, "must be > 0 (Hinton KD divides logits by it)"),
    ("alpha", lambda v: 0.0 <= v <= 1.0, "must be within [0, 1]"),
    ("image_size", lambda v: 8 <= v <= 1024, "must be between 8 and 1024 pixels"),
    ("channels", lambda v: v in (1, 3), "must be 1 or 3"),
    ("batch_size", lambda v: v >= 1, "must be >= 1"),
    ("epochs", lambda v: v >= 1, "must be >= 1"),
    ("patience", lambda v: v >= 1, "must be >= 1"),
    ("monitor", lambda v: v in MONITORS, f"must be one of {', '.join(MONITORS)}"),
    ("split", lambda v: v in SPLIT_MODES, f"must be one of {', '.join(SPLIT_MODES)}"),
    ("learning_rate", lambda v: v > 0, "must be > 0"),
    ("finetune_learning_rate", lambda v: v > 0, "must be > 0"),
    ("teacher_epochs", lambda v: v is None or v >= 1, "must be >= 1 (or unset: same as epochs)"),
    ("frozen_epochs", lambda v: v >= 0, "must be >= 0"),
    ("unfreeze_layers", lambda v: v >= -1, "must be -1 (all) or a layer count >= 0"),
    ("teachers", lambda v: len(v) >= 1, "must name at least one teacher"),
    ("preset", lambda v: v in PRESETS, f"must be one of {', '.join(PRESETS)}"),
    ("lr_schedule", lambda v: v in ("cosine", "constant"), "must be cosine or constant"),
    ("warmup_epochs", lambda v: v >= 0, "must be >= 0"),
    ("weight_decay", lambda v: 0.0 <= v < 1.0, "must be within [0, 1)"),
    ("label_smoothing", lambda v: 0.0 <= v < 1.0, "must be within [0, 1)"),
    ("class_balance", lambda v: v in ("none", "balanced"), "must be none or balanced"),
    ("validation", lambda v: v in VALIDATION_MODES, f"must be one of {', '.join(VALIDATION_MODES)}"),
    ("valid_fraction", lambda v: 0.05 <= v <= 0.5, "must be within [0.05, 0.5]"),
    ("bn_momentum", lambda v: 0.0 <= v < 1.0, "must be within [0, 1)"),
    ("student", lambda v: v in STUDENTS, f"must be one of {', '.join(STUDENTS)}"),
    ("ensemble", lambda v: v in ENSEMBLES, f"must be one of {', '.join(ENSEMBLES)}"),
    ("crop", lambda v: v in CROPS, f"must be one of {', '.join(CROPS)}"),
    ("ece_bins", lambda v: 2 <= v <= 100, "must be between 2 and 100"),
    ("teacher_views", lambda v: 0 <= v <= 1000, "must be between 0 (teacher on every batch) and 1000"),
    ("bootstrap_resamples", lambda v: v == 0 or v >= 100, "must be 0 (no intervals) or >= 100"),
    ("ci_method", lambda v: v in ("percentile", "BCa"), "must be percentile or BCa"),
    ("synthetic_per_class", lambda v: len(v) == 3 and min(v) >= 2, "must be three counts >= 2 (train, valid, test)"),
)


def _validate(cfg: Config) -> None:
    for key, ok, message in _RULES:
        if not ok(getattr(cfg, key)):
            raise ConfigError(f"{key}={getattr(cfg, key)!r} {message}")
    unknown = [a for a in cfg.augment if a not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"augment: unknown augmentation(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(AUGMENTATIONS)} (a vertical flip is not offered: see ctdistill.recipe)")
    bad = [m for m in cfg.quant_modes if m not in QUANT_MODES]
    if bad:
        raise ConfigError(f"quant_modes: unknown mode(s) {', '.join(bad)}; choose from {', '.join(QUANT_MODES)}")
    if len(cfg.teachers) > 1 and Path(cfg.weights).expanduser().is_file():
        raise ConfigError(f"weights={cfg.weights!r} is one file but {len(cfg.teachers)} teachers were asked for; "
                          "give a folder of Keras weight files, or one teacher")
    if cfg.class_map is not None and not Path(cfg.class_map).expanduser().is_file():
        raise ConfigError(f"class_map={cfg.class_map!r}: file not found")
    if cfg.channels != 3 and cfg.weights == "imagenet":
        raise ConfigError("channels=1 cannot use ImageNet weights (they expect 3 channels); use --weights none")
