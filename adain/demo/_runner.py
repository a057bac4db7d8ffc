"""What the demo's Run button does, without Gradio: ``DemoRunner`` reads the uploads with the package's own
reader, stylizes with AdaIN or Gatys, writes the PNG and returns a ``DemoResult``; and the page's choices
(backends, colour modes, size cap, iteration budget) with the parsing of its plain values."""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .._arguments import check_alpha, check_int, check_size, color_mode
from .._io import read_image, save_image
from ..errors import ImageReadError, InputError
from ..inference import Stylizer
from ..model import AdaINModel
from ..optimization._api import gatys

BACKENDS = ("AdaIN", "Gatys")
"""The backend choices of the page (``adain.stylize`` / ``adain.gatys``)."""

COLOR_CHOICES = ("none", "coral", "luminance")
"""The colour preservation choices of the page (``preserve_color`` of both backends; "none" is ``None``)."""

DEFAULT_MAX_SIZE = 512
"""Pictures whose shorter side is larger are scaled down to this (the page's size cap); smaller ones keep their size."""

DEFAULT_ITERATIONS = 100
"""Gatys steps per pyramid scale offered by default (the library's default, 300, is long on a CPU)."""

KEEP_OUTPUTS = 32
"""Result files kept in the runner's folder (Gradio copies each into its own cache when it serves it)."""

ModelSource = AdaINModel | Callable[[], AdaINModel]
Progress = Callable[[float, str], Any]


def parse_style_weights(text: str | None) -> list[float] | None:
    """``"1, 3"`` (commas and/or spaces) -> ``[1.0, 3.0]``; empty -> ``None`` (equal weights)."""
    parts = [p for p in re.split(r"[,;\s]+", text or "") if p]
    if not parts:
        return None
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise InputError(f"style weights: expected numbers separated by commas, e.g. '1, 3', got {text!r}") from None


@dataclass(frozen=True)
class DemoResult:
    """What one press of the Run button gives ([``DemoRunner.run``][adain.demo.DemoRunner.run]).

    Attributes:
        image: the stylized RGB picture, exactly the content's size after the size cap.
        path: the same picture as a PNG file in the runner's ``output_dir``, for the download button.
        summary: one line for the page: backend, size, settings and seconds taken.
    """

    image: Image.Image  # the stylized picture, exactly the (capped) content size
    path: Path  # the same picture as a PNG file, for the download button
    summary: str  # one line for the page: backend, size, settings, time


# ---- uploads -------------------------------------------------------------------------------------


def _field(payload: Any, name: str) -> Any:
    return payload.get(name) if isinstance(payload, dict) else getattr(payload, name, None)


