"""The demo's Gradio page: ``build_app`` lays out the controls in the order of ``DemoRunner.run``'s arguments
and wires the Run button to a ``DemoRunner``. Gradio is optional and imported only when an app is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import AdaINError, MissingDependencyError, install_hint
from ._runner import BACKENDS, COLOR_CHOICES, DEFAULT_ITERATIONS, DEFAULT_MAX_SIZE, DemoRunner, ModelSource


def require_gradio():
    """The ``gradio`` module, or ``MissingDependencyError`` (an ``InputError``) saying how to install it."""
    try:
        import gradio
    except ImportError:
        raise MissingDependencyError(f"the web demo needs gradio: {install_hint('demo')}") from None
    return gradio


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
