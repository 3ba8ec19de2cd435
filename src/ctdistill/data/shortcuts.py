"""What the files give away without their content: a shortcut baseline and a train/test shift classifier.

Two cross-validated scikit-learn classifiers on file metadata alone: width, height, aspect ratio,
colour mode, format, file size, the share of the image the body fills (``data.crop``), intensity
mean and spread, and how dark the border is. None of these is the disease.

* **Shortcut baseline**: predicts the *class*. Its balanced accuracy (95% bootstrap interval of the
  out-of-fold predictions) above chance means the images' source tells the classes apart, and a
  network can learn the source instead of the finding. Folds keep copy groups together.
* **Train/test shift** (adversarial validation): predicts whether an image is in the *test* split,
  from the metadata and, separately, from the pixels: an 8 x 8 thumbnail of the whole image and one
  of the body's crop (``data.describe``), that is what the model sees without and with ``--crop
  body``. Its ROC-AUC well above 0.5 means the test images are drawn differently from the training
  ones, so validation numbers will not carry over to test; a lower AUC on the crop's thumbnails
  says the crop removes part of the difference.

Both report the features that carry them (mean impurity decrease of the fitted forests). DICOM
slices add their header tags (``data.dicom.HEADER_TAGS``: contrast agent, scanner, kernel, slice
thickness, pixel spacing, kVp, institution) to the metadata, and :func:`label_tags` names every tag
value that occurs in one class only, more often than chance allows (a tag that gives the label away).

Example:
    >>> found = shortcut_baseline(audit.table)        # doctest: +SKIP
    >>> found["balanced_accuracy"], found["top_features"][:2]   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedGroupKFold

from ctdistill.core.stats import balanced_accuracy, binary_auc
from ctdistill.data.describe import thumbnail_pixels
from ctdistill.data.dicom import HEADER_TAGS, TAG_PREFIX

# The shift classifier on pixels alone: the audit's thumbnail columns, by what the model sees.
PIXEL_VIEWS = {"whole image": "thumb", "body crop": "thumb_body"}
NUMERIC = ("width", "height", "aspect", "file_kb", "body_share", "mean", "std", "border")
CATEGORICAL = ("mode", "format")
FOLDS = 5
SHIFT_WARNING_AUC = 0.7  # the interval's lower end above this: the test split is drawn differently
RESAMPLES = 1000
# A tag value seen only in one class is named when Fisher's exact test (one-sided) gives p below this:
# a family-wise 5% over about 50 tag values (Bonferroni), whatever the collection.
LABEL_TAG_P = 1e-3
PRESENT = "(present)"  # the value of a text tag that counts any value, even empty, against its absence


def features(table: pd.DataFrame) -> pd.DataFrame:
    """The metadata features of each image (columns the audit table lacks are left out)."""
    frame = table.copy()
    if {"width", "height"} <= set(frame):
        frame["aspect"] = frame["width"] / frame["height"]
    numeric = frame[[c for c in NUMERIC if c in frame]].astype(float)
    dummies = [pd.get_dummies(frame[c].astype(str), prefix=c, dtype=float) for c in CATEGORICAL if c in frame]
    tags = [c for c in frame if c.startswith(TAG_PREFIX)]
    numbers = [frame[c].astype(float).fillna(-1.0) for c in tags if _kind(c) == "number"]  # -1: absent
    for c in (c for c in tags if _kind(c) == "text"):
        dummies += [frame[c].notna().astype(float).rename(f"{c}_{PRESENT}"),
                    pd.get_dummies(frame[c].dropna().astype(str), prefix=c, dtype=float).reindex(frame.index)]
    return pd.concat([numeric, *numbers, *dummies], axis=1).fillna(0.0)


def _kind(column: str) -> str:
    return HEADER_TAGS.get(column[len(TAG_PREFIX):], "text")


def label_tags(table: pd.DataFrame) -> list[dict]:
    """DICOM header tag values found in one class only, and in more of its files than chance allows
    (Fisher's exact test, p < :data:`LABEL_TAG_P`): the header alone gives those files' label away.

    Returns:
        ``[{tag, value, class, files, class_files, p}]``, most significant first; ``value`` is
        :data:`PRESENT` for a text tag counted by its presence. Empty without DICOM files.

    Example:
        >>> t = pd.DataFrame({"label": ["c"] * 10 + ["n"] * 10,
        ...                   "tag_ContrastBolusAgent": ["ISOVUE"] * 8 + [None] * 12})
        >>> [(f["tag"], f["value"], f["class"], f["files"]) for f in label_tags(t)]
        [('ContrastBolusAgent', '(present)', 'c', 8), ('ContrastBolusAgent', 'ISOVUE', 'c', 8)]
    """
    y = table["label"].astype(str).to_numpy()
    found = []
    for column in sorted(c for c in table if c.startswith(TAG_PREFIX)):
        values = table[column]
        masks = {str(v): (values == v).to_numpy() for v in values.dropna().unique()}
        if _kind(column) == "text":
            masks = {PRESENT: values.notna().to_numpy(), **masks}
        for value, mask in masks.items():
            classes = np.unique(y[mask])
            if len(classes) != 1 or mask.all():
                continue
            mine = y == classes[0]
            p = fisher_exact([[mask.sum(), 0], [(mine & ~mask).sum(), (~mine & ~mask).sum()]],
                             alternative="greater").pvalue
            if p < LABEL_TAG_P:
                found.append({"tag": column[len(TAG_PREFIX):], "value": value, "class": str(classes[0]),
                              "files": int(mask.sum()), "class_files": int(mine.sum()), "p": float(f"{p:.3g}")})
    return sorted(found, key=lambda f: (f["p"], f["tag"], f["value"]))


def _groups(table: pd.DataFrame) -> np.ndarray:
    """Copy groups stay in one fold (an image and its copy on both sides would be a leak of its own)."""
    near = table["near_group"].to_numpy() if "near_group" in table else np.full(len(table), -1)
    return np.where(near >= 0, near, -(np.arange(len(table)) + 1))


def _out_of_fold(x: pd.DataFrame, y: np.ndarray, groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold class probabilities and the mean feature importances of the fitted forests."""
    classes = np.unique(y)
    proba, importance = np.zeros((len(y), len(classes))), np.zeros(x.shape[1])
    folds = min(FOLDS, int(pd.Series(y).value_counts().min()))
    for train, held in StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(x, y, groups):
        forest = RandomForestClassifier(200, min_samples_leaf=3, random_state=seed, n_jobs=1)
        forest.fit(x.iloc[train], y[train])
        proba[np.ix_(held, np.searchsorted(classes, forest.classes_))] = forest.predict_proba(x.iloc[held])
        importance += forest.feature_importances_ / folds
    return proba, importance


def _interval(statistic, n: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n, n)) for _ in range(RESAMPLES)]
    values = [v for v in values if not np.isnan(v)]
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _top(names, importance, k: int = 4) -> list[list]:
    order = np.argsort(importance)[::-1][:k]
    return [[str(names[i]), round(float(importance[i]), 3)] for i in order]


