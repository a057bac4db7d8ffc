"""Image input and output: every Pillow mode, EXIF orientation, hostile files, array/tensor checks."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from adain import images, io
from adain.errors import ImageReadError, InputError

PILLOW_DEFAULT_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)


def _rgb_at(img: Image.Image, xy=(0, 0)) -> tuple[int, int, int]:
    assert img.mode == "RGB"
    return img.getpixel(xy)


# ---- EXIF and modes ------------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (3, 2), (0, 0, 255))
    img.putpixel((0, 0), (255, 0, 0))  # top-left red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.png"
    img.save(path, exif=exif)
    out = io.read_image(path)
    assert out.size == (2, 3)
    assert _rgb_at(out, (1, 0)) == (255, 0, 0)  # the top-left corner moved to the top-right
    assert images.image_size(path) == (3, 2)  # header-only size agrees: H=3, W=2


def _palette_with_transparency() -> Image.Image:
    img = Image.new("P", (2, 1))
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.info["transparency"] = 0
    return img


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: Image.new("L", (1, 1), 100), [(100, 100, 100)]),
        (lambda: Image.new("LA", (1, 1), (100, 0)), [(255, 255, 255)]),  # fully transparent -> white
        (lambda: Image.new("LA", (1, 1), (100, 255)), [(100, 100, 100)]),
        (lambda: Image.new("RGBA", (1, 1), (255, 0, 0, 0)), [(255, 255, 255)]),  # alpha not dropped
        (lambda: Image.new("RGBA", (1, 1), (0, 0, 0, 128)), [(127, 127, 127)]),  # composited
        (lambda: Image.new("CMYK", (1, 1), (0, 255, 255, 0)), [(255, 0, 0)]),
        (lambda: Image.new("1", (1, 1), 1), [(255, 255, 255)]),
        (lambda: Image.new("I;16", (1, 1), 65535), [(255, 255, 255)]),  # scaled, not clipped
        (lambda: Image.new("I;16", (1, 1), 32896), [(128, 128, 128)]),
        (_palette_with_transparency, [(255, 255, 255), (200, 100, 50)]),
    ],
    ids=["L", "LA-clear", "LA-opaque", "RGBA-clear", "RGBA-half", "CMYK", "1", "I16-max", "I16-mid", "P-transp"],
)
def test_every_mode_gives_correct_rgb(make, expected):
    out = io.to_rgb(make())
    got = [_rgb_at(out, (x, 0)) for x in range(len(expected))]
    for g, e in zip(got, expected):
        assert max(abs(a - b) for a, b in zip(g, e)) <= 1, (got, expected)


@pytest.mark.parametrize("mode, value, ext", [("I;16", 65535, "png"), ("LA", (0, 0), "png"), ("CMYK", (0, 0, 0, 255), "tif")])
def test_modes_survive_a_file_round_trip(tmp_path, mode, value, ext):
    path = tmp_path / f"img.{ext}"
    Image.new(mode, (4, 3), value).save(path)
    out = io.read_image(path)
    assert out.mode == "RGB" and out.size == (4, 3)
    assert _rgb_at(out) in {(255, 255, 255), (0, 0, 0)}


# ---- hostile files -------------------------------------------------------------------------------


def _png_bytes(width: int, height: int) -> bytes:
    """A valid-looking grayscale PNG header claiming ``width x height``, with one compressed row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1))) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(30_000, 30_000))  # 900 megapixels in a file of a few hundred bytes
    assert path.stat().st_size < 1000
    with pytest.raises(ImageReadError, match="bomb.png.*bomb"):
        io.read_image(path)
    with pytest.raises(ImageReadError, match="bomb.png"):
        images.image_size(path)


def test_pixel_limit_is_a_per_call_parameter(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(ImageReadError, match="big.png.*10000 pixels is over the limit of 5000"):
        io.read_image(path, max_pixels=5000)
    assert io.read_image(path).size == (100, 100)


def test_truncated_file_raises_naming_it(tmp_path):
    path = tmp_path / "cut.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        io.read_image(path)


def test_truncated_jpeg_raises_naming_it(tmp_path):
    path = tmp_path / "cut.jpg"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        io.read_image(path)


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"hello, not a picture\n" * 10, "not an image")])
def test_empty_and_non_image_files_raise_naming_them(tmp_path, content, match):
    path = tmp_path / "thing.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=f"thing.png.*{match}"):
        io.read_image(path)


