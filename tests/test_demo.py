"""The web demo's functions: through ``gradio_client`` against ``adain demo`` (a real server), in process
through ``DemoRunner``, the ``adain demo`` command's own errors, and the Hugging Face Space's ``app.py``.

The server serves a random-weight model (``conftest.model``); every test here needs gradio and
gradio_client (the ``dev`` extra) and is skipped without them.
"""

from __future__ import annotations

import base64
import runpy
import sys

import pytest
from conftest import REPO_ROOT
from demo_server import picture
from PIL import Image

import adain
from adain.cli import main
from adain.demo import DemoRunner, build_app, parse_style_weights

gr = pytest.importorskip("gradio", reason="the web demo needs gradio: pip install -e '.[dev]'")
gradio_client = pytest.importorskip("gradio_client", reason="these tests need gradio_client: pip install -e '.[dev]'")

SPACE_APP = REPO_ROOT / "spaces" / "adain-demo" / "app.py"


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    broken = root / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but not really a picture")
    return {
        "content": picture(root / "content.png", 60, 80, "content"),
        "style": picture(root / "style.png", 48, 48, "style"),
        "style2": picture(root / "style2.jpg", 40, 56, "style"),
        "broken": broken,
    }


@pytest.fixture(scope="module")
def client(demo_server):
    return gradio_client.Client(demo_server.url, verbose=False)


def _predict(
    client, content, styles, weights="", alpha=1.0, color="none", backend="AdaIN", iterations=10, max_size=512
):
    files = [gradio_client.handle_file(str(s)) for s in styles]
    return client.predict(
        gradio_client.handle_file(str(content)),
        files,
        weights,
        alpha,
        color,
        backend,
        iterations,
        max_size,
        api_name="/stylize",
    )


# ---- through the running server ------------------------------------------------------------------


@pytest.mark.slow
def test_adain_run_returns_an_image_and_a_png_of_the_content_size(client, pictures):
    image, download, summary = _predict(client, pictures["content"], [pictures["style"]], alpha=0.6)
    with Image.open(image) as shown, Image.open(download) as saved:
        assert shown.size == saved.size == (80, 60)
        assert saved.format == "PNG"
    assert download.endswith(".png")
    assert summary.startswith("AdaIN: 80x60, alpha 0.60")


@pytest.mark.slow
def test_two_styles_with_weights_and_colour_preservation(client, pictures):
    image, _, _ = _predict(
        client, pictures["content"], [pictures["style"], pictures["style2"]], weights="1, 3", color="luminance"
    )
    with Image.open(image) as shown:
        assert shown.size == (80, 60)


@pytest.mark.slow
def test_gatys_with_a_tiny_budget_returns_an_image(client, pictures):
    image, download, summary = _predict(client, pictures["content"], [pictures["style"]], backend="Gatys", iterations=1)
    with Image.open(image) as shown:
        assert shown.size == (80, 60)
    assert summary.startswith("Gatys: 80x60, 1 iterations")


@pytest.mark.slow
@pytest.mark.parametrize("case, expected", [
    ("corrupt content", "content (broken.png): not an image file Pillow can read"),
    ("corrupt style", "style 2 (broken.png): not an image file Pillow can read"),
    ("weights count", "style_weights: got 3 weights for 1 style(s); give one per style"),
    ("weights text", "style weights: expected numbers separated by commas"),
    ("alpha", "alpha: must be a number in [0, 1]"),
    ("backend", "backend: expected one of ['AdaIN', 'Gatys']"),
    ("iterations", "iterations: expected a whole number of steps >= 1"),
])  # fmt: skip
def test_bad_input_is_a_one_line_message_not_a_traceback(client, pictures, case, expected):
    content, styles, options = pictures["content"], [pictures["style"]], {}
    if case == "corrupt content":
        content = pictures["broken"]
    elif case == "corrupt style":
        styles = [pictures["style"], pictures["broken"]]
    else:
        options = {
            "weights count": {"weights": "1 2 3"},
            "weights text": {"weights": "1, lots"},
            "alpha": {"alpha": 1.5},
            "backend": {"backend": "CycleGAN"},
            "iterations": {"backend": "Gatys", "iterations": 0},
        }[case]
    with pytest.raises(gradio_client.exceptions.AppError) as caught:
        _predict(client, content, styles, **options)
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message and "Traceback" not in message and "/gradio/" not in message


