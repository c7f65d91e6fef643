"""load_image_rgb on every odd or broken kind of image a user may hand in."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fakescope.data.images import iter_images, load_image_rgb
from fakescope.errors import InputError


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def _check(arr: np.ndarray, h: int, w: int) -> None:
    assert arr.dtype == np.uint8 and arr.shape == (h, w, 3) and arr.flags["C_CONTIGUOUS"]


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = _save(img, tmp_path / "rot.jpg", exif=exif, quality=95)
    arr = load_image_rgb(p)
    _check(arr, 40, 20)
    # After a 90-degree clockwise turn the former left half is on top.
    assert arr[5, 10, 0] > 200 and arr[35, 10, 2] > 200


def test_grayscale_and_bilevel(tmp_path):
    arr = load_image_rgb(_save(Image.new("L", (8, 6), 77), tmp_path / "g.png"))
    _check(arr, 6, 8)
    assert (arr == 77).all()
    bw = load_image_rgb(_save(Image.new("1", (5, 5), 1), tmp_path / "b.png"))
    assert (bw == 255).all()


@pytest.mark.parametrize("background, value", [("black", 0), ("white", 255)])
def test_rgba_is_composited_on_the_chosen_background(tmp_path, background, value):
    img = Image.new("RGBA", (4, 4), (200, 100, 50, 0))
    img.putpixel((0, 0), (200, 100, 50, 255))
    img.putpixel((1, 0), (200, 100, 50, 128))
    arr = load_image_rgb(_save(img, tmp_path / "a.png"), background=background)
    assert tuple(arr[0, 0]) == (200, 100, 50)
    assert tuple(arr[3, 3]) == (value, value, value)
    half = np.array([200, 100, 50]) * 128 / 255 + value * 127 / 255
    assert np.abs(arr[0, 1].astype(float) - half).max() <= 1.5
    la = load_image_rgb(_save(Image.new("LA", (3, 3), (90, 0)), tmp_path / "la.png"), background=background)
    assert (la == value).all()


def test_palette_with_and_without_transparency(tmp_path):
    img = Image.new("P", (6, 6), 1)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    arr = load_image_rgb(_save(img, tmp_path / "p.png"))
    assert tuple(arr[2, 2]) == (10, 200, 30)
    gif = Image.new("P", (6, 6), 0)
    gif.putpalette([255, 0, 255, 10, 200, 30] + [0] * 762)
    gif.putpixel((1, 1), 1)
    p = _save(gif, tmp_path / "t.gif", transparency=0)
    arr = load_image_rgb(p, background="white")
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[1, 1]) == (10, 200, 30)


def test_16_bit_is_scaled_not_clipped(tmp_path):
    data = np.array([[0, 257 * 100, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "d.png"
    Image.fromarray(data).save(p)
    arr = load_image_rgb(p)
    _check(arr, 1, 4)
    assert arr[0, :, 0].tolist() == [0, 100, 128, 255]


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16_bit_colour_files(tmp_path, ext):
    cv2 = pytest.importorskip("cv2")
    bgr = np.zeros((3, 5, 3), np.uint16)
    bgr[..., 2], bgr[..., 1] = 65535, 257 * 100
    p = tmp_path / f"c16.{ext}"
    assert cv2.imwrite(str(p), bgr)
    arr = load_image_rgb(p)
    _check(arr, 3, 5)
    assert tuple(arr[1, 1]) == (255, 100, 0)


def test_cmyk_jpeg(tmp_path):
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    arr = load_image_rgb(_save(img, tmp_path / "c.jpg", quality=95))
    _check(arr, 8, 8)
    r, g, b = arr[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_bytes_pil_and_multiframe_inputs(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (5, 7), (1, 2, 3)).save(buf, format="PNG")
    assert tuple(load_image_rgb(buf.getvalue())[0, 0]) == (1, 2, 3)
    assert load_image_rgb(Image.new("RGB", (5, 7))).shape == (7, 5, 3)
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    assert load_image_rgb(p)[0, 0, 0] > 200


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((2, 3), 9, np.uint8), 9),
        (np.full((2, 3, 1), 9, np.uint8), 9),
        (np.full((2, 3), 65535, np.uint16), 255),
        (np.full((2, 3, 3), 0.5, np.float32), 128),
        (np.full((2, 3, 3), 200.0, np.float64), 200),
        (np.ones((2, 3), bool), 255),
        (np.dstack([np.full((2, 3, 3), 100, np.uint8), np.zeros((2, 3, 1), np.uint8)]), 0),
    ],
)
def test_numpy_inputs(array, expected):
    arr = load_image_rgb(array)
    _check(arr, 2, 3)
    assert (arr == expected).all()


def test_bad_arrays():
    with pytest.raises(InputError, match="shape"):
        load_image_rgb(np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(InputError, match="outside 0..255"):
        load_image_rgb(np.full((2, 2), 1000, np.int32))


def test_corrupt_truncated_missing_and_bomb_files_name_the_file(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image at all")
    with pytest.raises(InputError, match="junk.jpg: not a recognised image"):
        load_image_rgb(junk)
    full = tmp_path / "full.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.jpg: cannot decode"):
        load_image_rgb(cut)
    with pytest.raises(InputError, match="nowhere.png: file not found"):
        load_image_rgb(tmp_path / "nowhere.png")
    big = _save(Image.new("L", (300, 300)), tmp_path / "big.png")
    with pytest.raises(InputError, match="big.png: 300x300 image exceeds the 10000 pixel limit"):
        load_image_rgb(big, max_pixels=10_000)
    with pytest.raises(InputError, match="<bytes>"):
        load_image_rgb(b"\x89PNG\r\n\x1a\n garbage")


def test_pil_bomb_error_is_reported(tmp_path, monkeypatch):
    # PIL's own guard (2x MAX_IMAGE_PIXELS) fires before ours when our limit is set higher.
    p = _save(Image.new("L", (100, 100)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InputError, match="bomb.png: refused as a decompression bomb"):
        load_image_rgb(p, max_pixels=10**9)


def test_iter_images_reports_bad_files_and_goes_on(tmp_path):
    good = [_save(Image.new("RGB", (4, 4)), tmp_path / f"g{i}.png") for i in range(3)]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    out = list(iter_images([good[0], bad, good[1], tmp_path / "gone.png", good[2]]))
    assert [type(x).__name__ for _, x in out] == ["ndarray", "InputError", "ndarray", "InputError", "ndarray"]
    assert "bad.png" in str(out[1][1]) and out[1][0] == str(bad)