def shortcut_baseline(table: pd.DataFrame, seed: int = 0) -> dict | None:
    """Predict the class from metadata alone; None with fewer than two classes or too few images."""
    y = table["label"].astype(str).to_numpy()
    if len(np.unique(y)) < 2 or pd.Series(y).value_counts().min() < 2:
        return None
    x = features(table)
    proba, importance = _out_of_fold(x, y, _groups(table), seed)
    predicted = np.unique(y)[proba.argmax(axis=1)]
    score = float(balanced_accuracy(y, predicted))

    def stat(i):
        return balanced_accuracy(y[i], predicted[i]) if len(np.unique(y[i])) > 1 else np.nan

    lo, hi = _interval(stat, len(y), seed)
    chance = 1.0 / len(np.unique(y))
    return {"balanced_accuracy": round(score, 4), "lo": round(lo, 4), "hi": round(hi, 4), "chance": round(chance, 4),
            "above_chance": lo > chance, "top_features": _top(x.columns, importance), "n": int(len(y))}


def train_test_shift(table: pd.DataFrame, seed: int = 0) -> dict | None:
    """Tell test images from the others by metadata alone, and by each thumbnail view of
    :data:`PIXEL_VIEWS` (``"pixels"``), with ROC-AUC intervals (adversarial validation); None without a
    test split."""
    is_test = (table["split"] == "test").to_numpy()
    if is_test.sum() < 2 or (~is_test).sum() < 2:
        return None
    groups = _groups(table)
    found = _shift_auc(features(table), is_test, groups, seed)
    found["pixels"] = {view: _shift_auc(pd.DataFrame(thumbnail_pixels(table[column])).add_prefix("pixel_"), is_test,
                                        groups, seed)
                       for view, column in PIXEL_VIEWS.items() if column in table and table[column].notna().all()}
    return found | {"n_test": int(is_test.sum()), "n_other": int((~is_test).sum())}


def _shift_auc(x: pd.DataFrame, is_test: np.ndarray, groups: np.ndarray, seed: int) -> dict:
    proba, importance = _out_of_fold(x, is_test.astype(int), groups, seed)
    score = proba[:, -1]
    auc = float(binary_auc(is_test, score))

    def stat(i):
        return binary_auc(is_test[i], score[i]) if 0 < is_test[i].sum() < len(i) else np.nan

    lo, hi = _interval(stat, len(score), seed)
    return {"auc": round(auc, 4), "lo": round(lo, 4), "hi": round(hi, 4), "shifted": lo > SHIFT_WARNING_AUC,
            "top_features": _top(x.columns, importance)}
