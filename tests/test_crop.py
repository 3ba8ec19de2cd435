"""Crop to the body (data.crop): drawn slices with a table, blank and tiny bodies, every image mode,
DICOM on Hounsfield units, the same pixels in training and predict, and a cache that follows the crop."""

import numpy as np
import pytest
from conftest import ct_dicom, make_tree, save_image
from PIL import Image

from ctdistill.data import load_dataset
from ctdistill.data import tree as tree_module
from ctdistill.data.crop import body_crop
from ctdistill.data.decode import decode_image_crop
from ctdistill.data.dicom import decode_dicom
from ctdistill.data.inputs import read_input
from ctdistill.data.synthetic import load_synthetic

BODY = (40, 60, 200, 300)  # top, left, bottom, right of the drawn body
TABLE_ROW = 225  # the scanner table: a thin bright arc below the body, separated by air


def slice_with_table(height=300, width=360, body=BODY, table=True) -> np.ndarray:
    """A grey (H, W) slice: black air, a bright elliptical body with two dark lungs, and a table."""
    yy, xx = np.mgrid[0:height, 0:width]
    top, left, bottom, right = body
    cy, cx, ry, rx = (top + bottom - 1) / 2, (left + right - 1) / 2, (bottom - top) / 2, (right - left) / 2
    img = np.zeros((height, width), np.float32)
    img[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 180
    for side in (-1, 1):
        img[((yy - cy) / (0.6 * ry)) ** 2 + ((xx - cx - side * 0.45 * rx) / (0.3 * rx)) ** 2 <= 1] = 30
    if table:
        arc = TABLE_ROW + ((xx - width / 2) / (width / 2)) ** 2 * 12
        img[(np.abs(yy - arc) < 2) & (xx > 20) & (xx < width - 20)] = 200
    noise = np.random.default_rng(0).normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def test_the_crop_keeps_the_body_and_drops_the_table():
    crop = body_crop(slice_with_table())
    top, left, bottom, right = crop.box
    assert crop.fallback == ""
    assert top <= BODY[0] and left <= BODY[1] and bottom >= BODY[2] and right >= BODY[3]  # the whole body
    assert bottom < TABLE_ROW - 2  # not the table
    assert 0.3 < crop.share < 0.6


@pytest.mark.parametrize("image,why", [
    (np.zeros((120, 160), np.uint8), "blank"),
    (np.full((120, 160), 77, np.uint8), "blank"),
    (np.pad(np.full((20, 20), 220, np.uint8), ((50, 50), (70, 70))), "small"),  # 2% of the image
])
def test_no_body_keeps_the_whole_image_and_says_why(image, why):
    crop = body_crop(image)
    assert (crop.fallback, crop.share, crop.box) == (why, 1.0, (0, 0, *image.shape))


def test_a_body_that_fills_the_frame_is_not_cut():
    """Bright tissue up to the edges (a body larger than the field of view): keep everything."""
    image = np.full((100, 100), 180, np.uint8)
    image[30:70, 20:45] = 20  # a lung
    crop = body_crop(image)
    assert crop.share == 1.0


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16"])
def test_every_image_mode_crops_to_the_same_box(tmp_path, mode):
    grey = slice_with_table()
    if mode == "I;16":
        img = Image.fromarray(grey.astype(np.uint16) * 257)
        assert img.mode == "I;16"
    else:
        img = Image.fromarray(grey).convert(mode)
    path = tmp_path / f"slice_{mode.replace(';', '')}.png"
    img.save(path)
    array, crop = decode_image_crop(path.read_bytes(), 32, 3, str(path), crop="body")
    assert crop.box == body_crop(grey).box and array.shape == (32, 32, 3)


def test_dicom_finds_the_body_on_hounsfield_units(tmp_path):
    grey = slice_with_table()
    hu = np.where(grey > 100, 40, -1000).astype(np.int32)  # tissue 40 HU, air -1000 HU
    raw = (hu + 1024).astype(np.uint16)
    path = ct_dicom(tmp_path / "slice.dcm", raw)
    (cropped,) = decode_dicom(path.read_bytes(), 64, 1, crop="body")
    (whole,) = decode_dicom(path.read_bytes(), 64, 1, crop="none")
    # the body fills the cropped image: its border rows hold body, not air, unlike the whole image's
    assert cropped[32, 2:62].mean() > whole[32, 2:62].mean()
    assert cropped[60:64].mean() < 150 and not (cropped == whole).all()


def test_training_and_predict_see_the_same_pixels(tmp_path):
    root = make_tree(tmp_path / "tree", per_class=2)
    framed = save_image(root / "test" / "normal" / "framed.png", slice_with_table(), "PNG")
    data = load_dataset(root, 24, 3, crop="body")
    trained = data.test.x[data.test.paths.index(str(framed))]
    (predicted,), (fallback,) = read_input(framed, 24, 3, (-600.0, 1500.0), crop="body")
    np.testing.assert_array_equal(trained, predicted)
    assert fallback == ""  # the body was found, as in training
    assert data.crop["crop"] == "body"
    # make_tree's noise squares have no body: those kept whole are listed by path with the reason
    listed = {path: why for why, paths in data.crop["fallbacks"].items() for path in paths}
    squares = {str(p) for p in root.rglob("img*.png")}
    assert len(listed) >= 6 and set(listed) <= squares and set(listed.values()) <= {"blank", "small"}


def test_the_decode_cache_follows_the_crop_setting(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "tree", per_class=2)
    save_image(root / "train" / "normal" / "framed.png", slice_with_table(), "PNG")
    whole = load_dataset(root, 16, 1, crop="none")
    cropped = load_dataset(root, 16, 1, crop="body")
    assert not np.array_equal(whole.train.x, cropped.train.x)  # not served from the crop-less entry

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the same crop is cached")

    monkeypatch.setattr(tree_module, "decode_slice", no_decoding)
    np.testing.assert_array_equal(load_dataset(root, 16, 1, crop="body").train.x, cropped.train.x)


def test_phantoms_can_be_cropped_and_are_unchanged_without():
    plain = load_synthetic(32, 1, (2, 1, 1), 0)
    assert plain.crop == {"crop": "none"}
    cropped = load_synthetic(32, 1, (2, 1, 1), 0, crop="body")
    assert cropped.train.x.shape == plain.train.x.shape and not np.array_equal(cropped.train.x, plain.train.x)
    assert cropped.fingerprint != plain.fingerprint


def speckled_slice(sd: float, size: int = 512) -> np.ndarray:
    """A slice saved in a wide window with heavy speckle: body 95, lungs 25, air 10, noise ``sd`` on the
    body; Otsu alone keeps a body of isolated pixels that the opening erodes away."""
    base = slice_with_table(size, size, body=(70, 90, 360, 420)).astype(np.float32)
    img = np.where(base > 150, 95.0, np.where(base > 20, 25.0, 10.0))
    img[base >= 195] = 115.0  # the table
    rng = np.random.default_rng(1)
    img += rng.normal(0, sd, img.shape) * (img > 11) + rng.normal(0, sd / 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sd", [25, 45, 80])
def test_a_speckled_body_in_a_wide_window_is_found(sd):
    crop = body_crop(speckled_slice(sd))
    top, left, bottom, right = crop.box
    assert crop.fallback == ""  # crop v1 (no smoothing) kept the whole image: "small"
    assert top <= 70 and left <= 90 and bottom >= 360 and right >= 420 and crop.share < 0.6


def test_a_thin_body_wall_broken_by_the_opening_still_frames_the_whole_body():
    """Dark fat under a 2 px skin line, a mediastinum from sternum to spine: the opening erases the
    skin, and the plain mask crops to the mediastinum (crop v1); filling the body keeps it whole."""
    yy, xx = np.mgrid[0:256, 0:256]
    img = np.zeros((256, 256), np.float32)
    outer = ((yy - 128) / 90.0) ** 2 + ((xx - 128) / 115.0) ** 2
    img[outer <= 1] = 80  # fat, below Otsu's threshold
    img[(outer <= 1) & (outer > 0.955)] = 200  # the skin line, about 2 px
    for side in (-1, 1):
        img[((yy - 128) / 60.0) ** 2 + ((xx - 128 - side * 55) / 35.0) ** 2 <= 1] = 10  # lungs
    img[(np.abs(xx - 128) < 40) & (yy > 45) & (yy < 212)] = 200  # sternum, heart, spine
    crop = body_crop(img.astype(np.uint8))
    assert crop.fallback == "" and crop.box[1] <= 13 and crop.box[3] >= 243  # the body's full width


def test_a_curved_table_that_filling_would_join_to_the_body_stays_out():
    """A cradle (an arc from the body's sides down under it) closes a pocket of air that filling the
    holes turns into body; the filled box would reach the cradle's bottom, so the plain one is kept."""
    yy, xx = np.mgrid[0:300, 0:360]
    img = np.zeros((300, 360), np.float32)
    img[((yy - 120) / 80.0) ** 2 + ((xx - 180) / 120.0) ** 2 <= 1] = 180  # body, rows 40-200
    for side in (-1, 1):
        img[((yy - 120) / 48.0) ** 2 + ((xx - 180 - side * 54) / 36.0) ** 2 <= 1] = 30
    arc = ((yy - 150) / 110.0) ** 2 + ((xx - 180) / 125.0) ** 2
    img[(np.abs(arc - 1) < 0.03) & (yy > 120)] = 200  # the cradle, down to row 260
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    crop = body_crop(noisy)
    assert crop.fallback == "" and crop.box[0] <= 40 and 200 <= crop.box[2] < 220


def test_a_body_of_sparse_speckle_in_a_bone_window_is_found_on_the_second_try():
    """A bone window (IQ-OTH/NCCD): soft tissue is 12% white specks on black, bones and the table
    solid; Otsu keeps the bones, the body is "small" (crops v1 and v2); the second try finds it without the table."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:512, 0:512]
    body = ((yy - 220) / 140.0) ** 2 + ((xx - 256) / 200.0) ** 2 <= 1
    lungs = (((yy - 215) / 95.0) ** 2 + ((np.abs(xx - 256) - 95) / 70.0) ** 2) <= 1
    img = np.where(body & ~lungs & (rng.random((512, 512)) < 0.12), 230, 0).astype(np.float32)
    img[(np.abs(xx - 256) < 18) & (yy > 300) & (yy < 345)] = 250  # spine
    img[(np.abs(yy - 405 - ((xx - 256) / 256.0) ** 2 * 30) < 2) & (np.abs(xx - 256) < 220)] = 250  # a thin table
    crop = body_crop(img.astype(np.uint8))
    top, left, bottom, right = crop.box
    assert crop.fallback == "" and top <= 80 and left <= 56 and right >= 456 and 360 <= bottom < 405