class DemoRunner:
    """Stylizes what the page sends: file payloads (Gradio ``FileData`` dicts or paths) and plain values.

    Arguments:
        model: an ``AdaINModel``, or a function returning one, called on the first run (so a Space starts
            even when its weights cannot be fetched, and the page shows why).
        output_dir: where result PNGs are written; default a private temporary folder.

    Attributes:
        output_dir: the folder result PNGs are written to (only the newest 32 results are kept).
    """

    def __init__(self, model: ModelSource, *, output_dir: str | Path | None = None) -> None:
        self._source = model
        self._model = model if isinstance(model, AdaINModel) else None
        self._stylizer: Stylizer | None = None
        self._lock = threading.Lock()
        if output_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="adain-demo-")
            output_dir = self._tmp.name
        self.output_dir = Path(output_dir)

    def model(self) -> AdaINModel:
        """The model, loaded on first use (a failed load is retried on the next run)."""
        if self._model is None:
            model = self._source()
            if not isinstance(model, AdaINModel):
                raise InputError(f"model: the loader returned {type(model).__name__}, not an adain.AdaINModel")
            self._model = model
        return self._model

    def run(
        self,
        content: Any,
        styles: Any,
        style_weights: str | None = None,
        alpha: float = 1.0,
        preserve_color: str = "none",
        backend: str = "AdaIN",
        iterations: int = DEFAULT_ITERATIONS,
        max_size: int | None = DEFAULT_MAX_SIZE,
        progress: Progress | None = None,
    ) -> DemoResult:
        """One press of the Run button. Raises ``AdaINError`` (or ``OSError``) with a one-line message.

        Arguments:
            content: the content picture: a Gradio file payload (``FileData`` dict or object, possibly a
                webcam's ``data:`` URL) or a path.
            styles: one style payload or path, or a list of them.
            style_weights: blend weights as text, one number per style separated by commas or spaces
                (``"1, 3"``); ``None`` or empty: equal.
            alpha: AdaIN's style strength in [0, 1] (Gatys has none and ignores it).
            preserve_color: one of ``COLOR_CHOICES``: ``"none"``, ``"coral"`` or ``"luminance"``.
            backend: one of ``BACKENDS``, ``"AdaIN"`` or ``"Gatys"`` (any letter case).
            iterations: Gatys's optimisation steps per pyramid scale, a whole number >= 1; default 100 (the
                library's 300 is long on a CPU).
            max_size: pictures whose shorter side is larger are scaled down to this many pixels (default
                ``DEFAULT_MAX_SIZE``, 512); smaller ones keep their size; ``None``: no cap.
            progress: ``None``, or ``progress(fraction, text)``, called as the run advances (every step with
                Gatys), ``fraction`` in [0, 1].

        Returns:
            The [``DemoResult``][adain.demo.DemoResult]: the picture, its PNG file and a one-line summary.
        """
        start = time.perf_counter()
        backend = _backend(backend)
        alpha = check_alpha(alpha)
        color = color_mode(None if preserve_color in (None, "", "none") else preserve_color)
        max_size = check_size(max_size, "max_size")
        iterations = _iterations(iterations)
        weights = parse_style_weights(style_weights)
        content_img = self._read(content, "content")
        style_imgs = [self._read(s, f"style {i + 1}") for i, s in enumerate(_as_list(styles))]
        if not style_imgs:
            raise InputError("style: upload at least one style picture")
        report = progress or (lambda fraction, text: None)
        with self._lock:  # one run at a time: the Stylizer holds one style
            if backend == "AdaIN":
                image = self._adain(content_img, style_imgs, weights, alpha, color, max_size, report)
                settings = f"alpha {alpha:.2f}"
            else:
                image = self._gatys(content_img, style_imgs, weights, color, iterations, max_size, report)
                settings = f"{iterations} iterations"
            path = self._write(image)
        seconds = time.perf_counter() - start
        summary = f"{backend}: {image.width}x{image.height}, {settings}, {seconds:.1f} s"
        return DemoResult(image, path, summary)

    def _adain(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        weights,
        alpha: float,
        color,
        max_size: int | None,
        report: Progress,
    ) -> Image.Image:
        report(0.0, "AdaIN: encoding")
        if self._stylizer is None:
            self._stylizer = Stylizer(self.model())
        self._stylizer.set_style(
            styles if len(styles) > 1 else styles[0],
            style_size=_cap(styles, max_size),
            style_weights=weights,
            preserve_color=color,
        )
        return self._stylizer(content, alpha, content_size=_cap([content], max_size))

    def _gatys(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        weights,
        color,
        iterations: int,
        max_size: int | None,
        report: Progress,
    ) -> Image.Image:
        def callback(p) -> None:
            report(
                (p.scale + p.step / p.steps) / p.scales,
                f"Gatys: scale {p.scale + 1}/{p.scales}, step {p.step}/{p.steps}",
            )

        return gatys(
            content,
            styles if len(styles) > 1 else styles[0],
            model=self.model(),
            callback=callback,
            content_size=_cap([content], max_size),
            style_weights=weights,
            preserve_color=color,
            iterations=iterations,
        )

    def _read(self, payload: Any, what: str) -> Image.Image:
        """A Gradio file payload (``FileData`` dict, object or path; a ``data:`` URL from a webcam) -> RGB image.

        Read with ``adain._io.read_image`` (its checks and conventions); a bad file's message names the
        file the user uploaded, not Gradio's cache path.
        """
        if payload is None:
            webcam = " or take one with the webcam" if what == "content" else ""
            raise InputError(f"{what}: upload a picture{webcam}")
        path = payload if isinstance(payload, (str, Path)) else _field(payload, "path")
        url = None if isinstance(payload, (str, Path)) else _field(payload, "url")
        name = (None if isinstance(payload, (str, Path)) else _field(payload, "orig_name")) or (
            Path(path).name if path else "webcam picture"
        )
        if not path and isinstance(url, str) and url.startswith("data:"):
            path = self._from_data_url(url, what)
        if not path:
            raise InputError(f"{what}: the upload carries no file")
        try:
            return read_image(path)
        except ImageReadError as exc:
            raise ImageReadError(str(exc).replace(str(path), f"{what} ({name})")) from None

    def _from_data_url(self, url: str, what: str) -> Path:
        try:
            data = base64.b64decode(url.partition(",")[2], validate=True)
        except (binascii.Error, ValueError):
            raise ImageReadError(f"{what}: the picture's data URL is not valid base64") from None
        path = self.output_dir / "uploads" / f"{uuid.uuid4().hex}.img"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def _write(self, image: Image.Image) -> Path:
        """Save ``image`` as ``<output_dir>/<id>/stylized.png``; folders beyond the newest ``KEEP_OUTPUTS`` go."""
        folders = sorted(
            (p for p in self.output_dir.glob("*") if p.is_dir() and p.name != "uploads"),
            key=lambda p: p.stat().st_mtime,
        )
        for old in folders[: max(0, len(folders) - KEEP_OUTPUTS + 1)]:
            shutil.rmtree(old, ignore_errors=True)
        return save_image(image, self.output_dir / uuid.uuid4().hex / "stylized.png")


def _backend(name: Any) -> str:
    for backend in BACKENDS:
        if isinstance(name, str) and name.lower() == backend.lower():
            return backend
    raise InputError(f"backend: expected one of {list(BACKENDS)}, got {name!r}")


def _iterations(value: Any) -> int:
    try:  # check_int also refuses infinities, which int() cannot convert
        return check_int(value, "iterations")
    except InputError:
        raise InputError(f"iterations: expected a whole number of steps >= 1, got {value!r}") from None


def _as_list(payload: Any) -> list:
    if payload is None:
        return []
    return list(payload) if isinstance(payload, (list, tuple)) else [payload]


def _cap(pictures: Sequence[Image.Image], max_size: int | None) -> int | None:
    """``max_size`` when some picture's shorter side is larger (scale it down), else ``None`` (keep sizes)."""
    return max_size if max_size is not None and any(min(p.size) > max_size for p in pictures) else None