def test_missing_file_and_directory_raise_image_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="nope.png: no such file"):
        images.to_tensor(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="not a file"):
        io.read_image(tmp_path)


def test_image_read_error_is_a_value_error():
    assert issubclass(ImageReadError, ValueError)


def test_pillow_global_settings_are_untouched_by_import_and_reading(tmp_path):
    import adain  # noqa: F401 - importing must change nothing

    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(30_000, 30_000))
    with pytest.raises(ImageReadError):
        io.read_image(path)
    cut = tmp_path / "cut.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(cut)
    cut.write_bytes(cut.read_bytes()[:60])
    with pytest.raises(ImageReadError):
        io.read_image(cut)
    assert Image.MAX_IMAGE_PIXELS == PILLOW_DEFAULT_MAX_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---- arrays and tensors --------------------------------------------------------------------------


def test_uint8_and_float_arrays_agree():
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    torch.testing.assert_close(images.to_tensor(arr), images.to_tensor(arr.astype(np.float32) / 255))
    assert images.to_tensor(arr[:, ::-1]).shape == (3, 5, 6)  # negative strides are fine


def test_rgba_array_alpha_is_composited_onto_white():
    arr = np.zeros((2, 2, 4), dtype=np.float32)  # black, fully transparent
    assert torch.equal(images.to_tensor(arr), torch.ones(3, 2, 2))


@pytest.mark.parametrize(
    "source, match",
    [
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), np.float32), "shape"),
        (np.zeros((4, 4, 3), np.int64), "dtype"),
        (np.zeros((4, 4, 3), bool), "dtype"),
        (np.zeros((4, 4, 3), np.complex64), "dtype"),
        (np.full((4, 4, 3), 255.0, np.float32), r"\[0, 1\]"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
        (np.zeros((0, 4, 3), np.uint8), "no pixels"),
        (torch.zeros(2, 3, 4, 4), "batch size 1"),
        (torch.zeros(2, 4, 4), "C in 1, 3, 4"),
        (torch.zeros(3, 4, 4, dtype=torch.int64), "dtype"),
        (torch.full((3, 4, 4), float("inf")), "NaN or infinite"),
        (torch.full((3, 4, 4), -0.5), r"\[0, 1\]"),
        (torch.zeros(3, 0, 4), "no pixels"),
        ([[0.0]], "expected a path"),
    ],
    ids=lambda v: None if not isinstance(v, str) else v[:12],
)
def test_bad_arrays_and_tensors_raise_input_error_with_a_message(source, match):
    with pytest.raises(InputError, match=match):
        images.to_tensor(source, what="content")


def test_batches_are_checked_like_single_images():
    assert images.to_batch(torch.rand(2, 1, 5, 5)).shape == (2, 3, 5, 5)
    assert images.to_batch(torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)).max() == 1
    with pytest.raises(InputError, match="NaN"):
        images.to_batch(torch.full((2, 3, 4, 4), float("nan")))
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        images.to_batch(torch.rand(3, 4, 4))


def test_mask_is_binarised_at_one_half():
    mask = images.to_mask(np.array([[0.2, 0.49], [0.5, 0.9]], dtype=np.float32))
    assert mask.tolist() == [[False, False], [True, True]]


def test_tensor_resize_matches_size_semantics():
    t = images.to_tensor(torch.rand(3, 40, 60), size=20, crop=True)
    assert t.shape == (3, 20, 20)
    assert images.to_batch(torch.rand(2, 3, 40, 60), size=20).shape == (2, 3, 20, 30)


# ---- writing and listing ---------------------------------------------------------------------------


def test_save_image_rejects_unknown_extension(tmp_path):
    with pytest.raises(InputError, match=r"\.xyz"):
        io.save_image(Image.new("RGB", (2, 2)), tmp_path / "out.xyz")


def test_list_images_is_recursive_and_case_insensitive(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.PNG", "sub/b.JpEg", "c.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in io.list_images(tmp_path)] == ["a.PNG", "sub/b.JpEg"]
