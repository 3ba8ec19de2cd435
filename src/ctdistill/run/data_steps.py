"""The run's data: load it, audit it (copies, framing, shortcuts), split it, and find each test
image's nearest training images; the first steps of ``pipeline.run``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np

from ctdistill.config import Config
from ctdistill.core.errors import DataError
from ctdistill.data import SPLITS, Dataset, load_dataset
from ctdistill.data.audit import audit_cached, dedup_test_mask, write_audit
from ctdistill.data.audit_text import audit_text
from ctdistill.data.dataset import enlarged
from ctdistill.data.neighbours import cross_label, nearest_neighbours, thumbnails
from ctdistill.data.split import carve_validation, grouped_split, has_scans, table_groups
from ctdistill.run import folder as rf
from ctdistill.run.folder import write_json

log = logging.getLogger("ctdistill")


def load_data(cfg: Config) -> Dataset:
    data = load_dataset(cfg.data, cfg.image_size, cfg.channels, cfg.seed, cfg.synthetic_per_class, cfg.strict,
                        cfg.class_map, cfg.crop)
    if cfg.data is None:
        log.warning("no --data given: using the built-in SYNTHETIC CT phantoms (not medical data)")
    counts = data.summary()["counts"]
    log.info("data: %s; classes %s; images per split %s", data.source, data.class_names,
             {s: sum(counts[s].values()) for s in SPLITS})
    return data


def audit_step(cfg: Config, data: Dataset, run_dir: Path, resume: bool = False, trained_on: str | None = None
               ) -> Dataset:
    """Audit the data for copies (cached), store the findings, re-split by copy groups as configured
    (``split``, ``validation``), and mark the de-duplicated test view; returns the dataset to train on."""
    table = None
    if cfg.data is None:
        log.info("audit: skipped for the synthetic phantoms (each image is drawn independently)")
    else:
        result = audit_cached(cfg.data, data.fingerprint, class_map=cfg.class_map)
        log.info("data audit (audit.csv, audit.json):\n%s", audit_text(result.summary))
        write_audit(result.table, result.summary, run_dir)
        table = result.table
    data = resplit(cfg, data, table)
    if data.train.paths:
        write_splits(run_dir / rf.SPLITS_FILE, {s: data.split(s).paths for s in SPLITS}, resume,
                     (trained_on or cfg.data, cfg.data))
    if table is not None:
        data.dedup_test = dedup_test_mask(table, data.train.paths + data.valid.paths, data.test.paths)
        log.info("de-duplicated test view: %d of %d test images have no copy in train or valid; every test "
                 "metric is reported on both (columns *_dedup)", data.dedup_test.sum(), len(data.test))
        neighbours_step(table, data, run_dir, cfg.group_by)
    data.sizes = teacher_sizes(cfg, data, table)
    return data


def resplit(cfg: Config, data: Dataset, table, say: bool = True) -> Dataset:
    """Re-split ``data`` as configured (``split``, ``validation``) by the audit's copy groups (``table``)."""
    if table is not None and (cfg.split == "grouped" or (cfg.split == "auto" and not data.given_splits)):
        data = grouped_split(data, table, cfg.seed, cfg.group_by)
        if say:
            log.info("split by duplicate groups (StratifiedGroupKFold, seed %d): %s", cfg.seed, _sizes(data))
    elif cfg.validation == "carved":
        data = carve_validation(data, table, cfg.valid_fraction, cfg.seed, cfg.group_by)
        if say:
            log.info("validation carved from train+valid by copy groups (%.0f%%, seed %d; test as given): %s",
                     100 * cfg.valid_fraction, cfg.seed, _sizes(data))
    return data


