"""``ctdistill data prepare``: an image tree as a small folder of arrays that keeps where they came from.

The arrays are the seed's numpy layout (``X_/y_ train, val, test``), decoded, cropped and resized as
a run would; beside them ``preprocessing.json`` (crop, size), ``paths.json`` (each row's source
file, relative to the tree) and the audit of the source files (``audit.csv``, ``audit.json``). A run
on the folder therefore gets the tree's copy groups, splits and de-duplicated test view: a few MB
to copy to a GPU machine instead of the images. A tree without split folders is split by copy
groups first, as ``ctdistill run`` would split it.

Example:
    >>> prepare_arrays("data/chest-ct-scan", "prepared32", 32, 3)      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from ctdistill.data import load_dataset
from ctdistill.data.audit import STORED_AUDIT, audit_path, write_audit
from ctdistill.data.numpy_layout import output_files, relative_id, write_numpy
from ctdistill.data.split import grouped_split
from ctdistill.run.folder import refuse_existing


def prepare_arrays(tree: str | Path, out: str | Path, size: int, channels: int, class_map: str | None = None,
                   crop: str = "body", seed: int = 0) -> list[Path]:
    """Write ``tree`` as a prepared numpy layout into the new folder ``out``; returns the files written.

    Args:
        tree: an image folder tree (or another layout: then only the arrays are written).
        out: the output folder; existing prepared files are never overwritten.
        size, channels: the arrays' image size and channels.
        class_map: optional class-folder -> class file (``data.classes``).
        crop: ``data.crop.CROPS`` key applied before resizing.
        seed: the split of a tree without split folders.
    """
    tree, out = Path(tree), Path(out)
    refuse_existing(*output_files(out), *(out / name for name in STORED_AUDIT))
    data = load_dataset(tree, size, channels, seed=seed, class_map=class_map, crop=crop)
    if not data.train.paths:  # numpy layout or phantoms: nothing to trace back
        return write_numpy(data, out)
    result = audit_path(tree, class_map=class_map)
    if not data.given_splits:
        data = grouped_split(data, result.table, seed)
    table = result.table.assign(path=[relative_id(p, tree) for p in result.table["path"]])
    return write_numpy(data, out, tree) + write_audit(table, result.summary, out)
