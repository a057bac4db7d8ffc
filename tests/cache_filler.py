"""Loads a test entry of named weights into a cache, in a process of its own (run by test_cache.py).

    python cache_filler.py ROLE BASE_URL CACHE_DIR SHA_VGG SHA_DECODER SIGNALS_DIR

The two roles interleave two processes at the worst moment for an unlocked cache:

- ``first`` pauses right after writing ``model.safetensors`` and before ``config.json`` (a half-written
  model folder), until ``second`` has begun converting (``SIGNALS/second-converting``) or, at most, 4 s
  after ``second`` started its load (``SIGNALS/second-started``).
- ``second`` starts its load while ``first`` is paused; if it converts too, it waits 4 s first, so that
  ``first`` resumes while ``second`` has not written anything yet.

Each prints ``ok <sum of the weights>`` when its load succeeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import adain
from adain.weights import _format as weights_format
from adain.weights import _registry as registry
from adain.weights import _resolve as resolve

NAME = "test-weights"
GRACE_S = 4.0


def _wait_for(path: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return path.exists()


def _pause_before_config(signals: Path) -> None:
    real = weights_format.atomic_path

    @contextlib.contextmanager
    def paused(path, **kwargs):
        if Path(path).name == weights_format.CONFIG_NAME:
            (signals / "first-paused").touch()
            if _wait_for(signals / "second-started", 120):
                _wait_for(signals / "second-converting", GRACE_S)
        with real(path, **kwargs) as tmp:
            yield tmp

    weights_format.atomic_path = paused


def _slow_conversion(signals: Path) -> None:
    real = resolve.save_model_dir

    def slow(*args, **kwargs):
        (signals / "second-converting").touch()
        time.sleep(GRACE_S)
        return real(*args, **kwargs)

    resolve.save_model_dir = slow


def main(role: str, base_url: str, cache_dir: str, sha_vgg: str, sha_decoder: str, signals: str) -> int:
    files = (registry.LegacyFile("vgg_normalised.pth", sha_vgg), registry.LegacyFile("decoder.pth", sha_decoder))
    registry.REGISTRY[NAME] = dataclasses.replace(
        registry.REFERENCE_PORT, name=NAME, files=files, sources=(registry.UrlSource(base_url),)
    )
    signals_dir = Path(signals)
    if role == "first":
        _pause_before_config(signals_dir)
    else:
        _slow_conversion(signals_dir)
        (signals_dir / "second-started").touch()
    model = adain.load_pretrained(NAME, cache_dir=cache_dir)
    print("ok", float(sum(p.double().sum() for p in model.state_dict().values())))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
