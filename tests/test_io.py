"""Image input and output: every Pillow mode, EXIF orientation, hostile files, array/tensor checks."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageFile

from adain import _images as images
from adain import _io as io
from adain._atomic import NAME_MAX, temporary_name
from adain.errors import ImageReadError, InputError, OutputExistsError

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


@pytest.mark.parametrize(
    "mode, value, ext", [("I;16", 65535, "png"), ("LA", (0, 0), "png"), ("CMYK", (0, 0, 0, 255), "tif")]
)
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
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1)))
        + chunk(b"IEND", b"")
    )


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
    with pytest.raises(ImageReadError, match=r"not a regular file \(a folder\)"):
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


def test_a_symlink_loop_and_a_second_name_of_a_folder_are_walked_once(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "sub" / "b.png").write_bytes(b"x")
    (tmp_path / "loop").symlink_to(".")  # os.walk(followlinks=True) goes round until the path is too long
    (tmp_path / "sub" / "up").symlink_to("..")
    (tmp_path / "alias").symlink_to("sub")  # a second name of sub: its images once, under the plain name
    assert [p.relative_to(tmp_path).as_posix() for p in io.list_images(tmp_path)] == ["a.png", "sub/b.png"]


def test_a_linked_folder_outside_is_walked(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "e.jpg").write_bytes(b"x")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    assert [p.relative_to(tmp_path).as_posix() for p in io.list_images(tmp_path / "root")] == ["root/link/e.jpg"]


def test_hidden_folders_are_not_entered_and_excluded_folders_are_left_out(tmp_path):
    for name in (".git/x.png", ".cache/sub/y.jpg", "out/old.png", "keep/z.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = io.list_images(tmp_path, exclude=[tmp_path / "out", tmp_path / "missing"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["keep/z.png"]
    # The root itself is walked even when listed in exclude (the caller decides about the root).
    assert [p.name for p in io.list_images(tmp_path / "out", exclude=[tmp_path / "out"])] == ["old.png"]


def test_unreadable_folders_and_files_are_reported_not_skipped_silently(tmp_path, monkeypatch, caplog):
    for name in ("a.png", "locked/b.png", "secret.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "ghost.png").symlink_to(tmp_path / "missing.png")
    (tmp_path / "notes.txt").symlink_to(tmp_path / "missing.txt")  # not an image: not worth a word
    real_scandir, real_access = os.scandir, os.access

    def scandir(path="."):  # the test runs as root, for whom chmod 000 changes nothing
        if os.fspath(path) == str(tmp_path / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "access", lambda p, mode: not os.fspath(p).endswith("secret.png") and real_access(p, mode))
    reported = []
    found = io.list_images(tmp_path, on_error=lambda path, reason: reported.append((path.name, reason)))
    assert [p.name for p in found] == ["a.png"]
    assert sorted(reported) == [
        ("ghost.png", "broken symbolic link"),
        ("locked", "cannot list the folder: Permission denied"),
        ("secret.png", "permission denied"),
    ]
    # Without on_error (the trainer's call), each is a logged warning.
    with caplog.at_level("WARNING", logger="adain._io"):
        assert [p.name for p in io.list_images(tmp_path)] == ["a.png"]
    assert len(caplog.records) == 3 and "locked" in caplog.text


def _with_metadata(path, orientation=6):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Maker"
    exif.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.new("RGB", (6, 4), (10, 200, 30)).save(path, exif=exif.tobytes(), icc_profile=profile)
    return profile


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_metadata_round_trip_resets_the_orientation(tmp_path, ext):
    source = tmp_path / f"source{ext}"
    profile = _with_metadata(source)
    metadata = io.read_metadata(source)
    assert metadata["icc_profile"] == profile
    out = io.save_image(io.read_image(source), tmp_path / f"out{ext}", **metadata)
    with Image.open(out) as img:
        exif = img.getexif()
        assert img.info["icc_profile"] == profile
        assert exif[0x0112] == 1 and exif[0x010F] == "Maker"
        assert exif.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
        assert img.size == (4, 6)  # turned once by read_image, not again by a viewer


def test_a_profile_that_is_not_rgb_is_not_put_on_rgb_pixels_and_files_without_metadata_give_none(tmp_path):
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.new("L", (4, 4)).save(tmp_path / "g.png", icc_profile=lab)
    assert io.read_metadata(tmp_path / "g.png") == {}
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.bmp")
    assert io.read_metadata(tmp_path / "plain.bmp") == {}
    with pytest.raises(ImageReadError, match="nothing.png"):
        io.read_metadata(tmp_path / "nothing.png")


def test_exif_too_large_for_a_jpeg_does_not_cost_the_picture(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription: more than one JPEG marker holds
    image = Image.new("RGB", (4, 4))
    with Image.open(io.save_image(image, tmp_path / "o.jpg", exif=exif.tobytes())) as out:
        assert out.size == (4, 4) and "exif" not in out.info
    with Image.open(io.save_image(image, tmp_path / "o.png", exif=exif.tobytes())) as out:
        assert len(out.getexif()[0x010E]) == 70_000


def test_quality_is_passed_to_jpeg_and_checked(tmp_path):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    low, high = io.save_image(image, tmp_path / "low.jpg", quality=10), io.save_image(image, tmp_path / "high.jpg")
    assert low.stat().st_size < high.stat().st_size / 2
    with pytest.raises(InputError, match="quality"):
        io.save_image(image, tmp_path / "bad.jpg", quality=101)


def test_save_image_without_overwrite_never_replaces(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        io.save_image(Image.new("RGB", (2, 2)), target, overwrite=False)
    # A file that appears while the image is encoded is not replaced either (checked at the rename).
    monkeypatch.setattr(os.path, "lexists", lambda p: False)
    with pytest.raises(OutputExistsError):
        io.save_image(Image.new("RGB", (2, 2)), target, overwrite=False)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    io.save_image(Image.new("RGB", (2, 2)), target)
    assert Image.open(target).size == (2, 2)


def test_a_name_that_fits_is_written_even_when_the_temporary_name_would_not(tmp_path):
    name = "n" * (NAME_MAX - 4) + ".png"
    assert len(temporary_name(tmp_path / name).name.encode()) <= NAME_MAX
    io.save_image(Image.new("RGB", (2, 2)), tmp_path / name)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_an_unwritable_folder_is_an_input_error_naming_it(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(InputError, match="cannot create the folder"):
        io.save_image(Image.new("RGB", (2, 2)), tmp_path / "file" / "sub" / "o.png")