def teacher_sizes(cfg: Config, data: Dataset, table) -> dict[int, Dataset]:
    """The run's images at each teacher's own side (``--teacher-image-size``, or a pretrained teacher's
    native size), decoded from the files as the student's are (cached the same way) and split
    exactly as ``data``: the same rows in the same order, checked label for label and path for path.
    With ``--teacher-view enlarged`` (and for phantoms or arrays, which have no files) the student's
    images enlarged instead."""
    from ctdistill.models.teachers import teacher_size  # the teacher table imports Keras

    sides = {teacher_size(n, cfg.weights, cfg.image_size, cfg.teacher_image_size) for n in cfg.teachers}
    out = {}
    for side in sorted(sides - {cfg.image_size}):
        if cfg.teacher_view == "enlarged" or not data.train.paths:  # phantoms or arrays: no file to decode again
            log.info("teachers' images: the %d px images enlarged to %d px (%s)", cfg.image_size, side,
                     "--teacher-view enlarged" if data.train.paths else f"no image files to decode at {side} px")
            out[side] = dataclasses.replace(data, sizes={}, **{s: enlarged(data.split(s), side) for s in SPLITS})
            continue
        log.info("teachers' images: decoding the data again at %d px (the student's stay at %d px)", side,
                 cfg.image_size)
        big = resplit(cfg, load_dataset(cfg.data, side, cfg.channels, cfg.seed, cfg.synthetic_per_class,
                                        cfg.strict, cfg.class_map, cfg.crop), table, say=False)
        for s in SPLITS:
            if not (np.array_equal(big.split(s).y, data.split(s).y) and big.split(s).paths == data.split(s).paths):
                raise DataError(f"{cfg.data}: the images decoded at {side} px do not split as those at "
                                f"{cfg.image_size} px ({s}); rerun with --teacher-image-size {cfg.image_size}")
        big.dedup_test = data.dedup_test
        out[side] = big
    return out


def neighbours_step(table, data: Dataset, run_dir: Path, group_by: str | None = None) -> None:
    """Each test image's nearest image among train and valid, by two hashes and the model's own input,
    and whether its patient or scan (``group_by``, DICOM ids) is among them (``neighbours.csv``); the
    images of another label that are the same picture are said loudly."""
    refs = data.train.paths + data.valid.paths
    thumbs = {"refs": thumbnails(np.concatenate([data.train.x, data.valid.x])), "test": thumbnails(data.test.x)}
    ids = refs + data.test.paths
    groups = dict(zip(ids, table_groups(table, ids, group_by, copies=False).tolist(), strict=True)) if (
        group_by or has_scans(table)) else None
    found = nearest_neighbours(table, refs, {"test": data.test.paths}, thumbs, groups)
    if groups is not None:
        log.info("patients/scans: %d of %d test images share theirs with train or valid (neighbours.csv, "
                 "shares_group)", found["shares_group"].sum(), len(found))
    rf.write_csv(found, run_dir / rf.NEIGHBOURS)
    for row in cross_label(found).itertuples():
        log.warning("CROSS-LABEL COPY: test image %s (%s) is the same picture as %s, of another class (thumbnail "
                    "distance %.4f)", row.path, row.label, row.nearest_thumb, row.thumb_distance)


def write_splits(path: Path, splits: dict, resume: bool, roots: tuple[str, str] = ("", "")) -> None:
    """Write the split lists; on resume, refuse when they differ from the run's own. File paths under
    the data folder are compared relative to it (``roots``: the folder then and now, which differ when
    the data moved); other ids (a prepared layout's) as they are."""
    def relative(lists: dict, root: str) -> dict:
        inside = lambda p: bool(root) and Path(p).is_relative_to(root)  # noqa: E731
        return {s: [os.path.relpath(p, root) if inside(p) else p for p in ps] for s, ps in lists.items()}

    if resume and path.is_file():
        if relative(json.loads(path.read_text(encoding="utf-8")), roots[0]) != relative(splits, roots[1]):
            raise DataError(f"{path}: refused to resume: the data splits differ from the interrupted run's")
        return
    write_json(path, splits)


def _sizes(data: Dataset) -> dict[str, int]:
    return {s: len(data.split(s)) for s in SPLITS}


