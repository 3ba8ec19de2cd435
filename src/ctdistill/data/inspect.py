"""``ctdistill data inspect``: what is in a dataset folder; each file decoded as training decodes it,
so the unreadable ones listed are exactly those ``prepare``, ``run`` and ``audit`` skip."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ctdistill.core.errors import DataError
from ctdistill.data.dicom import read_header
from ctdistill.data.numpy_layout import FILE_SPLIT, is_numpy_layout, read_array
from ctdistill.data.tree import scan_tree


def inspect_path(path: str | Path, class_map: str | Path | None = None) -> dict:
    """Counts per split and class, how folders became classes, file formats, colour modes and the size range.

    Args:
        path: dataset folder.
        class_map: optional TOML/JSON file mapping class folders to classes (``data.classes``).

    Returns:
        ``{"layout", "classes", "splits": {split: {class: count}}, "formats", "modes", "width",
        "height", "unreadable"}`` for a folder tree; shapes and dtypes for the numpy layout.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    if is_numpy_layout(root):
        return _inspect_numpy(root)
    per_split, mapping = scan_tree(root, class_map)
    splits, formats, modes, widths, heights, unreadable = {}, Counter(), Counter(), [], [], []
    for split, items in per_split.items():
        splits[split] = dict(sorted(Counter(label for label, _ in items).items()))
        for _, file in items:
            try:
                header = read_header(file, decode=True)  # the decoders' own refusals
            except (DataError, OSError) as exc:
                unreadable.append(str(exc) if isinstance(exc, DataError) else f"{file}: {exc.strerror or exc}")
                continue
            formats[f"{header['format']} ({file.suffix.lower() or 'no extension'})"] += 1
            modes[header["mode"]] += 1
            widths.append(header["width"])
            heights.append(header["height"])
    return {"layout": "folder tree", "classes": mapping.to_dict(), "class_text": mapping.describe(), "splits": splits,
            "formats": dict(formats), "modes": dict(modes),
            "width": _range(widths), "height": _range(heights), "unreadable": unreadable}


def _range(values: list[int]) -> dict:
    return {"min": min(values), "median": float(np.median(values)), "max": max(values)} if values else {}


def _inspect_numpy(root: Path) -> dict:
    out = {"layout": "numpy", "arrays": {}}
    for stem in FILE_SPLIT.values():
        for kind in ("X", "y"):
            file = root / f"{kind}_{stem}.npy"
            if file.is_file():
                arr = read_array(file)
                out["arrays"][file.name] = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    return out


def format_inspection(info: dict) -> str:
    """Human-readable text for :func:`inspect_path`'s result."""
    if info["layout"] == "numpy":
        return "\n".join(f"{name}: shape {v['shape']} {v['dtype']}" for name, v in info["arrays"].items())
    lines = [info["class_text"]]
    for split, counts in info["splits"].items():
        lines.append(f"{split}: {sum(counts.values())} images  " + ", ".join(f"{n} {c}" for c, n in counts.items()))
    lines.append("formats: " + ", ".join(f"{k}: {v}" for k, v in info["formats"].items()))
    lines.append("modes: " + ", ".join(f"{k}: {v}" for k, v in info["modes"].items()))
    if info["width"]:
        lines.append(f"width {info['width']['min']}-{info['width']['max']} px (median {info['width']['median']:g}), "
                     f"height {info['height']['min']}-{info['height']['max']} px (median {info['height']['median']:g})")
    if info["unreadable"]:
        lines.append(f"unreadable: {len(info['unreadable'])} file(s), skipped by prepare, run and predict:\n  "
                     + "\n  ".join(info["unreadable"][:10]))
    return "\n".join(lines)
