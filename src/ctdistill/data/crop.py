"""Crop a CT slice to the body before it is resized: the one place that decides the framing.

Why: the Kaggle chest-CT test slices show the scanner table and wide black margins around a smaller
body, while the train slices are cropped tightly; a model trained on one framing and scored on the
other loses about 17 points (``BENCHMARKS.md``, "Crop to the body"). Cropping every image to its body
removes that difference, whatever the source framed.

Method (MONAI's ``CropForeground`` idea, plus the largest component, which drops the table):

1. foreground = pixels brighter than Otsu's threshold (Otsu 1979; about halfway between air and
   tissue) on the image smoothed by a Gaussian (sigma 0.5% of the shorter side: speckle of a wide
   window would otherwise leave a body of isolated pixels that step 3 erodes away), or a given mask
   (DICOM: above -500 HU);
2. a binary opening (radius 1% of the shorter side) detaches the table's thin supports;
3. the body is the largest connected component, together with any other component at least a
   quarter of its area (a body the opening split, arms);
4. its bounding box, grown back by the opening radius and a 2% margin;
5. steps 2-4 again on the mask with its holes (the lungs) filled, which keeps a thin body wall in
   one piece; that box is taken unless it is longer (a table joined; :func:`body_crop_from_mask`);
6. where no body of 5% of the image was found, once more on the image smoothed four times as much
   (sigma 2%), above Otsu's threshold of the pixels below the first one, with a margin wider by two
   sigmas: in a bone window soft tissue is sparse speckle that only this finds (IQ-OTH/NCCD,
   ``BENCHMARKS.md``); not where tissue covers more than a quarter of the image's edge (a slice
   cropped tightly, its body past the frame, where this would find only the mediastinum).

Fallbacks keep the whole image and say why (counted, never silent): ``blank`` (fewer than 16 grey
levels of contrast once smoothed: flat or pure noise), ``small`` (the body is under 5% of the image:
a crop would zoom into noise), ``cut`` (bright tissue continues past more than half of the box's
edge: the crop would cut the body).

Example:
    >>> img = np.zeros((100, 200), np.uint8); img[20:80, 60:150] = 200
    >>> c = body_crop(img); c.box, c.fallback
    ((17, 55, 83, 155), '')
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

CROP_VERSION = 3  # part of the decode cache key: bump when the crop's result can change (2: smoothing,
# filling; 3: a second try for sparse speckle)
MIN_CONTRAST = 16  # grey levels between the darkest and brightest percentile for a body to be found
MIN_SHARE = 0.05  # smallest body, as a share of the image, worth cropping to
COMPANION = 0.25  # other components at least this share of the largest belong to the body
OPEN_FRACTION = 0.01  # opening radius, as a share of the shorter side
SMOOTH_FRACTION = 0.005  # Gaussian sigma before thresholding, as a share of the shorter side
SPARSE_SMOOTH_FRACTION = 0.02  # the same, on the second try for a body of sparse speckle (a bone window)
MAX_EDGE_TISSUE = 0.25  # the second try only where at most this share of the image's edge is tissue
FILL_LENGTHENS = 0.03  # filled box taller than the plain one by this share of the height: the table joined
MARGIN_FRACTION = 0.02  # margin around the body, as a share of each side
CUT_FRACTION = 0.5  # bright share of the ring outside the box above which the crop would cut the body


@dataclasses.dataclass(frozen=True)
class Crop:
    """Where to crop one image.

    Args:
        box: ``(top, left, bottom, right)``, bottom and right exclusive; the whole image on a fallback.
        share: the kept share of the image's area (1.0 on a fallback).
        fallback: ``""`` when the body was found, else why the whole image is kept.
    """

    box: tuple[int, int, int, int]
    share: float
    fallback: str = ""

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The cropped image (any number of trailing channels)."""
        top, left, bottom, right = self.box
        return image[top:bottom, left:right]


def whole(shape: tuple[int, ...], why: str) -> Crop:
    return Crop((0, 0, int(shape[0]), int(shape[1])), 1.0, why)


def otsu_threshold(grey: np.ndarray) -> float:
    """Otsu's threshold (Otsu 1979): the grey level that maximises the between-class variance."""
    hist, edges = np.histogram(grey, bins=256, range=(float(grey.min()), float(grey.max()) + 1e-6))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2
    return float(centres[int(np.nanargmax(between[:-1]))])


