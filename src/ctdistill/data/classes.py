"""Class names from class folders: the folder name is the class, reconciled across splits only where needed.

A class folder's name is its class. Some datasets spell a class differently in different splits
(the Kaggle chest-CT download has ``adenocarcinoma_left.lower.lobe_T2_N0_M0_Ib`` in train and
``adenocarcinoma`` in test); those names are reconciled by one rule that can never merge two folders
of the same split:

* a folder whose name appears in every split keeps it;
* otherwise folders of different splits are the same class when one name is the other followed by a
  separator (any character that is not a letter or digit) and more text, ignoring case:
  ``adenocarcinoma`` matches ``adenocarcinoma_left.lower.lobe``, never ``adenocarcinomas``;
* every such group must hold exactly one folder of each split, and its class is its shortest name.

Anything else (a folder that matches none, or matches two folders of one split) stops with a
one-line error naming the folders; ``--class-map FILE`` (TOML or JSON, folder -> class) settles it
and is applied before the rule. Two folders a class map sends to one class are merged on purpose.

Example:
    >>> m = resolve_classes({"train": ["CT_COVID", "CT_NonCOVID"], "test": ["CT_COVID", "CT_NonCOVID"]})
    >>> m.class_names
    ['CT_COVID', 'CT_NonCOVID']
    >>> m = resolve_classes({"train": ["adeno_left.lobe", "normal"], "test": ["adeno", "normal"]})
    >>> m.class_names, m.folders["train"]["adeno_left.lobe"]
    (['adeno', 'normal'], 'adeno')
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

from ctdistill.core.errors import DataError

HINT = "settle it with --class-map FILE (TOML or JSON: folder name = class name)"


@dataclasses.dataclass(frozen=True)
class ClassMapping:
    """Which class each class folder of each split holds.

    Args:
        folders: ``{split: {folder name: class name}}``.
        class_names: the sorted class names (label index -> name).
        source: ``folder names``, ``reconciled across splits`` or ``class map <file>`` (how it was decided).
    """

    folders: dict[str, dict[str, str]]
    class_names: list[str]
    source: str

    def renamed(self) -> dict[str, str]:
        """``{folder: class}`` for every folder whose class is not its own name."""
        return {f: c for per_split in self.folders.values() for f, c in per_split.items() if f != c}

    def describe(self) -> str:
        """One line for logs: the classes, and every renamed folder."""
        renamed = self.renamed()
        text = f"classes ({self.source}): {', '.join(self.class_names)}"
        if renamed:
            text += "; folders mapped: " + "; ".join(f"{f} -> {c}" for f, c in sorted(renamed.items()))
        return text

    def to_dict(self) -> dict:
        return {"class_names": self.class_names, "source": self.source, "folders": self.folders}


def read_class_map(path: str | Path | None) -> dict[str, str]:
    """The ``folder -> class`` table of a TOML or JSON file (``{}`` for None)."""
    if path is None:
        return {}
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the class map ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a valid class map ({' '.join(str(exc).split())})") from None
    if isinstance(values, dict) and any(isinstance(v, dict) for v in values.values()):
        raise DataError(f"{path}: a class map is a table of folder name = class name; quote folder names that "
                        'contain dots ("large.cell.carcinoma_left" = "large cell")')
    if not isinstance(values, dict) or not all(isinstance(v, str) and v.strip() for v in values.values()):
        raise DataError(f"{path}: a class map is a table of folder name = class name (strings)")
    return {str(k): v.strip() for k, v in values.items()}


def resolve_classes(folders: dict[str, list[str]], class_map: dict[str, str] | None = None,
                    map_name: str = "class map") -> ClassMapping:
    """Decide the class of every class folder of every split (see the module docstring).

    Args:
        folders: ``{split: [class folder names]}``; one split (``all``) for a tree without splits.
        class_map: ``folder -> class`` applied first; folders it does not name keep their names.
        map_name: how errors and ``source`` refer to the class map (its file name).

    Returns:
        A :class:`ClassMapping`.

    Raises:
        DataError: unmatched or ambiguous folders (named), a class-map key that names no folder, or
            fewer than two classes.
    """
    class_map = class_map or {}
    unused = sorted(set(class_map) - {f for names in folders.values() for f in names})
    if unused:
        raise DataError(f"{map_name}: names no class folder: {', '.join(unused)}")
    named = {s: {f: class_map.get(f, f) for f in names} for s, names in folders.items()}
    shared = set.intersection(*(set(m.values()) for m in named.values()))
    loose = {s: sorted(f for f, c in m.items() if c not in shared) for s, m in named.items()}
    if any(loose.values()):
        for split, matches in _reconcile(loose, named).items():
            named[split].update(matches)
        source = "reconciled across splits" + (f", after {map_name}" if class_map else "")
    else:
        source = map_name if class_map else "folder names"
    names = sorted({c for m in named.values() for c in m.values()})
    if len(names) < 2:
        raise DataError(f"only one class ({names[0]!r}) found: classification needs at least two"
                        + ("" if class_map else f" (class folders: {', '.join(_all_folders(folders))})"))
    return ClassMapping(named, names, source)


def _reconcile(loose: dict[str, list[str]], named: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Group the folders no split shares by the prefix rule; ``{split: {folder: class}}`` or a DataError."""
    items = [(s, f, named[s][f]) for s, fs in loose.items() for f in fs]
    groups: list[list[tuple[str, str, str]]] = []
    for item in items:  # connected components of the "same class" relation
        linked = [g for g in groups if any(_same_class(item[2], other[2]) for other in g)]
        merged = [item] + [x for g in linked for x in g]
        groups = [g for g in groups if g not in linked] + [merged]
    out: dict[str, dict[str, str]] = {s: {} for s in loose}
    unmatched = []
    for group in groups:
        per_split = {s: [f for gs, f, _ in group if gs == s] for s in named}
        described = ", ".join(f"{s}/{f}" for s, f, _ in sorted(group))
        # Two classes of one split in a group: ambiguous (folders a class map merged on purpose are one class).
        if any(len({c for gs, _, c in group if gs == s}) > 1 for s in named):
            raise DataError(f"ambiguous class folders: {described} could be one class, but two of them are in "
                            f"the same split; {HINT}")
        missing = [s for s, fs in per_split.items() if not fs]
        if missing:
            unmatched.append(f"{described} (nothing in {', '.join(missing)})")
            continue
        name = min((c for _, _, c in group), key=lambda c: (len(c), c))
        for split, folder, _ in group:
            out[split][folder] = name
    if unmatched:
        raise DataError(f"classes differ between splits: class folder(s) {'; '.join(unmatched)} match no class "
                        f"folder of the other splits; {HINT}")
    return out


def _same_class(a: str, b: str) -> bool:
    """True when one name is the other followed by a separator and more text (case ignored)."""
    a, b = a.casefold(), b.casefold()
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and not long[len(short)].isalnum()


def _all_folders(folders: dict[str, list[str]]) -> list[str]:
    return sorted({name for names in folders.values() for name in names})
