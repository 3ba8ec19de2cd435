"""The in-memory dataset every loader returns: three splits, one label set, one fingerprint."""

from __future__ import annotations

import dataclasses

import numpy as np

SPLITS = ("train", "valid", "test")
# How the test split came about, in the words reports use for it.
TEST_SPLITS = {"given": "the dataset's own test split",
               "grouped": "a test split drawn by ctdistill (about 20% of all images, by copy groups; splits.json)"}


@dataclasses.dataclass
class Split:
    """One split: ``x`` uint8 images (N, H, W, C) in 0..255, ``y`` int labels (N,), optional paths."""

    x: np.ndarray
    y: np.ndarray
    paths: list[str] | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def counts(self, n_classes: int) -> list[int]:
        return np.bincount(self.y, minlength=n_classes).tolist()


@dataclasses.dataclass
class Dataset:
    """Images of all three splits with their class names.

    Args:
        train, valid, test: the splits; models select on ``valid`` and are scored once on ``test``.
        class_names: label index -> name, shared by every split.
        fingerprint: sha256 over the source content (files or arrays), recorded in every manifest.
        source: a one-line human description (path and kind, or "synthetic phantoms").
        dedup_test: boolean mask over ``test``: the de-duplicated test view (None until audited).
        given_splits: False when ctdistill made the splits (a folder without split folders).
        skipped: one message (file and reason) per unreadable image that was left out.
        classes: how class folders became classes (``ClassMapping.to_dict()``), None when the
            source has no class folders.
        test_split: how the test split came about (a key of ``TEST_SPLITS``).
        crop: the crop applied before resizing (``data.crop``) and what it kept
            (``tree.crop_summary``); None when the source is not decoded from images.
        sizes: the same images decoded at other sides (a pretrained teacher's own input size), row
            for row the same splits; see :meth:`at_size`.
    """

    train: Split
    valid: Split
    test: Split
    class_names: list[str]
    fingerprint: str
    source: str
    dedup_test: np.ndarray | None = None  # set by the audit: test images without copies in train/valid
    given_splits: bool = True  # False when ctdistill made the splits (a folder without split folders)
    skipped: list[str] = dataclasses.field(default_factory=list)  # unreadable images left out, one message each
    classes: dict | None = None  # class folder -> class, per split (image trees only)
    test_split: str = "given"  # a key of TEST_SPLITS
    crop: dict | None = None  # what the crop to the body kept, by split and class; its fallbacks
    sizes: dict[int, Dataset] = dataclasses.field(default_factory=dict)  # side -> these images at that side

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    def split(self, name: str) -> Split:
        return getattr(self, name)

    def at_size(self, side: int) -> Dataset:
        """These images at ``side`` pixels (the same rows of the same splits): itself at its own side.

        Example:
            >>> one = Split(np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1, int))
            >>> ds = Dataset(one, one, one, ["a"], "", "")
            >>> ds.at_size(8) is ds
            True
        """
        if side == self.input_shape[0]:
            return self
        if side not in self.sizes:
            raise KeyError(f"the data was not decoded at {side} px (have {self.input_shape[0]}, {sorted(self.sizes)})")
        return self.sizes[side]

    def summary(self) -> dict:
        """Counts per split and class, for logs, manifests and ``data inspect``."""
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "input_shape": list(self.input_shape),
            "class_names": self.class_names,
            "counts": {s: dict(zip(self.class_names, self.split(s).counts(self.n_classes), strict=True))
                       for s in SPLITS},
            "skipped": self.skipped,
            "classes": self.classes,
            "test_split": TEST_SPLITS[self.test_split],
            "crop": self.crop,
        }


def enlarged(split: Split, side: int) -> Split:
    """``split`` with its images resized to ``side`` (PIL bilinear, as the loader resizes)."""
    from PIL import Image

    grey = split.x.shape[-1] == 1
    x = np.stack([np.asarray(Image.fromarray(a.squeeze(-1) if grey else a).resize((side, side),
                                                                                  Image.Resampling.BILINEAR))
                  for a in split.x]) if len(split) else np.zeros((0, side, side, split.x.shape[-1]), np.uint8)
    return dataclasses.replace(split, x=x.reshape(len(split), side, side, split.x.shape[-1]))
