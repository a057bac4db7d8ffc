"""The scripts in examples/ run on tiny generated inputs, write what they say, and use only the public API."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import adain

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def _load(name: str):
    """An example as a module (they are scripts, not a package), so ``main(argv)`` runs in-process."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pictures(folder: Path, sizes: list[tuple[int, int]], seed: int) -> list[Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (h, w) in enumerate(sizes):
        paths.append(folder / f"picture_{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A random-weights model in the package format, passed to the examples as ``--weights``."""
    torch.manual_seed(0)
    return adain.AdaINModel().save_pretrained(tmp_path_factory.mktemp("weights") / "random")


def test_every_example_is_tested():
    assert {p.stem for p in SCRIPTS} == {"stylize_one", "stylize_folder", "stylize_video", "train_tiny_decoder"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_examples_use_only_the_public_api(script):
    """No import of an ``adain`` module or name starting with ``_``, nothing imported that the module's
    ``__all__`` does not list, and no ``_private`` attribute read anywhere (dunders aside)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "adain":
                    assert not any(part.startswith("_") for part in alias.name.split(".")), alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "adain":
            assert node.level == 0 and not any(part.startswith("_") for part in node.module.split(".")), node.module
            public = importlib.import_module(node.module).__all__
            for alias in node.names:
                assert alias.name in public, f"{script.name}: {node.module}.{alias.name} is not in its __all__"
        elif isinstance(node, ast.Attribute):
            private = node.attr.startswith("_") and not (node.attr.startswith("__") and node.attr.endswith("__"))
            assert not private, f"{script.name}:{node.lineno}: .{node.attr}"
    adain_uses = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "adain"
    ]
    for use in adain_uses:
        assert use.attr in adain.__all__, f"{script.name}:{use.lineno}: adain.{use.attr} is not public"


def test_stylize_one_writes_the_picture_at_the_requested_size(weights, tmp_path):
    (content,) = _pictures(tmp_path / "content", [(40, 60)], seed=1)
    (style,) = _pictures(tmp_path / "style", [(48, 48)], seed=2)
    out = tmp_path / "out.png"
    argv = [str(content), str(style), "-o", str(out), "--size", "32", "--weights", str(weights), "--device", "cpu"]
    assert _load("stylize_one").main(argv) == 0
    with Image.open(out) as picture:
        assert picture.size == (48, 32)  # shorter side 40 -> 32, aspect kept


@pytest.mark.slow
def test_stylize_one_runs_as_a_script(weights, tmp_path):
    (content,) = _pictures(tmp_path / "content", [(24, 32)], seed=1)
    (style,) = _pictures(tmp_path / "style", [(24, 24)], seed=2)
    out = tmp_path / "out.jpg"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "stylize_one.py"),
            str(content),
            str(style),
            "-o",
            str(out),
            "--size",
            "0",
            "--weights",
            str(weights),
            "--device",
            "cpu",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with Image.open(out) as picture:
        assert picture.size == (32, 24)  # --size 0 keeps the original size


def test_stylize_folder_writes_one_png_per_picture_and_skips_existing_ones(weights, tmp_path, capsys):
    pictures = _pictures(tmp_path / "photos", [(24, 32), (40, 24), (16, 16)], seed=3)
    (tmp_path / "photos" / "notes.txt").write_text("not a picture")
    (style,) = _pictures(tmp_path / "style", [(32, 32)], seed=4)
    out = tmp_path / "styled"
    argv = [
        str(tmp_path / "photos"),
        str(style),
        "-o",
        str(out),
        "--size",
        "0",
        "--weights",
        str(weights),
        "--device",
        "cpu",
    ]
    module = _load("stylize_folder")
    assert module.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{p.stem}.png" for p in pictures]
    for picture in pictures:
        with Image.open(picture) as source, Image.open(out / f"{picture.stem}.png") as result:
            assert result.size == source.size
    first = (out / "picture_0.png").read_bytes()
    (out / "picture_0.png").write_bytes(b"kept")
    assert module.main(argv + ["--alpha", "0.5"]) == 0
    assert (out / "picture_0.png").read_bytes() == b"kept"
    assert "exists, skipped" in capsys.readouterr().out
    assert module.main(argv + ["--overwrite"]) == 0
    assert (out / "picture_0.png").read_bytes() == first


def test_stylize_video_writes_every_frame_and_can_stop_early(weights, tmp_path, capsys):
    av = pytest.importorskip("av", reason="the video example needs PyAV: pip install -e '.[dev]'")
    clip = tmp_path / "clip.mp4"
    rng = np.random.default_rng(5)
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for _ in range(6):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (style,) = _pictures(tmp_path / "style", [(32, 32)], seed=6)
    module = _load("stylize_video")
    common = [str(style), "--style-size", "32", "--weights", str(weights), "--device", "cpu"]

    out = tmp_path / "styled.mp4"
    assert module.main([str(clip), *common, "-o", str(out)]) == 0
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 6 and (frames[0].width, frames[0].height) == (32, 24)

    frames_dir = tmp_path / "frames"
    assert module.main([str(clip), *common, "-o", str(frames_dir), "--max-frames", "1", "--batch-size", "2"]) == 0
    written = sorted(p.name for p in frames_dir.glob("frame_*.png"))
    assert 2 <= len(written) < 6 and written[0] == "frame_000001.png"  # whole batches, stopped before the end
    assert "(stopped early)" in capsys.readouterr().out


@pytest.mark.slow
def test_train_tiny_decoder_leaves_a_loadable_model(weights, tmp_path):
    _pictures(tmp_path / "photos", [(40, 48), (48, 40), (40, 40)], seed=7)
    _pictures(tmp_path / "paintings", [(40, 40), (44, 52)], seed=8)
    run = tmp_path / "run"
    argv = [
        "--content-dir",
        str(tmp_path / "photos"),
        "--style-dir",
        str(tmp_path / "paintings"),
        "--out",
        str(run),
        "--vgg",
        str(weights),
        "--steps",
        "2",
        "--image-size",
        "32",
        "--crop-size",
        "32",
        "--device",
        "cpu",
    ]
    assert _load("train_tiny_decoder").main(argv) == 0
    model = adain.load_pretrained(run / "final")
    trained, start = model.decoder.state_dict(), adain.load_pretrained(weights).decoder.state_dict()
    assert any(not torch.equal(trained[k], start[k]) for k in trained)  # the decoder did change
    assert len((run / "log.csv").read_text().splitlines()) == 3  # a header and one row per step
