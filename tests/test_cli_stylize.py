"""``adain stylize`` through a subprocess, as a user runs it."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image

import adain
from adain.cli import build_parser, main


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "adain", *map(str, args)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip


def _picture(path, h, w, seed):
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    small.resize((w, h), Image.BILINEAR).save(path)
    return path


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory):
    return model.save_pretrained(tmp_path_factory.mktemp("model"))


def test_defaults_come_from_the_stylize_signature():
    args = build_parser().parse_args(["stylize", "c.png", "s.png", "-o", "out.png"])
    signature = inspect.signature(adain.stylize).parameters
    for option, name in [("alpha", "alpha"), ("content_size", "content_size"), ("style_size", "style_size"),
                         ("crop", "crop"), ("preserve_color", "preserve_color"), ("style_weights", "style_weights"),
                         ("mask", "mask"), ("device", "device"), ("dtype", "dtype")]:  # fmt: skip
        assert getattr(args, option) == signature[name].default


@pytest.mark.parametrize("text", ["0", "none", "None"])
def test_content_size_zero_or_none_keeps_the_size(text):
    args = build_parser().parse_args(["stylize", "c.png", "s.png", "-o", "o.png", "--content-size", text])
    assert args.content_size is None


@pytest.mark.slow
def test_single_pair_writes_the_file_the_library_would(model, model_dir, tmp_path):
    content = _picture(tmp_path / "c.png", 21, 30, seed=0)
    style = _picture(tmp_path / "s.png", 24, 24, seed=1)
    out = tmp_path / "result.png"
    proc = _run("stylize", content, style, "-o", out, "--weights", model_dir, "--device", "cpu",
                "--content-size", "none", "--style-size", "0", "--alpha", "0.6")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = adain.stylize(content, style, 0.6, model=model, content_size=None, style_size=None, device="cpu")
    assert Image.open(out).size == (30, 21)
    assert np.abs(np.asarray(Image.open(out)).astype(int) - np.asarray(expected).astype(int)).max() <= 1


@pytest.mark.slow
def test_folders_give_every_pair_mirrored_and_a_bad_file_does_not_stop_the_rest(model_dir, tmp_path):
    contents, styles, out = tmp_path / "contents", tmp_path / "styles", tmp_path / "out"
    _picture(contents / "a.PNG", 16, 20, seed=2)
    _picture(contents / "sub" / "b.jpg", 18, 16, seed=3)
    (contents / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (contents / "notes.txt").write_text("not an image, ignored by extension")
    _picture(styles / "x.png", 16, 16, seed=4)
    _picture(styles / "y.Jpeg", 16, 16, seed=5)
    proc = _run("stylize", contents, styles, "-o", out, "--weights", model_dir, "--device", "cpu",
                "--content-size", "0", "--style-size", "0")  # fmt: skip
    assert proc.returncode == 1
    assert "broken.png" in proc.stderr and "Traceback" not in proc.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [
        "a_stylized_x.png", "a_stylized_y.png", os.path.join("sub", "b_stylized_x.jpg"),
        os.path.join("sub", "b_stylized_y.jpg"),
    ]  # fmt: skip
    assert Image.open(out / "sub" / "b_stylized_x.jpg").size == (16, 18)


# The remaining behaviours run the same entry point in-process (a subprocess costs seconds of imports).


def test_blend_with_style_weights_writes_one_output_per_content(model_dir, tmp_path):
    content = _picture(tmp_path / "c.png", 16, 16, seed=6)
    s1, s2 = _picture(tmp_path / "s1.png", 16, 16, seed=7), _picture(tmp_path / "s2.png", 16, 16, seed=8)
    code = main(["stylize", str(content), str(s1), str(s2), "-o", str(tmp_path / "out"), "--weights", str(model_dir),
                 "--device", "cpu", "--style-weights", "1,3", "--content-size", "0", "--style-size", "0",
                 "--preserve-color"])  # fmt: skip
    assert code == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["c_stylized_s1+s2.png"]


def test_errors_are_one_line_without_traceback_unless_debug(model_dir, tmp_path, capsys):
    content = _picture(tmp_path / "c.png", 16, 16, seed=9)
    args = ["stylize", str(content), str(content), "-o", str(tmp_path / "o.png"), "--weights", str(model_dir),
            "--alpha", "2"]  # fmt: skip
    assert main(args) != 0
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "alpha" in err
    assert main(["--debug", *args]) != 0
    assert "Traceback" in capsys.readouterr().err


def test_missing_weights_directory_is_a_clear_error(tmp_path, capsys):
    content = _picture(tmp_path / "c.png", 16, 16, seed=10)
    code = main(
        ["stylize", str(content), str(content), "-o", str(tmp_path / "o.png"), "--weights", str(tmp_path / "nope")]
    )
    assert code != 0
    assert "nope" in capsys.readouterr().err


def test_several_outputs_into_a_file_name_is_refused(model_dir, tmp_path, capsys):
    content = _picture(tmp_path / "c.png", 16, 16, seed=11)
    styles = tmp_path / "styles"
    _picture(styles / "x.png", 16, 16, seed=12)
    _picture(styles / "y.png", 16, 16, seed=13)
    code = main(["stylize", str(content), str(styles), "-o", str(tmp_path / "out.png"), "--weights", str(model_dir)])
    assert code != 0
    assert "output directory" in capsys.readouterr().err


def test_missing_weights_error_shows_every_source_and_where_to_put_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    content, style = _picture(tmp_path / "c.png", 24, 24, 0), _picture(tmp_path / "s.png", 24, 24, 1)
    assert main(["stylize", str(content), str(style), "-o", str(tmp_path / "out.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("adain: error:")
    assert "Traceback" not in err
    # The few lines of the offline weights message survive: the sources not tried, both ways to place files
    # by hand (every source's own error is for --debug: test_cli_status).
    assert "sources not tried" in err and err.count("\n") == 2
    assert str(tmp_path / "cache" / "reference-port" / "model") in err
    assert not (tmp_path / "out.png").exists()
