"""Nearest neighbours: for every validation and test image, its closest training image, by several measures.

A copy check with one threshold says "copy" or "no copy"; it missed, on public CT collections, a test
image that was a training image of the other class at perceptual-hash distance 2, and adjacent
slices of one scan split between train and test. The distances themselves carry the information:
for each query image, its nearest image among the ones the model learnt from (train and valid: they
trained and selected it), under

* ``phash`` and ``dhash`` (``imagehash``: a DCT-based and a gradient-based 64-bit hash), Hamming
  distance in bits, from the audit table;
* ``thumb``: 1 - the correlation of the model's own input images (after the body crop when enabled,
  resized to the input size, grey, each standardised to mean 0 and variance 1).

``neighbours.csv`` keeps, per query image, the nearest reference under each measure, its distance and
whether its label is the same. The report's leakage curve (``scoring.leakage_curve``) and the
cross-label list (:func:`cross_label`) are read from it.

Example:
    >>> table = nearest_neighbours(audit.table, refs, queries, thumbs)      # doctest: +SKIP
    >>> table[["path", "phash_distance", "phash_same_label"]].head()        # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HASHES = ("phash", "dhash")  # audit-table columns, hex strings of 64-bit perceptual hashes
# The same picture (re-encoded, renamed, lightly annotated), measured on the Kaggle data (BENCHMARKS.md,
# "Nearest neighbours"): its 47 test images with a copy in train or valid lie within 0.0016 of it in
# thumbnail distance (1 - correlation of the model's inputs); every other test image is at least 0.020
# from its nearest training image, whatever the hashes say (a different patient at the same level and
# framing came within 4 bits of phash and 3 of dhash, at thumbnail distance 0.077).
SAME_PICTURE = 0.005
SAME_PICTURE_BITS = 2  # without thumbnails: both hashes this close (the one real copy above 0 bits was at 2)


def hash_bits(hexes: pd.Series) -> np.ndarray:
    """``(N, 64)`` booleans of hex-encoded hashes."""
    return np.array([np.unpackbits(np.frombuffer(bytes.fromhex(h), np.uint8)) for h in hexes], dtype=bool)


def thumbnails(x: np.ndarray) -> np.ndarray:
    """Grey, standardised, flattened images: rows whose dot product / D is their correlation."""
    grey = x.astype(np.float32).mean(axis=-1).reshape(len(x), -1)
    grey -= grey.mean(axis=1, keepdims=True)
    scale = grey.std(axis=1, keepdims=True)
    return grey / np.where(scale > 0, scale, 1.0)


def _nearest_hash(query: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distances = np.stack([(ref != q).sum(axis=1) for q in query]) if len(query) else np.zeros((0, len(ref)), int)
    index = distances.argmin(axis=1)
    return index, distances[np.arange(len(query)), index]


def _nearest_thumb(query: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    correlation = query @ ref.T / query.shape[1]
    index = correlation.argmax(axis=1)
    return index, np.round(1.0 - correlation[np.arange(len(query)), index], 6)


def nearest_neighbours(table: pd.DataFrame, refs: list[str], queries: dict[str, list[str]],
                       thumbs: dict[str, np.ndarray] | None = None, groups: dict[str, int] | None = None
                       ) -> pd.DataFrame:
    """The nearest reference image of every query image, under each measure available.

    Args:
        table: the audit table (``path``, ``label`` and the hash columns of :data:`HASHES` present).
        refs: ids (audit ``path``) of the images the model learnt from (train and valid).
        queries: ``{split: ids}`` of the images to look up (valid, test).
        thumbs: ``{"refs": thumbnails(x_refs), "<split>": thumbnails(x_split)}`` in the same orders,
            for the ``thumb`` measure (None: hashes only).
        groups: ``{id: patient or scan group}`` of the refs and queries (``data.split.split_groups``
            of ``--group-by`` and DICOM ids), for the ``shares_group`` column; None: no such column.

    Returns:
        One row per query image: ``path``, ``split``, ``label``, then per measure ``nearest_<m>``,
        ``<m>_distance``, ``<m>_same_label``; with ``groups``, ``shares_group`` (another image of its
        patient or scan is among the refs: the distances may be large, the leak is there all the same).
    """
    rows = table.set_index("path")
    ref_labels = rows.loc[refs, "label"].to_numpy()
    measures = [h for h in HASHES if h in rows and rows[h].notna().all()]
    ref_bits = {h: hash_bits(rows.loc[refs, h]) for h in measures}
    frames = []
    for split, ids in queries.items():
        frame = pd.DataFrame({"path": ids, "split": split, "label": rows.loc[ids, "label"].to_numpy()})
        found = {h: _nearest_hash(hash_bits(rows.loc[ids, h]), ref_bits[h]) for h in measures}
        if thumbs is not None:
            found["thumb"] = _nearest_thumb(thumbs[split], thumbs["refs"])
        for measure, (index, distance) in found.items():
            frame[f"nearest_{measure}"] = np.asarray(refs, dtype=object)[index]
            frame[f"{measure}_distance"] = distance
            frame[f"{measure}_same_label"] = ref_labels[index] == frame["label"].to_numpy()
        if set(HASHES) <= set(found):  # the phash-nearest image under the other hash: the same picture?
            other = hash_bits(rows.loc[ids, "dhash"])
            frame["dhash_to_phash_nearest"] = (ref_bits["dhash"][found["phash"][0]] != other).sum(axis=1)
        if groups is not None:
            seen = {groups[r] for r in refs}
            frame["shares_group"] = [groups[i] in seen for i in ids]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def cross_label(neighbours: pd.DataFrame) -> pd.DataFrame:
    """Query images whose nearest reference is the same picture (:data:`SAME_PICTURE` on thumbnails;
    without them, both hashes within :data:`SAME_PICTURE_BITS`) with another label: label conflicts,
    and a leak whichever label is right."""
    if "thumb_distance" in neighbours:
        return neighbours[(neighbours["thumb_distance"] <= SAME_PICTURE) & ~neighbours["thumb_same_label"]]
    if "dhash_to_phash_nearest" not in neighbours:
        return neighbours.iloc[0:0]
    close = (neighbours["phash_distance"] <= SAME_PICTURE_BITS) & (
        neighbours["dhash_to_phash_nearest"] <= SAME_PICTURE_BITS)
    return neighbours[close & ~neighbours["phash_same_label"]].sort_values("phash_distance")
