"""What one image file looks like, for the audit: hashes, size, format, framing, intensity, scan ids.

One row of the audit table per file (``data.audit``). Every measure is taken on the picture as a
viewer shows it: PNG/JPEG/... converted to RGB, DICOM slices in the lung window (``data.dicom``), so
the same slice stored both ways gets the same hashes. The thumbnails (8 x 8 grey, of the whole image
and of the body's crop) let the train/test shift classifier (``data.shortcuts``) look at the pixels
as well as at the metadata, with and without the crop a run may apply.

Example:
    >>> import io
    >>> from PIL import Image
    >>> png = io.BytesIO(); Image.new("L", (64, 48), 90).save(png, "PNG")
    >>> row = describe_image(png.getvalue(), "grey.png")
    >>> row["width"], row["height"], row["format"], row["body_fallback"], len(row["thumb"])
    (64, 48, 'PNG', 'blank', 128)
"""

from __future__ import annotations

import functools
import hashlib
import io
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from ctdistill.core.errors import DataError
from ctdistill.data.crop import body_crop
from ctdistill.data.decode import check_pixels, to_mode
from ctdistill.data.dicom import header_tags, is_dicom, one_slice, scan_ids

THUMB = 8  # thumbnail side in pixels: 64 features, coarse enough that a random forest on 1000 images copes
PICTURE_SIDE = 128  # side of the pictures compared pixel by pixel (annotated copies, adjacent slices)


def describe_image(data: bytes, name: str) -> dict:
    """Pixel hash, perceptual hashes, size, mode, format, file size, body share, intensity and thumbnails
    of one encoded image (DICOM: also its ``patient`` and ``study`` ids)."""
    if not data:
        raise DataError(f"{name}: empty file (0 bytes)")
    if is_dicom(data):
        return _describe_dicom(data, name)
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, mode, (width, height) = img.format, img.mode, img.size
            check_pixels(img, name)
            img.load()
            rgb = to_mode(img, 3)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is reported per file
        raise DataError(f"{name}: not a readable image ({exc})") from None
    grey = np.asarray(rgb.convert("L"))
    crop = body_crop(grey)
    return _pictured(rgb, grey, crop) | {"width": width, "height": height, "mode": mode, "format": fmt,
                                         "file_kb": len(data) / 1e3}


def open_picture(path: str | Path) -> Image.Image:
    """A file as a viewer shows it, in grey: an image converted, a DICOM slice in the lung window (for
    the report's pictures). Raises ``OSError`` or ``DataError`` when it cannot be read."""
    data = Path(path).read_bytes()
    if is_dicom(data):
        return one_slice(data, str(path))[1].convert("L")
    with Image.open(io.BytesIO(data)) as img:
        return to_mode(img, 1)


def describe_array(img: np.ndarray) -> dict:
    """The same measures of a decoded ``(H, W, C)`` uint8 array (a prepared numpy layout's images)."""
    rgb = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).convert("RGB")
    grey = np.asarray(rgb.convert("L"))
    return _pictured(rgb, grey, body_crop(grey)) | {"width": img.shape[1], "height": img.shape[0], "mode": "array",
                                                    "format": "npy"}


def _describe_dicom(data: bytes, name: str) -> dict:
    # The body is found on the Hounsfield units (as the loader crops it), the rest on the windowed slice.
    ds, img, box = one_slice(data, name, crop="body")
    rgb = to_mode(img, 3)
    return _pictured(rgb, np.asarray(rgb.convert("L")), box) | {
        "width": img.width, "height": img.height, "mode": str(getattr(ds, "PhotometricInterpretation", "")),
        "format": "DICOM", "file_kb": len(data) / 1e3, **scan_ids(ds), **header_tags(ds)}


def _pictured(rgb: Image.Image, grey: np.ndarray, crop) -> dict:
    body = crop.apply(grey)
    return {"pixel_hash": hashlib.sha256(f"{rgb.size}".encode() + rgb.tobytes()).hexdigest(),
            "phash": str(imagehash.phash(rgb)), "dhash": str(imagehash.dhash(rgb)),
            "body_share": round(crop.share, 4), "body_fallback": crop.fallback,
            "body_box": ",".join(map(str, crop.box)), **_intensity(grey),
            "thumb": thumbnail(grey), "thumb_body": thumbnail(body),
            "picture": standardised_picture(Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8)))}


def _intensity(grey: np.ndarray) -> dict:
    """Mean and spread of the grey levels, and the mean of the outer 5% border (how dark the framing is)."""
    edge = max(1, min(grey.shape) // 20)
    border = np.concatenate([grey[:edge].ravel(), grey[-edge:].ravel(), grey[:, :edge].ravel(),
                             grey[:, -edge:].ravel()])
    return {"mean": round(float(grey.mean()), 2), "std": round(float(grey.std()), 2),
            "border": round(float(border.mean()), 2)}


def thumbnail(grey: np.ndarray) -> str:
    """An 8 x 8 area-averaged grey thumbnail as 128 hex characters (one byte a pixel): it survives
    the audit's CSV and JSON cache as a plain string.

    Example:
        >>> thumbnail(np.full((40, 30), 255, np.uint8))[:6]
        'ffffff'
    """
    small = Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8)).resize((THUMB, THUMB), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8).tobytes().hex()


def thumbnail_pixels(hexes) -> np.ndarray:
    """``(N, 64)`` floats of :func:`thumbnail` strings."""
    return np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in hexes], dtype=np.float32)


def standardised_picture(grey: Image.Image, side: int = PICTURE_SIDE) -> np.ndarray:
    """A grey picture resized to ``side`` px, flattened and standardised (mean 0, variance 1; float16 to
    keep a collection's pictures small): the dot product of two, over their length, is their correlation.

    Example:
        >>> row = standardised_picture(Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (64, 1))), 32)
        >>> row.shape, round(float(row.astype(np.float32) @ row / row.size), 2)
        ((1024,), 1.0)
    """
    pixels = np.asarray(grey.convert("L").resize((side, side), Image.Resampling.BILINEAR), np.float32).ravel()
    return ((pixels - pixels.mean()) / (pixels.std() or 1.0)).astype(np.float16)


def picture_distance(first: str | Path, second: str | Path, side: int = PICTURE_SIDE) -> float:
    """1 - the correlation of two files' grey pictures resized to ``side`` px: near 0 for the same picture
    with a line drawn on it, re-encoded or brightened; a few hundredths for the adjacent slice.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))
        >>> Image.fromarray(ramp).save(folder / "a.png"); Image.fromarray(ramp // 2 + 20).save(folder / "b.png")
        >>> picture_distance(folder / "a.png", folder / "b.png") < 1e-3
        True
    """
    a, b = (_standardised(str(path), side, Path(path).stat().st_mtime_ns) for path in (first, second))
    return float(1.0 - a.astype(np.float32) @ b.astype(np.float32) / a.size)


@functools.lru_cache(maxsize=256)  # the audit compares one file with several candidates in a row
def _standardised(path: str, side: int, modified: int) -> np.ndarray:  # ``modified``: a changed file is read anew
    return standardised_picture(open_picture(path), side)
