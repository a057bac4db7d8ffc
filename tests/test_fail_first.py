"""Failing before the work (issue 21): sizes after resizing, tile sizes, writability, special files, metadata.

Library-level checks; what the command line makes of them (flags, exit statuses) is ``test_cli_status``.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from PIL import Image

import adain
from adain import _io as io
from adain._atomic import check_writable
from adain.errors import ImageReadError, InputError, OutputNotWritableError
from adain.inference import _checks as checks

GPS = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # a position: Paris


def _png(path: Path, w: int, h: int) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


# ---- sizes after resizing ------------------------------------------------------------------------

_THIN_STRIP = """
import resource, sys, time
import adain
model = adain.AdaINModel()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    adain.stylize(sys.argv[1], sys.argv[2], model=model, device="cpu")
except adain.InputError as exc:
    print(str(exc))
print(time.perf_counter() - start)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_a_thin_strip_at_the_default_content_size_is_refused_at_once_in_little_memory(tmp_path):
    # 3000x2 at content_size=512 would be 768000x512 (393 MP, gigabytes of float32). A fresh process measures
    # the call's own peak memory (ru_maxrss, KiB on Linux) and time.
    strip, style = _png(tmp_path / "strip.png", 3000, 2), _png(tmp_path / "style.png", 32, 32)
    code = [sys.executable, "-c", _THIN_STRIP, str(strip), str(style)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(code, capture_output=True, text=True, timeout=120, env=env)
    message, seconds, grown = proc.stdout.strip().splitlines()
    assert message.startswith("content: a 3000x2 image") and "768000x512" in message and "content_size" in message
    assert float(seconds) < 1.0 and int(grown) < 500 * 10**6, (seconds, grown)


def test_a_content_size_beyond_max_pixels_is_refused_naming_both(model, tmp_path):
    content = tmp_path / "c.png"
    Image.new("RGB", (2000, 1500)).save(content)  # 10x up to 26666x20000: 533 MP, over the 179 MP default
    with pytest.raises(InputError, match=r"content: a 2000x1500 image resized to 26666x20000 .* max_pixels") as info:
        adain.stylize(content, content, model=model, content_size=20000, style_size=None)
    assert "content_size of at most 11585" in str(info.value)  # sqrt(178956970 * 3 / 4)
    with pytest.raises(InputError, match=r"style: a 2000x1500 image .*style_size"):
        adain.Stylizer(model, "cpu").set_style(content, style_size=20000)


def test_resizing_limits_are_about_large_results_not_small_pictures():
    icon = checks.CheckedImage(None, "content", (8, 8))
    assert checks.check_resized(icon, 512, io.DEFAULT_MAX_PIXELS, "content_size") == (512, 512)  # 64x, small
    assert checks.check_resized(icon, None, 10, "content_size") == (8, 8)  # nothing resized: nothing to check
    strip = checks.CheckedImage(None, "content", (2, 100))  # 256x up, to 25600x512: refused
    with pytest.raises(InputError, match=f"at most {checks.MAX_UPSCALE} times .* of at most 32"):
        checks.check_resized(strip, 512, io.DEFAULT_MAX_PIXELS, "content_size")


@pytest.mark.parametrize("tile_size", [1, 8, checks.MIN_TILE_SIZE - 1])
def test_tiles_smaller_than_their_context_are_refused_with_the_smallest_useful_size(model, tile_size):
    with pytest.raises(InputError, match=rf"tile_size: must be an integer >= {checks.MIN_TILE_SIZE}"):
        adain.stylize(torch.rand(3, 16, 16), torch.rand(3, 16, 16), model=model, tile_size=tile_size)


def test_a_style_that_cannot_fit_never_suggests_a_size_of_zero(model):
    stylizer = adain.Stylizer(model, device="cpu", max_memory=10**4)
    with pytest.raises(InputError) as info:
        stylizer.set_style(torch.rand(3, 300, 300), style_size=None)
    assert "at most about 0" not in str(info.value) and "max_memory" in str(info.value)


# ---- writability ---------------------------------------------------------------------------------


def refuse_writes_in(monkeypatch, folder: Path) -> None:
    """Make ``folder`` read-only: chmod, and (the tests may run as root, whom chmod does not stop) an
    ``os.open`` that refuses to create files directly in it."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(os.path.abspath(path)).parent == folder.absolute():
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)


def test_check_writable_creates_the_folder_and_leaves_nothing_in_it(tmp_path):
    folder = tmp_path / "a" / "b"
    assert check_writable(folder, "output") == folder
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_check_writable_refuses_in_one_line_naming_the_folder(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(OutputNotWritableError, match=r"^output: .*file/sub: a file is in the way"):
        check_writable(tmp_path / "file" / "sub", "output")
    refuse_writes_in(monkeypatch, tmp_path / "ro")
    with pytest.raises(OutputNotWritableError, match=r"^cache_dir: .*ro: cannot write in it \(Permission denied\)$"):
        check_writable(tmp_path / "ro", "cache_dir")
    assert isinstance(OutputNotWritableError("x"), InputError)


def test_check_writable_creates_nothing_under_a_missing_home(tmp_path, monkeypatch):
    home = tmp_path / "nonexistent"
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(OutputNotWritableError, match="HOME=.*does not exist"):
        check_writable(home / ".cache" / "adain", "cache_dir")
    assert not home.exists()


# ---- special files -------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_a_fifo_is_not_a_regular_file_and_is_never_opened(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes: the test would hang
    for read in (io.read_image, io.read_size, io.list_images):
        with pytest.raises(ImageReadError, match=r"pipe.png: not a regular file \(a FIFO, socket or device\)"):
            read(fifo)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_not_a_regular_file():
    with pytest.raises(ImageReadError, match="/dev/zero: not a regular file"):
        io.read_image("/dev/zero")


# ---- metadata ------------------------------------------------------------------------------------


def _photo_with_gps(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x010F] = "Maker"  # camera make: kept in every mode but strip
    exif[0x8825] = GPS
    Image.new("RGB", (24, 16), (200, 100, 50)).save(path, exif=exif.tobytes())
    return path


def _gps(path: Path) -> dict:
    with Image.open(path) as img:
        return dict(img.getexif().get_ifd(0x8825))


@pytest.mark.parametrize("metadata", [*io.METADATA_MODES, None])
def test_gps_is_dropped_by_default_kept_on_request_and_everything_goes_with_strip(tmp_path, metadata):
    photo = _photo_with_gps(tmp_path / "photo.jpg")
    assert _gps(photo) == GPS  # the source really has a position
    options = {} if metadata is None else {"metadata": metadata}
    out = io.save_image(Image.new("RGB", (24, 16)), tmp_path / "out.jpg", **io.read_metadata(photo, **options))
    with Image.open(out) as img:
        exif = img.getexif()
        assert (exif.get(0x010F) == "Maker") == (metadata != "strip")
        assert dict(exif.get_ifd(0x8825)) == (GPS if metadata == "keep" else {})


def test_an_unknown_metadata_mode_is_refused_naming_the_argument(tmp_path):
    with pytest.raises(InputError, match="metadata: expected one of 'no-gps', 'keep', 'strip'"):
        io.read_metadata(tmp_path / "x.jpg", metadata="some")


def test_the_bomb_message_beyond_pillows_hard_limit_names_max_pixels(tmp_path, monkeypatch):
    path = _png(tmp_path / "big.png", 64, 64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels is over twice that: Pillow refuses
    for read in (io.read_image, io.read_size):
        with pytest.raises(ImageReadError, match=r"big.png: refused as a possible decompression bomb.*max_pixels"):
            read(path)


# ---- demo address ----------------------------------------------------------------------------------


def test_a_demo_address_that_cannot_be_served_is_refused_in_seconds():
    import socket

    from adain.demo._address import check_address

    start = time.monotonic()
    with pytest.raises(InputError, match=r"^host: cannot resolve '256.1.1.1'"):
        check_address("256.1.1.1", None)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match=rf"^port: {port} on 127.0.0.1 cannot be used"):
            check_address("127.0.0.1", port)
    check_address("127.0.0.1", None)
    assert time.monotonic() - start < 10