def body_crop(grey: np.ndarray) -> Crop:
    """Find the body in a grey image (H, W) on the 0..255 scale; see the module docstring."""
    grey = np.asarray(grey, dtype=np.float32)
    smooth = ndimage.gaussian_filter(grey, max(1.0, SMOOTH_FRACTION * min(grey.shape)))
    low, high = np.percentile(smooth, [1, 99])  # after smoothing: noise alone is no contrast
    if high - low < MIN_CONTRAST:
        return whole(grey.shape, "blank")
    threshold = otsu_threshold(smooth)
    found = body_crop_from_mask(smooth > threshold)
    if found.fallback != "small":
        return found
    # A bone-like window shows soft tissue as sparse speckle: Otsu then parts bone and table from the
    # rest, and the body is "small". Smoothed more, tissue becomes a grey mass that the threshold
    # between air and that mass (Otsu below the first threshold) finds whole.
    smooth = ndimage.gaussian_filter(grey, max(1.0, SPARSE_SMOOTH_FRACTION * min(grey.shape)))
    below = smooth[smooth < threshold]
    if not below.size or np.ptp(below) == 0:
        return found
    mask = smooth > otsu_threshold(below)
    edges = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    if edges.mean() > MAX_EDGE_TISSUE:  # the body runs past the frame (a tight crop): nothing to crop to
        return found
    retry = body_crop_from_mask(mask, extra=2 * SPARSE_SMOOTH_FRACTION)
    return found if retry.fallback else retry


def body_crop_from_mask(mask: np.ndarray, extra: float = 0.0) -> Crop:
    """The crop around the body of a foreground mask (H, W) of bools (e.g. DICOM voxels above -500 HU).

    Found twice, on the mask as it is and with its holes filled, and the filled one kept where it
    found a body and only widened the box: filling the lungs keeps a body wall the opening broke in
    one piece (the plain mask then crops to the mediastinum), but filling also closes the air between
    the body and a curved table under it, which lengthens the box (``FILL_LENGTHENS``). ``extra``: a
    wider margin, as a share of each side (a mask found on a strongly smoothed image has soft edges)."""
    plain = _largest_body(mask, mask, extra)
    filled = _largest_body(ndimage.binary_fill_holes(mask), mask, extra)
    if filled.fallback:
        return plain
    slack = FILL_LENGTHENS * mask.shape[0]
    lengthened = filled.box[0] < plain.box[0] - slack or filled.box[2] > plain.box[2] + slack
    return plain if not plain.fallback and lengthened else filled


def _largest_body(found: np.ndarray, mask: np.ndarray, extra: float = 0.0) -> Crop:
    """Steps 2-4 of the module docstring on ``found``; the cut check looks at the unfilled ``mask``."""
    height, width = found.shape
    radius = max(1, round(OPEN_FRACTION * min(height, width)))
    opened = ndimage.binary_opening(found, structure=np.ones((3, 3), bool), iterations=radius)
    labels, count = ndimage.label(opened)
    if count == 0:
        return whole(found.shape, "small")
    areas = np.bincount(labels.ravel())[1:]
    if areas.max() < MIN_SHARE * height * width:
        return whole(found.shape, "small")
    body = np.isin(labels, 1 + np.flatnonzero(areas >= COMPANION * areas.max()))
    rows, cols = np.flatnonzero(body.any(axis=1)), np.flatnonzero(body.any(axis=0))
    grow_y = radius + round((MARGIN_FRACTION + extra) * height)
    grow_x = radius + round((MARGIN_FRACTION + extra) * width)
    box = (max(0, rows[0] - grow_y), max(0, cols[0] - grow_x), min(height, rows[-1] + 1 + grow_y),
           min(width, cols[-1] + 1 + grow_x))
    if _cuts_body(mask, box):
        return whole(mask.shape, "cut")
    share = (box[2] - box[0]) * (box[3] - box[1]) / (height * width)
    return Crop(tuple(int(v) for v in box), float(share))


def _cuts_body(mask: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """True when bright tissue fills more than ``CUT_FRACTION`` of a ring just outside the box."""
    top, left, bottom, right = box
    height, width = mask.shape
    ring = max(1, round(0.03 * min(height, width)))
    outer = np.zeros_like(mask)
    outer[max(0, top - ring):min(height, bottom + ring), max(0, left - ring):min(width, right + ring)] = True
    outer[top:bottom, left:right] = False
    return bool(outer.any()) and float(mask[outer].mean()) > CUT_FRACTION


CROPS = {"none": None, "body": body_crop}  # config ``crop`` -> how to find the box (None: keep the image)
