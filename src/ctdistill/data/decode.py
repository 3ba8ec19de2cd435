"""Decode any image file by its content (not its extension) into a fixed-size uint8 array.

The real dataset has JPEGs named ``.png``, RGBA/RGB/L modes and sizes from 168 to 1200 px: every
image goes through the same path (``prepare_pil``): open by content, convert the mode, crop to the
body when asked (``data.crop``), resize (stretching, as the seed does), and return
``(size, size, channels)`` uint8. Training, evaluation, ``data prepare``, ``predict`` and the
phantoms all use it, so a model sees at deployment exactly what it saw in training.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from ctdistill.core.errors import DataError
from ctdistill.data.crop import CROPS, Crop

# Largest image accepted, in pixels (a 64-megapixel image is ~5x the largest CT film scan; the
# dataset's largest is 1200 x 1200). Checked from the header before any pixel is decoded, so a
# small file that declares a huge image (a decompression bomb) costs no memory.
MAX_PIXELS = 64_000_000
# Bump when decoding or the cached layout changes, so cached arrays are not reused (3: DICOM slices in trees).
DECODER_VERSION = 3


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode (RGBA, P, CMYK, L, I;16, I, F) to ``L`` or ``RGB``."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0  # full 16-bit range onto 8 bits, keeping relative intensities
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
    if img.mode not in ("L", "RGB"):
        # Palette, alpha and CMYK modes go through RGB(A) first: PIL converts those to anything.
        img = img.convert("RGBA" if ("A" in img.mode or img.mode == "P") else "RGB")
    return img.convert("RGB" if channels == 3 else "L")


def decode_image(data: bytes, size: int, channels: int, name: str = "<bytes>", crop: str = "none") -> np.ndarray:
    """Decode encoded image bytes into a ``(size, size, channels)`` uint8 array.

    Args:
        data: the file's bytes (PNG, JPEG, BMP, TIFF, ... detected by content).
        size: output height and width in pixels.
        channels: 1 (grey) or 3 (RGB, grey replicated).
        name: the file name used in error messages.
        crop: a key of ``data.crop.CROPS`` (``body`` crops to the body before resizing).

    Returns:
        ``np.ndarray`` of dtype uint8.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> png = io.BytesIO()
        >>> Image.new("L", (64, 48), 128).save(png, "PNG")   # a grey 64x48 slice
        >>> decode_image(png.getvalue(), 32, 3).shape
        (32, 32, 3)
    """
    return decode_image_crop(data, size, channels, name, crop)[0]


def decode_image_crop(data: bytes, size: int, channels: int, name: str = "<bytes>", crop: str = "none"
                      ) -> tuple[np.ndarray, Crop | None]:
    """:func:`decode_image`, also returning where it cropped (None with ``crop="none"``)."""
    if not data:
        raise DataError(f"{name}: empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            check_pixels(img, name)
            img.load()
            return prepare_pil(img, size, channels, crop)
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (unknown or unsupported format)") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: image too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: corrupt or truncated image ({exc})") from None


def check_pixels(img: Image.Image, name: str) -> None:
    """Refuse an image larger than ``MAX_PIXELS`` before decoding it (decompression-bomb guard)."""
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise DataError(f"{name}: image too large to decode safely ({width} x {height} pixels, more than "
                        f"the limit of {MAX_PIXELS:,}; a decompression bomb?)")


def resize_array(x: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resize a batch of uint8 images (N, H, W, C) to ``(N, size, size, channels)``."""
    if x.shape[1:3] == (size, size) and x.shape[3] == channels:
        return x
    out = np.empty((x.shape[0], size, size, channels), dtype=np.uint8)
    for i, img in enumerate(x):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        out[i] = decode_pil(pil, size, channels)
    return out


def decode_pil(img: Image.Image, size: int, channels: int, crop: str = "none") -> np.ndarray:
    """Mode conversion, crop and resize of an opened image (:func:`prepare_pil` without the crop box)."""
    return prepare_pil(img, size, channels, crop)[0]


def prepare_pil(img: Image.Image, size: int, channels: int, crop: str = "none", box: Crop | None = None
                ) -> tuple[np.ndarray, Crop | None]:
    """The one path every decoder shares: mode conversion, crop, resize.

    Args:
        img: an opened image.
        size, channels: the output ``(size, size, channels)``.
        crop: a key of ``data.crop.CROPS``; ``body`` finds the body on the grey image.
        box: a crop found elsewhere (DICOM: on Hounsfield units), used instead of searching.

    Returns:
        ``(uint8 array, the crop applied or None)``.
    """
    img = to_mode(img, channels)
    found = box
    if found is None and CROPS[crop] is not None:
        found = CROPS[crop](np.asarray(img.convert("L")))
    if found is not None:
        top, left, bottom, right = found.box
        img = img.crop((left, top, right, bottom))
    arr = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return (arr[..., None] if arr.ndim == 2 else arr), found
