"""Starts one kind of large write and hangs in its middle, to be killed with SIGKILL (run by test_killed_writes.py).

    python killed_writer.py KIND TARGET [URL]

KIND is ``download`` (``download_url(URL, TARGET)`` from a server that stalls midway), ``conversion`` (named
weights ``test-weights`` in the cache TARGET, whose ``files/`` holds the legacy pair), ``checkpoint`` (a
training checkpoint in the run directory TARGET), ``image`` (``save_image`` to TARGET) or ``video`` (a
``VideoWriter`` to TARGET). Each writer really writes some bytes under its temporary name, then prints
``ready`` and waits: the process is killed in the middle of the write, as the OOM killer or ``kill -9`` would.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HANG_S = 120.0


def _ready() -> None:
    print("ready", flush=True)
    time.sleep(HANG_S)


def _partial(target) -> None:
    """What a writer does before the kill: the first bytes land in its (temporary) file."""
    if hasattr(target, "write"):
        target.write(b"PK\x03\x04 partial")
        target.flush()
    else:
        Path(target).write_bytes(b"partial")
    _ready()


def download(target: str, url: str) -> None:
    from adain.weights._download import download_url

    def progress(report) -> None:
        if report.done_bytes:  # the first chunk is in the .part file
            _ready()

    download_url(url, target, progress=progress)


def conversion(cache: str) -> None:
    import adain
    from adain.weights import _format, _registry

    name = "test-weights"
    files = (_registry.LegacyFile("vgg_normalised.pth"), _registry.LegacyFile("decoder.pth"))
    _registry.REGISTRY[name] = dataclasses.replace(
        _registry.REFERENCE_PORT, name=name, files=files, sources=(_registry.UrlSource("http://127.0.0.1:9/none"),)
    )
    _format.save_file = lambda tensors, path, metadata=None: _partial(path)
    adain.load_pretrained(name, cache_dir=cache, local_files_only=True)


def checkpoint(run_dir: str) -> None:
    from adain.training import _checkpoint

    torch.save = lambda obj, f, *args, **kwargs: _partial(f)
    _checkpoint.save_checkpoint(run_dir, {"step": 1, "decoder": {"w": torch.zeros(4)}})


def image(target: str) -> None:
    from adain import _io

    Image.Image.save = lambda self, fp, format=None, **kwargs: _partial(fp)
    _io.save_image(Image.new("RGB", (8, 8)), target)


def video(target: str) -> None:
    from adain.video._sink import VideoWriter
    from adain.video._source import VideoInfo

    info = VideoInfo(Path("in.mp4"), 32, 32, Fraction(25), Fraction(1, 25), 100)
    writer = VideoWriter(Path(target), info, overwrite=False, crf=30, audio=False)
    rng = np.random.default_rng(0)
    for pts in range(120):  # past x264's look-ahead: packets, and so the file, are being written
        writer.write(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), pts, 1)
    _ready()


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    if kind == "download":
        download(rest[0], rest[1])
    else:
        {"conversion": conversion, "checkpoint": checkpoint, "image": image, "video": video}[kind](rest[0])
    sys.exit("the write finished instead of hanging")
