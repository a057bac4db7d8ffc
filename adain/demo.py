"""The web demo: a Gradio page around one model, for ``adain demo`` and the Hugging Face Space.

``build_app(model)`` returns a ``gr.Blocks`` (nothing runs, nothing is loaded at import; Gradio is an
optional dependency, ``pip install 'adain[demo]'``, imported when an app is built). The page takes a
content picture (upload or webcam), one or more style pictures with blend weights, alpha, colour
preservation and the backend (AdaIN, or Gatys with an iteration budget and live progress), and shows
the result with a PNG download. ``DemoRunner`` is what the Run button does, without Gradio: it reads
the uploads with the package's own reader, stylizes, and writes the PNG. Every error the package
raises reaches the page as its one-line message (``gr.Error``), never as a traceback.
"""

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

from ._arguments import check_alpha, check_int, check_size, color_mode
from ._io import read_image, save_image
from .errors import AdaINError, ImageReadError, InputError
from .inference import Stylizer
from .model import AdaINModel
from .optimization._api import gatys

__all__ = ["DemoResult", "DemoRunner", "build_app"]

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


def require_gradio():
    """The ``gradio`` module, or ``InputError`` saying how to install it."""
    try:
        import gradio
    except ImportError:
        raise InputError("the web demo needs gradio: pip install 'adain[demo]'") from None
    return gradio


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


# ---- the page ------------------------------------------------------------------------------------

_INTRO = """# adain: neural style transfer
Upload a photo (or take one with the webcam) and one or more style pictures, then press **Stylize**.
AdaIN takes a fraction of a second; Gatys optimises the picture (slow on a CPU, reference quality)."""


def build_app(
    model: ModelSource, *, title: str = "adain: style transfer", output_dir: str | Path | None = None
) -> Any:  # a gradio.Blocks (gradio is optional)
    """The demo page as a ``gr.Blocks`` (not launched): ``app.launch(server_name=..., server_port=...)``.

    The Run button is also an API endpoint, ``/stylize`` (``gradio_client``: content file, list of style
    files, weights text, alpha, colour, backend, iterations, size cap -> image, PNG file, summary). Needs the
    ``demo`` extra (``pip install 'adain[demo]'``). Guide: [the web demo](../guides/export-and-demo.md#the-web-demo).

    Arguments:
        model: an [``AdaINModel``][adain.AdaINModel], or a function returning one (called on the first run,
            so that a page starts even when its weights cannot be fetched, and shows why).
        title: the browser tab's title.
        output_dir: where result PNGs are written (default: a private temporary folder).

    Returns:
        The ``gradio.Blocks`` app.

    Raises:
        InputError: Gradio is not installed (the message says how to install it).
    """
    gr = require_gradio()
    runner = DemoRunner(model, output_dir=output_dir)
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(_INTRO)
        with gr.Row():
            with gr.Column():
                inputs = _inputs(gr)
                run = gr.Button("Stylize", variant="primary", elem_id="run")
            with gr.Column():
                image = gr.Image(label="Result", type="pil", format="png", interactive=False, elem_id="output")
                summary = gr.Markdown(label="Summary", elem_id="summary")
                download = gr.DownloadButton("Download PNG", elem_id="download")
        backend, alpha, iterations = inputs[5], inputs[3], inputs[6]
        backend.change(
            lambda name: (gr.update(visible=name == "AdaIN"), gr.update(visible=name == "Gatys")),
            backend,
            [alpha, iterations],
            api_visibility="private",
            queue=False,
        )
        # preprocess=False: the uploads arrive as files and are read by adain._io (its checks, its messages).
        run.click(_handler(gr, runner), inputs, [image, download, summary], api_name="stylize", preprocess=False)
    return app


def _inputs(gr) -> list:
    """The page's controls, in the order of ``DemoRunner.run``'s arguments."""
    content = gr.Image(label="Content", sources=["upload", "webcam"], type="filepath", elem_id="content")
    styles = gr.File(label="Style picture(s)", file_count="multiple", file_types=["image"], elem_id="styles")
    weights = gr.Textbox(
        label="Style weights", placeholder="e.g. 1, 3 (one per style; empty = equal)", elem_id="style-weights"
    )
    alpha = gr.Slider(0, 1, value=1.0, step=0.05, label="Alpha (style strength)", elem_id="alpha")
    color = gr.Radio(list(COLOR_CHOICES), value="none", label="Preserve colour", elem_id="color")
    backend = gr.Radio(list(BACKENDS), value="AdaIN", label="Backend", elem_id="backend")
    iterations = gr.Slider(
        1,
        500,
        value=DEFAULT_ITERATIONS,
        step=1,
        precision=0,
        label="Gatys iterations per scale",
        info="slow on a CPU",
        visible=False,
        elem_id="iterations",
    )
    max_size = gr.Slider(
        64,
        1024,
        value=DEFAULT_MAX_SIZE,
        step=32,
        precision=0,
        label="Size cap (shorter side, px)",
        info="larger pictures are scaled down to this; smaller ones keep their size",
        elem_id="max-size",
    )
    return [content, styles, weights, alpha, color, backend, iterations, max_size]


def _handler(gr, runner: DemoRunner):
    """The Run button's function: ``runner.run`` with Gradio's progress bar, errors as ``gr.Error``."""

    def stylize(
        content,
        styles,
        style_weights,
        alpha,
        preserve_color,
        backend,
        iterations,
        max_size,
        progress=gr.Progress(),  # noqa: B008 -- Gradio injects its tracker through this default
    ):
        try:
            result = runner.run(
                content,
                styles,
                style_weights,
                alpha,
                preserve_color,
                backend,
                iterations,
                max_size,
                progress=lambda fraction, text: progress(fraction, desc=text),
            )
        except (AdaINError, OSError, ValueError, RuntimeError) as exc:
            raise gr.Error(_one_line(exc), print_exception=False) from None
        return result.image, str(result.path), result.summary

    return stylize


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
