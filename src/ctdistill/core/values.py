"""Values as configuration files and flags give them, made typed: TOML/JSON reading and coercion.

A TOML or JSON file and the command line express values differently (``"0,1,2"``, ``[0, 1, 2]``,
``"true"``); :func:`coerce` accepts what either can express for a field's declared type and refuses
anything else with a one-line error naming the key and the source.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from ctdistill.core.errors import ConfigError


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


def coerce(key: str, value: Any, hint: Any, source: str) -> Any:
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
