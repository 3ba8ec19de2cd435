"""The typed, validated configuration of a ctdistill run.

Defaults are the seed's hyper-parameters (T=2, alpha=0.5, batch 256, at most 300 epochs,
32x32x3 inputs). A configuration can be read from a TOML or JSON file and overridden by
command-line flags; every value is checked once, here, so later stages can trust it.

Example:
    >>> cfg = Config.from_mapping({"teachers": ["resnet"], "epochs": 5})
    >>> cfg.teachers, cfg.temperature
    (('resnet50',), 2.0)
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any, get_type_hints

from ctdistill.errors import ConfigError

ALL_TEACHERS = ("vgg16", "vgg19", "resnet50", "densenet121", "efficientnetb3", "nasnetmobile", "xception")
TEACHER_ALIASES = {"resnet": "resnet50", "densenet": "densenet121", "efficientnet": "efficientnetb3",
                   "nasnet": "nasnetmobile"}
MONITORS = ("val_accuracy", "val_loss")
SPLIT_MODES = ("auto", "given", "grouped")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that decides what a run computes.

    Args:
        data: dataset path (split tree, class-folder tree or numpy layout); None = built-in
            synthetic phantoms.
        teachers: canonical teacher names (aliases such as ``resnet`` are accepted).
        weights: ``imagenet``, ``none`` or a path to a weights file / folder of Keras weight files.
        image_size, channels: the input every model takes (teachers resize up internally).
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
    """

    data: str | None = None
    teachers: tuple[str, ...] = ALL_TEACHERS
    weights: str = "imagenet"
    image_size: int = 32
    channels: int = 3
    temperature: float = 2.0
    alpha: float = 0.5
    batch_size: int = 256
    epochs: int = 300
    patience: int = 30
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

    def __post_init__(self) -> None:
        # Aliases are resolved however the config was made (file, flags or Python).
        object.__setattr__(self, "teachers", canonical_teachers(self.teachers))
        _validate(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str = "configuration") -> "Config":
        """Build a config from plain values (file contents or flags), coercing and checking types."""
        hints = get_type_hints(cls)
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
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a valid {path.suffix.lstrip('.') or 'config'} file ({exc})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a table of keys at the top level")
        return cls.from_mapping({**values, **(overrides or {})}, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


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
    # Tests and plug-ins may add teachers to the table; imported lazily to keep config light.
    from ctdistill.models.teachers import TEACHERS

    return name in TEACHERS


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


def _strict_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise TypeError
    return int(value)


def _describe(text: str) -> str:
    if text.startswith("tuple"):
        return "a list (or comma-separated string)"
    return {"int": "an integer", "float": "a number"}.get(text, "a string")


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
    ("synthetic_per_class", lambda v: len(v) == 3 and min(v) >= 2, "must be three counts >= 2 (train, valid, test)"),
)


def _validate(cfg: Config) -> None:
    for key, ok, message in _RULES:
        if not ok(getattr(cfg, key)):
            raise ConfigError(f"{key}={getattr(cfg, key)!r} {message}")
    from ctdistill.quantize import QUANT_MODES  # the table of modes lives with the converter

    bad = [m for m in cfg.quant_modes if m not in QUANT_MODES]
    if bad:
        raise ConfigError(f"quant_modes: unknown mode(s) {', '.join(bad)}; choose from {', '.join(QUANT_MODES)}")
    if len(cfg.teachers) > 1 and Path(cfg.weights).expanduser().is_file():
        raise ConfigError(f"weights={cfg.weights!r} is one file but {len(cfg.teachers)} teachers were asked for; "
                          "give a folder of Keras weight files, or one teacher")
    if cfg.channels != 3 and cfg.weights == "imagenet":
        raise ConfigError("channels=1 cannot use ImageNet weights (they expect 3 channels); use --weights none")