# ---- in process ----------------------------------------------------------------------------------


def test_style_weights_text_parses_commas_and_spaces():
    assert parse_style_weights("1, 3") == [1.0, 3.0]
    assert parse_style_weights(" 0.5 2;1 ") == [0.5, 2.0, 1.0]
    assert parse_style_weights("") is None and parse_style_weights(None) is None
    with pytest.raises(adain.InputError, match="style weights"):
        parse_style_weights("one, two")


def test_runner_reports_gatys_progress_and_caps_the_size(model, pictures, tmp_path):
    runner = DemoRunner(model, output_dir=tmp_path)
    seen = []
    result = runner.run(
        str(pictures["content"]),
        [str(pictures["style"])],
        backend="gatys",
        iterations=2,
        max_size=40,
        progress=lambda fraction, text: seen.append((fraction, text)),
    )
    assert result.image.size == (53, 40)  # shorter side capped at 40, aspect kept
    with Image.open(result.path) as saved:
        assert saved.size == (53, 40)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert seen[-1][1] == "Gatys: scale 1/1, step 2/2"


def test_runner_reads_a_webcam_data_url(model, pictures, tmp_path):
    data = base64.b64encode(pictures["content"].read_bytes()).decode()
    runner = DemoRunner(model, output_dir=tmp_path)
    result = runner.run({"path": None, "url": f"data:image/png;base64,{data}"}, {"path": str(pictures["style"])})
    assert result.image.size == (80, 60)


@pytest.mark.parametrize("iterations", [0, 2.5, float("inf"), float("nan"), True, "10"])
def test_runner_refuses_iterations_that_are_not_a_whole_number_of_steps(model, pictures, tmp_path, iterations):
    runner = DemoRunner(model, output_dir=tmp_path)
    with pytest.raises(adain.InputError, match=r"^iterations: expected a whole number of steps >= 1, got "):
        runner.run(str(pictures["content"]), [str(pictures["style"])], backend="gatys", iterations=iterations)


def test_build_app_does_not_load_a_lazy_model(pictures):
    def loader():
        raise AssertionError("loaded at build time")

    assert isinstance(build_app(loader), gr.Blocks)


# ---- the command and the Space -------------------------------------------------------------------


def test_demo_command_without_gradio_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # ``import gradio`` raises ImportError
    assert main(["demo", "--weights", "anything"]) == 1
    assert capsys.readouterr().err.strip() == (
        "adain: error: the web demo needs gradio: pip install 'adain[demo]' (from a clone: pip install -e '.[demo]')"
    )


def test_demo_command_with_missing_weights_fails_before_serving(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["demo", "--weights", str(tmp_path / "missing"), "--port", "1"]) == 1
    assert "no weights named" in capsys.readouterr().err


def test_demo_command_refuses_a_bad_port(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--port", "70000"])
    assert caught.value.code == 2 and "expected a port number" in capsys.readouterr().err


def _stylize_fn(app):
    (fn,) = [f for f in app.fns.values() if f.api_name == "stylize"]
    return fn.fn


def test_space_app_builds_the_demo_with_adain_weights(model, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAIN_WEIGHTS", str(model.save_pretrained(tmp_path / "model")))
    space = runpy.run_path(str(SPACE_APP), run_name="space_app")  # not __main__: nothing is launched
    assert isinstance(space["demo"], gr.Blocks)
    assert isinstance(space["model"], adain.AdaINModel)


def test_space_app_shows_a_weights_error_in_the_page(pictures, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAIN_WEIGHTS", str(tmp_path / "missing"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    space = runpy.run_path(str(SPACE_APP), run_name="space_app")  # starts although the weights are missing
    with pytest.raises(gr.Error) as caught:
        _stylize_fn(space["demo"])(
            str(pictures["content"]), [str(pictures["style"])], "", 1.0, "none", "AdaIN", 10, 512
        )
    assert caught.value.message.startswith(f"no weights named '{tmp_path / 'missing'}'")
